#include "notify/notifier.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "crypto/crypto.h"
#include "net/url_client.h"
#include "obs/metrics.h"

namespace slipway {
namespace {

using std::chrono::milliseconds;

// The longest single sleep of the worker: how soon it sees Stop() or a new delivery while it
// waits for a retry.
constexpr milliseconds kSleepStep{100};
constexpr const char* kMetric = "slipway_notifications_total";

// A random (version 4) UUID.
std::string NewDeliveryId() {
  std::string b = crypto::RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3F) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    auto byte = static_cast<unsigned char>(b[i]);
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  }
  return out;
}

std::string BodyFor(const std::string& kind, const Notification& n) {
  if (kind == "slack") return SlackBody(n);
  if (kind == "teams") return TeamsBody(n);
  return WebhookBody(n);
}

void Count(const std::string& kind, const std::string& outcome) {
  bool known = kind == "webhook" || kind == "slack" || kind == "teams";
  obs::Metrics::Global().Inc(kMetric, {{"kind", known ? kind : "unknown"}, {"outcome", outcome}});
}

}  // namespace

// One notification to one target, from Send until it is delivered, failed or dropped. The
// target (its URL and secret) lives only here, in memory.
struct Notifier::Delivery {
  std::uint64_t seq = 0;  // queue order
  NotificationRecord record;
  NotifyTarget target;
  std::string body;
  std::string delivery_id;
  Clock::time_point due;  // the next attempt, not before
  milliseconds backoff{0};
};

Notifier::Notifier(Clock& clock, Store& store, NotifierOptions options)
    : clock_(clock),
      store_(store),
      options_(options),
      cancel_(std::make_unique<net::CallCanceller>()) {
  obs::Metrics::Global().Describe(kMetric, "counter",
                                  "Deployment notification deliveries by kind and outcome "
                                  "(delivered, failed, dropped)");
}

Notifier::~Notifier() {
  Stop();
}

void Notifier::AddServerTargets(std::vector<NotifyTarget> targets) {
  std::lock_guard lock(mu_);
  server_targets_ = std::move(targets);
}

void Notifier::Start() {
  std::lock_guard lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  worker_ = std::thread([this] { Worker(); });
}

void Notifier::Stop() {
  std::lock_guard stop_lock(stop_mu_);  // one Stop at a time: one of them joins
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  cancel_->Cancel();
  if (worker_.joinable()) worker_.join();
  // The worker is gone: what it held, and what waited, is this thread's now.
  std::list<std::unique_ptr<Delivery>> left;
  {
    std::lock_guard lock(mu_);
    left.swap(queue_);
    if (in_flight_) left.push_front(std::move(in_flight_));
  }
  for (auto& d : left) {
    std::string last = d->record.last_error;
    d->record.last_error = "abandoned: the server stopped";
    if (!last.empty()) d->record.last_error += " (last attempt: " + last + ")";
    Record(*d, "failed");
    Count(d->target.kind, "failed");
  }
  if (!left.empty())
    spdlog::info("notifications: {} deliveries abandoned at shutdown", left.size());
}

std::size_t Notifier::backlog() const {
  std::lock_guard lock(mu_);
  return queue_.size() + (in_flight_ ? 1 : 0);
}

void Notifier::Send(const std::vector<NotifyTarget>& targets, const Notification& n) {
  if (!IsNotifyEvent(n.event)) {
    spdlog::error("notifications: unknown event for deployment #{}; nothing sent", n.deployment_id);
    return;
  }
  std::vector<NotifyTarget> all(
      targets.begin(), targets.begin() + std::min(targets.size(), notify_limits::kTargets));
  if (targets.size() > notify_limits::kTargets)
    spdlog::warn("notifications: deployment #{} names {} targets; the first {} are used",
                 n.deployment_id, targets.size(), notify_limits::kTargets);
  {
    std::lock_guard lock(mu_);
    for (const auto& t : server_targets_) {
      if (t.ForApp(n.app)) all.push_back(t);
    }
  }
  for (const auto& target : all) {
    if (!target.Wants(n.event)) continue;
    auto d = std::make_unique<Delivery>();
    d->record.deployment_id = n.deployment_id;
    d->record.app = n.app;
    d->record.event = n.event;
    d->record.target = ShownTarget(target);
    d->record.created_ms = d->record.updated_ms = clock_.WallMillis();
    Status valid = ValidateTarget(target);
    if (!valid.ok()) {
      d->record.status = "failed";
      d->record.last_error = "invalid target: " + valid.message();
    }
    auto created = store_.CreateNotification(d->record);
    if (created.ok()) {
      d->record = *created;
    } else {
      // Delivered all the same: a notification matters more than its record.
      spdlog::warn("notifications: cannot record a delivery for deployment #{}: {}",
                   n.deployment_id, created.status().message());
    }
    if (!valid.ok()) {
      spdlog::warn("notifications: deployment #{}: {}: {}", n.deployment_id, d->record.target,
                   d->record.last_error);
      Count(target.kind, "failed");
      continue;
    }
    d->target = target;
    d->body = BodyFor(target.kind, n);
    d->delivery_id = NewDeliveryId();
    d->backoff = options_.first_backoff;
    d->due = clock_.Now();

    std::unique_ptr<Delivery> dropped;
    bool stopped = false;
    {
      std::lock_guard lock(mu_);
      stopped = stopping_;
      if (!stopped) {
        if (queue_.size() >= std::max<std::size_t>(options_.max_queue, 1)) {
          dropped = std::move(queue_.front());
          queue_.pop_front();
        }
        d->seq = next_seq_++;
        queue_.push_back(std::move(d));
      }
    }
    cv_.notify_all();
    if (stopped) {
      d->record.last_error = "abandoned: the notifier is stopped";
      Record(*d, "failed");
      Count(d->target.kind, "failed");
    }
    if (dropped) Drop(*dropped);
  }
}

void Notifier::Record(Delivery& d, const std::string& status) {
  d.record.status = status;
  d.record.updated_ms = clock_.WallMillis();
  if (d.record.id == 0) return;  // it could not be recorded when it was queued
  if (Status s = store_.UpdateNotification(d.record); !s.ok())
    spdlog::debug("notifications: cannot update record #{}: {}", d.record.id, s.message());
}

// The worker's boundary: whatever throws fails the delivery it was making (if any), is
// logged, and the worker goes on after a pause.
void Notifier::Worker() {
  for (;;) {
    try {
      while (RunOnce()) {
      }
      return;
    } catch (const std::exception& e) {
      spdlog::error("notifications: worker: unexpected exception: {}", e.what());
    } catch (...) {
      spdlog::error("notifications: worker: unexpected non-standard exception");
    }
    // Here only after a throw. Nothing below throws short of memory exhaustion.
    std::unique_ptr<Delivery> failed;
    {
      std::lock_guard lock(mu_);
      failed = std::move(in_flight_);
    }
    if (failed) {
      failed->record.last_error = "internal error";
      Record(*failed, "failed");
      Count(failed->target.kind, "failed");
    }
    // Real time, not the Clock: the pause must not be able to throw in turn.
    std::this_thread::sleep_for(kSleepStep);
  }
}

// Waits for the next due delivery, makes one attempt, and records it. False when stopping.
bool Notifier::RunOnce() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_) return false;
    if (queue_.empty()) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      continue;
    }
    auto next = std::min_element(queue_.begin(), queue_.end(),
                                 [](const auto& a, const auto& b) { return a->due < b->due; });
    auto now = clock_.Now();
    if ((*next)->due <= now) {
      in_flight_ = std::move(*next);
      queue_.erase(next);
      break;
    }
    auto wait = std::min<Clock::duration>((*next)->due - now, kSleepStep);
    lock.unlock();
    clock_.SleepFor(wait);
    lock.lock();
  }
  lock.unlock();
  // Only this thread touches in_flight_ until it is handed back under the lock.
  bool finished = Attempt(*in_flight_);
  lock.lock();
  if (finished) {
    in_flight_.reset();
    return !stopping_;
  }
  if (stopping_) return false;  // Stop() records it
  auto dropped = Requeue(std::move(in_flight_));
  lock.unlock();
  if (dropped) Drop(*dropped);
  return true;
}

// REQUIRES: mu_ held. Back in the queue at its place by age, so that the bound drops the
// oldest whether it waits for a first attempt or for a retry. Returns the delivery dropped to
// keep the bound (Sends filled the queue while this one was in flight), for the caller to
// record once it has let go of the lock.
std::unique_ptr<Notifier::Delivery> Notifier::Requeue(std::unique_ptr<Delivery> d) {
  auto at = std::find_if(queue_.begin(), queue_.end(),
                         [&d](const auto& other) { return other->seq > d->seq; });
  queue_.insert(at, std::move(d));
  if (queue_.size() <= std::max<std::size_t>(options_.max_queue, 1)) return nullptr;
  auto dropped = std::move(queue_.front());
  queue_.pop_front();
  return dropped;
}

void Notifier::Drop(Delivery& d) {
  d.record.last_error =
      "dropped: more than " + std::to_string(options_.max_queue) + " deliveries were waiting";
  Record(d, "dropped");
  Count(d.target.kind, "dropped");
  spdlog::warn("notifications: queue full; dropped the oldest ({} of deployment #{} to {})",
               d.record.event, d.record.deployment_id, d.record.target);
}

bool Notifier::Attempt(Delivery& d) {
  net::UrlRequest req;
  req.url = d.target.url;
  req.ca_file = d.target.ca_file;
  req.timeout = options_.attempt_timeout;
  req.body = d.body;
  req.headers = {{"Content-Type", "application/json"},
                 {"X-Slipway-Event", d.record.event},
                 {"X-Slipway-Delivery", d.delivery_id}};
  if (d.target.kind == "webhook" && !d.target.secret.empty())
    req.headers.emplace_back("X-Slipway-Signature",
                             "sha256=" + crypto::HmacSha256Hex(d.target.secret, d.body));
  auto res = net::CallUrl(req, cancel_.get());
  if (!res.ok() && res.status().code() == Code::kCancelled) return false;  // stopping

  ++d.record.attempts;
  d.record.http_status = res.ok() ? res->status : 0;
  if (res.ok() && res->status >= 200 && res->status < 300) {
    d.record.last_error.clear();
    Record(d, "delivered");
    Count(d.target.kind, "delivered");
    spdlog::info("notifications: {} of deployment #{} delivered to {} (attempt {})", d.record.event,
                 d.record.deployment_id, d.record.target, d.record.attempts);
    return true;
  }
  d.record.last_error = res.ok() ? "HTTP " + std::to_string(res->status) : res.status().message();
  if (d.record.attempts >= options_.max_attempts) {
    Record(d, "failed");
    Count(d.target.kind, "failed");
    spdlog::warn("notifications: {} of deployment #{} to {} failed after {} attempts: {}",
                 d.record.event, d.record.deployment_id, d.record.target, d.record.attempts,
                 d.record.last_error);
    return true;
  }
  Record(d, "retrying");
  spdlog::debug("notifications: {} of deployment #{} to {}: attempt {} failed ({}); next in {} ms",
                d.record.event, d.record.deployment_id, d.record.target, d.record.attempts,
                d.record.last_error, d.backoff.count());
  d.due = clock_.Now() + d.backoff;
  d.backoff = std::min(d.backoff * 2, options_.max_backoff);
  return false;
}

}  // namespace slipway
