#include "gateway/target.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace slipway::gateway {
namespace {

constexpr double kFirstBound = 10e-6;  // bucket 0 holds everything up to 10 µs
constexpr double kGrowth = 1.15;       // each bucket's upper bound is 15% above the previous
using Histogram = SlidingWindow::Histogram;

// Upper bounds of the latency buckets; the last bucket is open-ended (infinity).
const std::array<double, SlidingWindow::kLatencyBuckets>& Bounds() {
  static const auto bounds = [] {
    std::array<double, SlidingWindow::kLatencyBuckets> b{};
    for (int i = 0; i + 1 < SlidingWindow::kLatencyBuckets; ++i)
      b[static_cast<std::size_t>(i)] = kFirstBound * std::pow(kGrowth, i);
    b.back() = std::numeric_limits<double>::infinity();
    return b;
  }();
  return bounds;
}

// The q-quantile of `total` samples in `hist`, interpolated linearly inside its bucket
// (between the previous bucket's bound, or 0, and its own). A quantile in the open-ended last
// bucket reports the bucket's lower bound: "at least this".
double Quantile(const Histogram& hist, std::int64_t total, double q) {
  const double rank = q * static_cast<double>(total);
  double below = 0;
  for (int b = 0; b < SlidingWindow::kLatencyBuckets; ++b) {
    const auto n = static_cast<double>(hist[static_cast<std::size_t>(b)]);
    if (n > 0 && below + n >= rank) {
      double lo = b == 0 ? 0 : SlidingWindow::UpperBound(b - 1);
      double hi = SlidingWindow::UpperBound(b);
      return std::isinf(hi) ? lo : lo + (hi - lo) * (rank - below) / n;
    }
    below += n;
  }
  return 0;
}

std::int64_t SteadySeconds() {
  using std::chrono::steady_clock;
  return std::chrono::duration_cast<std::chrono::seconds>(steady_clock::now().time_since_epoch())
      .count();
}

// The target's window, allocated by the first caller; a racing loser frees its allocation.
SlidingWindow& EnsureWindow(std::atomic<SlidingWindow*>& window) {
  SlidingWindow* w = window.load(std::memory_order_acquire);
  if (w) return *w;
  auto* fresh = new SlidingWindow();
  if (window.compare_exchange_strong(w, fresh, std::memory_order_acq_rel,
                                     std::memory_order_acquire))
    return *fresh;
  delete fresh;
  return *w;
}

}  // namespace

int SlidingWindow::BucketOf(double seconds) {
  if (!(seconds > kFirstBound)) return 0;  // also NaN and negative
  double estimate = std::ceil(std::log(seconds / kFirstBound) / std::log(kGrowth));
  int b = static_cast<int>(std::clamp(estimate, 0.0, double{kLatencyBuckets - 1}));
  // The logarithm may land one off at a bound; the table decides: bound(b-1) < s <= bound(b).
  if (b > 0 && seconds <= UpperBound(b - 1)) --b;
  if (seconds > UpperBound(b)) ++b;
  return b;
}

double SlidingWindow::UpperBound(int bucket) {
  return Bounds()[static_cast<std::size_t>(std::clamp(bucket, 0, kLatencyBuckets - 1))];
}

// Only a newer second takes a slot over, and only the compare-exchange winner zeroes it;
// a record that saw the new second before the zeroing is lost (see the class comment).
SlidingWindow::Slot& SlidingWindow::Claim(std::int64_t now_s) {
  Slot& slot = slots_[static_cast<std::size_t>((now_s % kSlots + kSlots) % kSlots)];
  std::int64_t seen = slot.second.load(std::memory_order_acquire);
  if (seen < now_s && slot.second.compare_exchange_strong(seen, now_s, std::memory_order_acq_rel)) {
    slot.requests.store(0, std::memory_order_relaxed);
    slot.errors.store(0, std::memory_order_relaxed);
    for (auto& n : slot.latency) n.store(0, std::memory_order_relaxed);
  }
  return slot;
}

void SlidingWindow::Record(std::int64_t now_s, int status, double seconds) {
  Slot& slot = Claim(now_s);
  // A record older than its slot's second (the caller stalled a whole cycle) is dropped
  // rather than counted in a second it does not belong to.
  if (slot.second.load(std::memory_order_relaxed) != now_s) return;
  slot.requests.fetch_add(1, std::memory_order_relaxed);
  if (status >= 500) slot.errors.fetch_add(1, std::memory_order_relaxed);
  slot.latency[static_cast<std::size_t>(BucketOf(seconds))].fetch_add(1, std::memory_order_relaxed);
}

void SlidingWindow::AddTo(std::int64_t now_s, int seconds, WindowStats& out,
                          Histogram& hist) const {
  const std::int64_t oldest = now_s - std::clamp(seconds, 1, kSlots);  // exclusive
  for (const Slot& slot : slots_) {
    const std::int64_t s = slot.second.load(std::memory_order_acquire);
    if (s <= oldest || s > now_s) continue;
    out.requests += slot.requests.load(std::memory_order_relaxed);
    out.errors += slot.errors.load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < hist.size(); ++b)
      hist[b] += slot.latency[b].load(std::memory_order_relaxed);
  }
}

void SlidingWindow::SetPercentiles(const Histogram& hist, WindowStats& out) {
  std::int64_t samples = 0;
  for (auto n : hist) samples += n;
  if (samples == 0) return;
  out.p50 = Quantile(hist, samples, 0.50);
  out.p95 = Quantile(hist, samples, 0.95);
  out.p99 = Quantile(hist, samples, 0.99);
}

WindowStats SlidingWindow::Read(std::int64_t now_s, int seconds) const {
  WindowStats out;
  Histogram hist{};
  AddTo(now_s, seconds, out, hist);
  SetPercentiles(hist, out);
  return out;
}

Target::~Target() {
  delete window_.load(std::memory_order_acquire);
}

namespace {
// A small number per thread, handed out in order: gateway threads get distinct shards.
std::size_t ThisThreadShard() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine;
}
}  // namespace

std::int64_t Target::Sum(std::atomic<std::int64_t> Shard::*field) const {
  std::int64_t total = 0;
  for (const auto& shard : shards_) total += (shard.*field).load(std::memory_order_relaxed);
  return total;
}

std::int64_t Target::bucket(std::size_t i) const {
  std::int64_t total = 0;
  for (const auto& shard : shards_) total += shard.buckets[i].load(std::memory_order_relaxed);
  return total;
}

void Target::EndRequest(int status, double seconds) {
  Shard& shard = shards_[ThisThreadShard() % kShards];
  shard.requests.fetch_add(1, std::memory_order_relaxed);
  if (status >= 500) shard.errors.fetch_add(1, std::memory_order_relaxed);
  shard.latency_micros.fetch_add(static_cast<std::int64_t>(seconds * 1e6),
                                 std::memory_order_relaxed);
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      shard.buckets[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  EnsureWindow(window_).Record(SteadySeconds(), status, seconds);
  // Last: once in-flight reaches zero a drain may dispose of this target.
  inflight_.fetch_sub(1, std::memory_order_acq_rel);
}

WindowStats Target::Window(int seconds) const {
  const SlidingWindow* w = window_.load(std::memory_order_acquire);
  return w ? w->Read(SteadySeconds(), seconds) : WindowStats{};
}

WindowStats Target::Combined(const std::vector<std::shared_ptr<Target>>& targets, int seconds) {
  WindowStats out;
  Histogram hist{};
  const std::int64_t now_s = SteadySeconds();
  for (const auto& t : targets) {
    const SlidingWindow* w = t ? t->window_.load(std::memory_order_acquire) : nullptr;
    if (w) w->AddTo(now_s, seconds, out, hist);
  }
  SlidingWindow::SetPercentiles(hist, out);
  return out;
}

}  // namespace slipway::gateway
