#pragma once
// Deployment events: persisted first, then announced to whoever waits (long polls, SSE
// streams, the CLI). Readers always read from the store by seq, so a reader that resumes
// from a seq sees every event once, in order, with no gap.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <functional>
#include <map>

#include "core/model.h"
#include "net/http.h"
#include "store/store.h"

namespace slipway {

// Also the API's Notifier: topic = deployment id; a wake follows every event of that
// deployment, and NotifyAll (a deployment ended, shutdown) wakes every subscriber.
class EventLog final : public net::Notifier {
 public:
  static constexpr std::size_t kMaxLineBytes = 8 * 1024;
  static constexpr std::uint64_t kMaxOutputBytes = 16ull << 20;

  // `store` must outlive the log.
  explicit EventLog(Store& store) : store_(store) {}

  // Stores the event (seq assigned by the store), with any credentials in URLs redacted,
  // and wakes waiters. Output is bounded: a line is cut at kMaxLineBytes, and once a
  // deployment's output ("log" events) passes kMaxOutputBytes further lines are dropped
  // after one notice (a build must not be able to fill the disk through its output). Persisting is
  // best-effort from the caller's view: a store failure is logged, never thrown.
  void Append(std::int64_t deployment_id, const std::string& stage, const std::string& state,
              const std::string& text, const std::string& stream = "system");

  // Events after `after_seq`, waiting up to `wait` for the first one to arrive. Returns an
  // empty list on timeout. `still_open` says whether more may come (deployment not terminal).
  Result<std::vector<Event>> Read(std::int64_t deployment_id, std::int64_t after_seq, int limit,
                                  std::chrono::milliseconds wait);

  // Wakes every waiter (used at shutdown and when a deployment ends).
  void NotifyAll();
  // Ends every wait at once, now and from now on (shutdown).
  void Close();
  bool closed();

  // Wakes the subscribers of one deployment (a stream that has more to send than one chunk).
  void Poke(std::int64_t deployment_id) { Wake(deployment_id); }

  // net::Notifier. `wake` runs under the log's subscriber lock: it must only post work.
  std::uint64_t Subscribe(std::int64_t topic, std::function<void()> wake) override;
  void Unsubscribe(std::uint64_t id) override;

 private:
  Store& store_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t generation_ = 0;  // bumped on every append, guarded by mu_
  bool closed_ = false;           // guarded by mu_
  void Wake(std::optional<std::int64_t> topic);
  // Whether another output line of `deployment_id` fits its budget; the first that does not
  // turns into a notice. Guarded by mu_.
  bool Budget(std::int64_t deployment_id, std::size_t bytes, std::string& text);
  std::map<std::int64_t, std::uint64_t> output_bytes_;  // guarded by mu_
  struct Subscriber {
    std::int64_t topic;
    std::function<void()> wake;
  };
  std::mutex sub_mu_;  // guards the two below; held while wakes run
  std::uint64_t next_sub_ = 1;
  std::map<std::uint64_t, Subscriber> subscribers_;
};

}  // namespace slipway
