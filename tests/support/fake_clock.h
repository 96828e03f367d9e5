#pragma once
// A Clock the test drives: Now() moves only when Advance() or SleepFor() is called, so
// deadline and timer logic is exercised without sleeping. SleepFor returns at once, having
// moved the clock by the duration asked for.
#include <atomic>
#include <functional>

#include "core/clock.h"

namespace slipway::testing {

class FakeClock final : public Clock {
 public:
  time_point Now() const override { return time_point(duration(now_.load())); }
  long long WallMillis() const override {
    return 1'700'000'000'000LL +
           std::chrono::duration_cast<std::chrono::milliseconds>(duration(now_.load())).count();
  }
  void SleepFor(duration d) override {
    if (on_sleep) on_sleep(d);
    Advance(d);
  }
  void Advance(duration d) { now_ += d.count(); }

  // Runs at every SleepFor, on the sleeping thread, before the clock moves: a test acts at a
  // point in time, or makes the sleeper's thread fail. Set it while no thread sleeps.
  std::function<void(duration)> on_sleep;

 private:
  std::atomic<duration::rep> now_{1000};
};

}  // namespace slipway::testing
