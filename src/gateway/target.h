#pragma once
// One upstream the gateway forwards to: an instance of a release on host:port. Counters are
// atomics so the request path never locks; in-flight drives draining.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace slipway::gateway {

class Target {
 public:
  Target(std::string id, std::string host, int port)
      : id_(std::move(id)), host_(std::move(host)), port_(port) {}

  const std::string& id() const { return id_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }

  std::int64_t inflight() const { return inflight_.load(std::memory_order_acquire); }
  void BeginRequest() { inflight_.fetch_add(1, std::memory_order_acq_rel); }
  // Records one finished request: its status and how long it took.
  void EndRequest(int status, double seconds);

  std::int64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  std::int64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  double latency_sum() const { return latency_micros_.load(std::memory_order_relaxed) / 1e6; }
  static constexpr std::array<double, 10> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,  0.1,    0.25,  1,    5};
  std::int64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }

  // Opaque per-target state owned by the proxy (its idle connection pool), created on
  // first use. Thread-safe.
  template <typename T>
  std::shared_ptr<T> State() {
    std::lock_guard lock(state_mu_);
    if (!state_) state_ = std::make_shared<T>();
    return std::static_pointer_cast<T>(state_);
  }

 private:
  const std::string id_;
  const std::string host_;
  const int port_;
  std::atomic<std::int64_t> inflight_{0};
  std::atomic<std::int64_t> requests_{0};
  std::atomic<std::int64_t> errors_{0};
  std::atomic<std::int64_t> latency_micros_{0};
  std::array<std::atomic<std::int64_t>, kBuckets.size()> buckets_{};
  std::mutex state_mu_;
  std::shared_ptr<void> state_;
};

}  // namespace slipway::gateway
