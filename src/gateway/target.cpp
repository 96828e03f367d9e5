#include "gateway/target.h"

namespace slipway::gateway {

void Target::EndRequest(int status, double seconds) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (status >= 500) errors_.fetch_add(1, std::memory_order_relaxed);
  latency_micros_.fetch_add(static_cast<std::int64_t>(seconds * 1e6), std::memory_order_relaxed);
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  // Last: once in-flight reaches zero a drain may dispose of this target.
  inflight_.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace slipway::gateway
