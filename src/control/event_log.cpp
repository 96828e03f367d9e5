#include "control/event_log.h"

#include <spdlog/spdlog.h>

#include "git/git.h"

namespace slipway {

void EventLog::Append(std::int64_t deployment_id, const std::string& stage,
                      const std::string& state, const std::string& text,
                      const std::string& stream) {
  Event e;
  e.deployment_id = deployment_id;
  e.stage = stage;
  e.state = state;
  e.stream = stream;
  e.text = git::RedactSecrets(text);
  if (e.text.size() > kMaxLineBytes) {
    e.text.resize(kMaxLineBytes);
    e.text += " …[line cut at 8 KiB]";
  }
  if (state == "log") {
    std::lock_guard lock(mu_);
    if (!Budget(deployment_id, e.text.size(), e.text)) return;
  }
  auto stored = store_.AppendEvent(std::move(e));
  if (!stored.ok()) {
    spdlog::error("deployment {}: cannot store event: {}", deployment_id,
                  stored.status().ToString());
  }
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
  Wake(deployment_id);
}

bool EventLog::Budget(std::int64_t deployment_id, std::size_t bytes, std::string& text) {
  if (output_bytes_.size() > 1000) output_bytes_.erase(output_bytes_.begin());  // oldest ids
  auto& used = output_bytes_[deployment_id];
  if (used > kMaxOutputBytes) return false;
  used += bytes;
  if (used > kMaxOutputBytes) {
    text = "output past 16 MiB is not stored (the rest of this deployment's output is dropped)";
  }
  return true;
}

void EventLog::NotifyAll() {
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
  Wake(std::nullopt);
}

std::uint64_t EventLog::Subscribe(std::int64_t topic, std::function<void()> wake) {
  std::lock_guard lock(sub_mu_);
  std::uint64_t id = next_sub_++;
  subscribers_.emplace(id, Subscriber{topic, std::move(wake)});
  return id;
}

void EventLog::Unsubscribe(std::uint64_t id) {
  std::lock_guard lock(sub_mu_);
  subscribers_.erase(id);
}

void EventLog::Wake(std::optional<std::int64_t> topic) {
  std::lock_guard lock(sub_mu_);
  for (auto& [id, sub] : subscribers_) {
    if (!topic || sub.topic == *topic) sub.wake();
  }
}

void EventLog::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
  Wake(std::nullopt);
}

bool EventLog::closed() {
  std::lock_guard lock(mu_);
  return closed_;
}

Result<std::vector<Event>> EventLog::Read(std::int64_t deployment_id, std::int64_t after_seq,
                                          int limit, std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    std::uint64_t seen;
    bool closed;
    {
      std::lock_guard lock(mu_);
      seen = generation_;
      closed = closed_;
    }
    auto events = store_.ListEvents(deployment_id, after_seq, limit);
    if (!events.ok() || !events->empty() || closed ||
        std::chrono::steady_clock::now() >= deadline) {
      return events;
    }
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline, [&] { return generation_ != seen || closed_; }))
      return events;
  }
}

}  // namespace slipway
