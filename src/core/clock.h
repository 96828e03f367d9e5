#pragma once
// The time seam. Production code asks a Clock for "now" and for sleeps, so tests of
// health checks, watch windows, drains and timeouts drive time by hand (see FakeClock in
// tests/support) instead of sleeping.
#include <chrono>

namespace slipway {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  virtual ~Clock() = default;
  virtual time_point Now() const = 0;
  // Wall-clock time in milliseconds since the epoch, for records and events.
  virtual long long WallMillis() const = 0;
  virtual void SleepFor(duration d) = 0;
};

// The real clock. Thread-safe; one process-wide instance.
class SystemClock final : public Clock {
 public:
  static SystemClock& Instance();
  time_point Now() const override;
  long long WallMillis() const override;
  void SleepFor(duration d) override;
};

}  // namespace slipway
