#pragma once
// Deployment notifications: a deployment's outcome POSTed to webhooks, Slack and Microsoft
// Teams by a background worker that never holds a deployment up.
//
// Targets come from an app's slipway.yaml (`notify:`, anyone with push access writes it) and
// from the server's --notify file (sent for every app, or the apps it lists). A target's URL
// is a credential (a Slack or Teams URL is all it takes to post there) and so is its secret:
// neither, nor any part of the URL but its host, ever appears in a log, a record, an error or
// an API answer. A target is shown as ShownTarget(): "slack hooks.slack.com".
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/model.h"
#include "core/status.h"
#include "store/store.h"

namespace slipway {

namespace net {
class CallCanceller;
}

namespace notify_limits {
inline constexpr std::size_t kTargets = 16;     // per manifest, and in the server's file
inline constexpr std::size_t kUrlBytes = 2048;  // a target's URL
inline constexpr std::size_t kSecretBytes = 256;
inline constexpr std::size_t kNameBytes = 64;    // a target's name
inline constexpr std::size_t kApps = 256;        // a server target's `apps:` list
inline constexpr std::size_t kPathBytes = 4096;  // a target's ca_file
}  // namespace notify_limits

// The events. `aborted` is a rollout abort, told in addition to the `rolled_back` it leads
// to.
inline constexpr const char* kNotifyEvents[] = {"started",     "succeeded", "failed",
                                                "rolled_back", "aborted",   "paused"};
bool IsNotifyEvent(std::string_view event);

struct NotifyTarget {
  std::string name;    // optional label (the server file's); shown nowhere the URL may not be
  std::string kind;    // webhook | slack | teams
  std::string url;     // http:// or https://; a credential: never shown, logged or recorded
  std::string secret;  // webhook only: signs the body (X-Slipway-Signature)
  std::vector<std::string> events;  // empty = all six
  std::string ca_file;              // https only, optional: PEM bundle to verify the receiver with
  std::vector<std::string> apps;    // server targets only: the apps it is for; empty = all

  // Whether `event` is one this target asked for.
  bool Wants(std::string_view event) const;
  // Whether this (server) target is for `app`.
  bool ForApp(std::string_view app) const;
};

// "kind host" (e.g. "slack hooks.slack.com"): never the scheme, port, path, query, user info
// or secret. "kind ?" when the URL has no host that can be shown.
std::string ShownTarget(const NotifyTarget& target);

// OK, or kInvalid with a message that names the field and never repeats the URL or the
// secret ("url: the scheme must be http:// or https://"). Checks: kind known; url http(s)
// with a host, at most kUrlBytes, printable ASCII (no space or control character); secret at
// most kSecretBytes and only for a webhook; events among kNotifyEvents; name at most
// kNameBytes of [A-Za-z0-9._-]; apps at most kApps app names; ca_file an absolute path, only
// with https. The caller bounds the number of targets (notify_limits::kTargets).
Status ValidateTarget(const NotifyTarget& target);

// What happened to a deployment, as the Deployer tells it.
struct Notification {
  std::string event;  // one of kNotifyEvents
  std::string app;
  std::int64_t deployment_id = 0;
  std::int64_t release = 0;  // the release number; 0 when there is none (yet)
  std::string commit;
  std::string status;       // the deployment's status: running, succeeded, failed, rolled_back, …
  std::string error;        // "" when none
  std::string stage;        // the pipeline stage it is at or ended in
  nlohmann::json analysis;  // the rollout's last analysis, or null
  long long time_ms = 0;    // wall-clock time of the event
};

// The bodies, pure. Texts over 2,000 bytes (the error, the commit) are cut on a character
// boundary with "…", and an analysis whose JSON is over 8 KiB is sent as null: a
// notification stays small whatever a deployment's error holds. Invalid UTF-8 is replaced
// (U+FFFD), never refused.
//
// The webhook's JSON: {"event", "app", "deployment_id", "release", "commit", "status",
// "error", "stage", "analysis", "time_ms"}.
std::string WebhookBody(const Notification& n);
// Slack incoming webhook: {"text": one line}, e.g. "hello: deployment 12 rolled back
// (release 4, commit 0123abc, stage rollout): <error or analysis reason>". &, < and > are
// escaped as Slack requires, so no text from a deployment can mention or link anyone.
std::string SlackBody(const Notification& n);
// Office 365 connector MessageCard: @type, @context, summary, themeColor (green succeeded,
// red failed/rolled_back/aborted, amber paused, blue started), title, and one section whose
// facts are the app, deployment, release, commit, stage, status and error.
std::string TeamsBody(const Notification& n);

struct NotifierOptions {
  int max_attempts = 6;
  // Waits between attempts: first_backoff, doubling, at most max_backoff (1, 2, 4, 8, 16 s).
  std::chrono::milliseconds first_backoff{1000};
  std::chrono::milliseconds max_backoff{16000};
  std::chrono::milliseconds attempt_timeout{5000};  // one POST, connection to response head
  std::size_t max_queue = 1000;                     // deliveries waiting; see Send
};

// Delivers notifications on one worker thread. Thread-safe.
//
// Each delivery (one notification to one target) is recorded in the store when it is queued
// (`pending`) and after each attempt: `retrying` while attempts remain, then `delivered` or
// `failed`; `dropped` when the queue overflowed. An attempt is one HTTP POST with
// Content-Type: application/json, X-Slipway-Event, X-Slipway-Delivery (one random id per
// delivery, the same on every attempt, so a receiver can drop repeats) and, for a webhook
// with a secret, X-Slipway-Signature: sha256=<hex HMAC-SHA256(secret, body)>. A 2xx answer
// delivers; anything else (a 3xx too: redirects are not followed) or a network error is
// retried after the backoff until max_attempts. Response bodies are never read.
//
// Time: backoffs are slept through the Clock (a FakeClock drives them in tests), in steps of
// at most 100 ms so that Stop() and deliveries queued meanwhile are seen promptly; the
// attempt timeout is real time (it bounds a network call).
class Notifier {
 public:
  // `clock` and `store` must outlive the notifier.
  Notifier(Clock& clock, Store& store, NotifierOptions options = {});
  // Stops (see Stop()).
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Targets of the server's --notify file, sent for every app they are for in addition to
  // the targets each Send names. REQUIRES: each passed ValidateTarget. Replaces the previous
  // set; deliveries already queued keep theirs.
  void AddServerTargets(std::vector<NotifyTarget> targets);

  // Starts the worker. Deliveries queued before are then made. Call at most once.
  void Start();

  // Ends the worker promptly: an attempt in flight is cut, and no attempt starts after.
  // Every delivery not yet delivered or failed (queued, waiting for a retry, or in flight)
  // is then recorded `failed` with last_error "abandoned: the server stopped" and its
  // attempts so far: nothing is left `pending` or `retrying` by a clean stop. Idempotent.
  //
  // What a crash leaves `pending` or `retrying` stays so (deliveries are not persisted
  // across restarts).
  void Stop();

  // Queues `n` for each of `targets` (at most notify_limits::kTargets are taken) and each
  // server target for n.app, that wants n.event. Never blocks on the network: it records each
  // delivery `pending` in the store and returns. A target that fails ValidateTarget is
  // recorded `failed` with the reason, and sent nothing. When the queue already holds
  // max_queue deliveries, the oldest waiting one is recorded `dropped` to make room. After
  // Stop() the deliveries are recorded `failed` ("the notifier is stopped"). A notification
  // whose event is not one of kNotifyEvents is logged and ignored.
  void Send(const std::vector<NotifyTarget>& targets, const Notification& n);

  // Deliveries queued and not yet finished (waiting, or in flight): for tests and metrics.
  std::size_t backlog() const;

 private:
  struct Delivery;
  void Record(Delivery& d, const std::string& status);
  void Worker();
  bool RunOnce();
  // One attempt; true when the delivery is finished (delivered or failed).
  bool Attempt(Delivery& d);
  std::unique_ptr<Delivery> Requeue(std::unique_ptr<Delivery> d);
  void Drop(Delivery& d);

  Clock& clock_;
  Store& store_;
  const NotifierOptions options_;
  std::unique_ptr<net::CallCanceller> cancel_;  // ends the attempt in flight at Stop()

  std::mutex stop_mu_;  // serialises Stop()
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<NotifyTarget> server_targets_;
  std::list<std::unique_ptr<Delivery>> queue_;  // waiting, in the order they were queued
  std::unique_ptr<Delivery> in_flight_;         // the worker's; read by Stop() after the join
  std::uint64_t next_seq_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace slipway
