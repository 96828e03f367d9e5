#pragma once
// One upstream the gateway forwards to: an instance of a release on host:port, or a URL
// (`TargetFromUrl`). Counters are atomics so the request path never locks; in-flight drives
// draining.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace slipway::gateway {

// What a rollout reads about one target: the last `seconds` of traffic.
struct WindowStats {
  std::int64_t requests = 0;
  std::int64_t errors = 0;           // 5xx, including the gateway's own 502/504 for this target
  double p50 = 0, p95 = 0, p99 = 0;  // seconds; 0 when there were no requests
};

// Requests, 5xx and a latency histogram in one-second slots over the last kSlots seconds.
// Lock-free: a slot is claimed for a new second by whoever records first in it (a record
// racing the claim may land in the fresh slot or be lost; never corrupts). Latency buckets
// grow geometrically (15% apart, 10 µs to about 5 s, the last one open-ended), so
// percentiles are exact to one bucket (interpolated inside it). `now_s` is a
// caller-supplied monotonic second (a Clock seam for tests).
class SlidingWindow {
 public:
  static constexpr int kSlots = 60;
  static constexpr int kLatencyBuckets = 96;
  void Record(std::int64_t now_s, int status, double seconds);
  using Histogram = std::array<std::int64_t, kLatencyBuckets>;
  // The last `seconds` (1..kSlots) seconds up to and including `now_s`.
  WindowStats Read(std::int64_t now_s, int seconds) const;
  // Adds the same seconds' requests, errors and latency histogram to `out` and `hist`, so the
  // windows of several targets combine exactly (percentiles are not additive).
  void AddTo(std::int64_t now_s, int seconds, WindowStats& out, Histogram& hist) const;
  // Fills out's percentiles from a histogram built by AddTo.
  static void SetPercentiles(const Histogram& hist, WindowStats& out);
  // The bucket index for a latency, and a bucket's upper bound in seconds.
  static int BucketOf(double seconds);
  static double UpperBound(int bucket);

 private:
  struct Slot {
    std::atomic<std::int64_t> second{-1};
    std::atomic<std::int64_t> requests{0};
    std::atomic<std::int64_t> errors{0};
    std::array<std::atomic<std::int32_t>, kLatencyBuckets> latency{};
  };
  Slot& Claim(std::int64_t now_s);
  std::array<Slot, kSlots> slots_{};
};

class Target {
 public:
  // `host` is an IP address or a DNS name (the proxy resolves names asynchronously, and
  // "localhost" / "*.localhost" to 127.0.0.1 without asking DNS). `authority`, when not
  // empty, is the Host header sent upstream instead of the client's.
  Target(std::string id, std::string host, int port, std::string authority = {})
      : id_(std::move(id)),
        host_(std::move(host)),
        port_(port),
        endpoint_(host_ + ":" + std::to_string(port)),
        authority_(std::move(authority)) {}
  ~Target();
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  const std::string& id() const { return id_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // "host:port": what pooled upstream connections are keyed by.
  const std::string& endpoint() const { return endpoint_; }
  // The Host header to send upstream; "" forwards the client's.
  const std::string& authority() const { return authority_; }

  std::int64_t inflight() const { return inflight_.load(std::memory_order_acquire); }
  void BeginRequest() { inflight_.fetch_add(1, std::memory_order_acq_rel); }
  // Records one finished request: its status and how long it took (also into the sliding
  // window, at the steady clock's current second).
  void EndRequest(int status, double seconds);
  // The last `seconds` of this target's traffic (1..SlidingWindow::kSlots).
  WindowStats Window(int seconds) const;
  // The last `seconds` of several targets' traffic taken together (a canary set, a baseline).
  static WindowStats Combined(const std::vector<std::shared_ptr<Target>>& targets, int seconds);

  std::int64_t requests() const { return Sum(&Shard::requests); }
  std::int64_t errors() const { return Sum(&Shard::errors); }
  double latency_sum() const { return static_cast<double>(Sum(&Shard::latency_micros)) / 1e6; }
  static constexpr std::array<double, 10> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,  0.1,    0.25,  1,    5};
  std::int64_t bucket(std::size_t i) const;

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
  const std::string endpoint_;
  const std::string authority_;
  std::atomic<std::int64_t> inflight_{0};
  // Counters are split in cache-line shards, one per recording thread (modulo kShards), so
  // gateway threads do not pass one line back and forth on every request; reads add them up.
  struct alignas(64) Shard {
    std::atomic<std::int64_t> requests{0};
    std::atomic<std::int64_t> errors{0};
    std::atomic<std::int64_t> latency_micros{0};
    std::array<std::atomic<std::int64_t>, kBuckets.size()> buckets{};
  };
  static constexpr std::size_t kShards = 4;
  std::int64_t Sum(std::atomic<std::int64_t> Shard::*field) const;
  std::array<Shard, kShards> shards_{};
  // Allocated on the first finished request (about 24 KiB), so idle targets stay small;
  // published with one compare-exchange, freed with the target.
  std::atomic<SlidingWindow*> window_{nullptr};
  std::mutex state_mu_;
  std::shared_ptr<void> state_;
};

// A target for an upstream given by URL: `http://host[:port][/]`, host a DNS name, an IPv4
// address or a bracketed IPv6 one, port 1..65535 (default 80). Its authority is `host[:port]`
// as written, so the upstream sees the Host it expects (a virtual host, a shared
// environment's ingress). kInvalid with a one-line reason for anything else: another scheme,
// user info, a path other than "/", a query or fragment, a bad host or port. The URL is not
// quoted in the reason (it may carry a secret).
Result<std::shared_ptr<Target>> TargetFromUrl(const std::string& id, const std::string& url);

}  // namespace slipway::gateway
