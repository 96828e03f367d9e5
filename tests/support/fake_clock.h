#pragma once
// A Clock the test drives: Now() moves only when Advance() or SleepFor() is called, so
// deadline and timer logic is exercised without sleeping.
#include <atomic>

#include "core/clock.h"

namespace slipway::testing {

class FakeClock final : public Clock {
 public:
  time_point Now() const override { return time_point(duration(now_.load())); }
  long long WallMillis() const override {
    return 1'700'000'000'000LL +
           std::chrono::duration_cast<std::chrono::milliseconds>(duration(now_.load())).count();
  }
  void SleepFor(duration d) override { Advance(d); }
  void Advance(duration d) { now_ += d.count(); }

 private:
  std::atomic<duration::rep> now_{1000};
};

}  // namespace slipway::testing
