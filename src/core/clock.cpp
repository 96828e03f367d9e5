#include "core/clock.h"

#include <thread>

namespace slipway {

SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}

Clock::time_point SystemClock::Now() const {
  return std::chrono::steady_clock::now();
}

long long SystemClock::WallMillis() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void SystemClock::SleepFor(duration d) {
  std::this_thread::sleep_for(d);
}

}  // namespace slipway
