#pragma once
// The control plane's front door: apps, deployments, rollbacks, cancels and webhook intake,
// a scheduler that runs deployments (one at a time per app, a global cap, a newer push
// superseding a queued one), and the recovery that makes a restart land in a true state.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/actor.h"
#include "control/context.h"
#include "control/rollout_board.h"
#include "manifest/manifest.h"
#include "webhook/webhook.h"

namespace slipway {

struct ControllerOptions {
  int max_concurrent = 4;  // deployments running at once, across apps
};

struct WebhookOutcome {
  int http_status = 200;
  std::string outcome;  // queued | duplicate | ignored | pong | error code
  std::string detail;
  std::optional<std::int64_t> deployment_id;
};

class Controller {
 public:
  Controller(Context& ctx, ControllerOptions options);
  ~Controller();

  // Recovers from the previous run (see docs/ARCHITECTURE.md), then starts the workers.
  void Start();
  // Stops taking work; running deployments are cancelled and end in a true state.
  void Stop();

  // Validates the name, repository URL, branch, hosts and path prefix (kInvalid), and that
  // no other app routes the same host and path prefix (kConflict naming that app).
  // Also checks App::upstream (ValidateUpstream, kInvalid) and that App::environment, when
  // set, exists (kNotFound).
  Result<App> CreateApp(App app, const Actor& actor);
  // Sets the app's upstream and/or environment ("" = none; nullopt = unchanged), audited as
  // app.set. kNotFound (app or environment), kInvalid (upstream). The change applies to the
  // app's next deployment.
  Result<App> ChangeAppSettings(const std::string& app, const std::optional<std::string>& upstream,
                                const std::optional<std::string>& environment, const Actor& actor);
  // Stops the app and removes its records, releases, builds, mirror and logs.
  Status DeleteApp(const std::string& name, const Actor& actor);

  // Queues a deployment of `ref` (branch, tag or sha; "" = the app's branch). kInvalid for a
  // malformed ref. The actor's git credentials, if any, fetch an app whose repository URL
  // carries none; they stay in memory and are dropped when the deployment ends.
  // `nodes` (labels, each 1..64 chars without spaces, quotes or commas; kInvalid otherwise)
  // places it on the nodes carrying them all, whatever the manifest says.
  Result<Deployment> Deploy(const std::string& app, const std::string& ref, const Actor& actor,
                            const std::string& type = "manual", const std::string& commit = "",
                            const WebhookDelivery* delivery = nullptr,
                            const std::vector<std::string>& nodes = {});
  // Queues a switch back to a retained release: `number` or, when empty, the one before
  // the current. kNotFound when there is no such release on disk.
  Result<Deployment> Rollback(const std::string& app, std::optional<std::int64_t> number,
                              const Actor& actor);
  Status Cancel(std::int64_t deployment_id, const Actor& actor);

  // Stops the app's serving instance (the gateway answers 503) and keeps it stopped across
  // server restarts. kConflict when nothing runs or a deployment is in progress.
  Status StopApp(const std::string& app, const Actor& actor);
  // Queues a deployment that starts the current release again: a zero-downtime replacement
  // when something serves (restart), or a start after StopApp. kNotFound when nothing was
  // ever deployed; kConflict for start when it already runs.
  Result<Deployment> StartApp(const std::string& app, bool restart, const Actor& actor);

  // The gateway's hold on an app's requests, recorded so that a server restart restores it
  // (a restored pause holds again with the same max). Each returns the app's new state;
  // kNotFound for an unknown app, kInvalid for bad input (and nothing changes).
  // Pause: new requests wait until ResumeApp, each at most `max` (1s..1h), then get 503.
  Result<GatewayState> PauseApp(const std::string& app, std::chrono::milliseconds max,
                                const Actor& actor);
  // Maintenance: every request gets 503 with `message` (see ValidateMaintenanceMessage).
  Result<GatewayState> MaintenanceApp(const std::string& app, const std::string& message,
                                      const Actor& actor);
  // Ends either mode; held requests proceed. Succeeds (and is audited) for an open app too.
  Result<GatewayState> ResumeApp(const std::string& app, const Actor& actor);

  // The app's running (or last) rollout, as docs/ROLLOUTS.md shows it. kNotFound for an
  // unknown app or when no rollout ran since the server started.
  Result<nlohmann::json> RolloutStatus(const std::string& app);
  // A human's promote or abort for the app's running rollout, audited; the status after it
  // was left for the rollout. kNotFound (unknown app), kConflict (no rollout running, or a
  // promote while a stage is still deploying).
  Result<nlohmann::json> RolloutDecision(const std::string& app, RolloutCommand::Kind kind,
                                         const Actor& actor);

  // `source` is the sender's address, for the audit trail.
  WebhookOutcome ReceiveWebhook(const std::string& provider, const std::string& app,
                                const webhook::HeaderMap& headers, const std::string& body,
                                const std::string& source);

 private:
  void QueueSandboxCopies(const App& shared, const webhook::PushEvent& push, const Actor& pusher,
                          WebhookOutcome& out);
  // Stores and queues `d`; with `delivery`, records the webhook delivery in the same
  // transaction (kConflict for a replay, nothing queued).
  Result<Deployment> Enqueue(Deployment d, const WebhookDelivery* delivery = nullptr,
                             const std::optional<GitCredential>& credentials = std::nullopt);
  // Enqueue with mu_ already held.
  Result<Deployment> EnqueueLocked(Deployment d, const WebhookDelivery* delivery = nullptr,
                                   const std::optional<GitCredential>& credentials = std::nullopt);
  // How many queued restarts of the app were cancelled; kConflict for another queued kind.
  Result<int> CancelQueuedRestartsLocked(std::int64_t app_id, const Actor& actor);
  void RestartCrashed(std::int64_t app_id);
  // Ok for "" or an existing environment; kNotFound naming it otherwise.
  Status EnvironmentExists(const std::string& name);
  void Audit(const Actor& actor, const std::string& action, const std::string& target,
             const std::string& app, const std::string& detail_json = "{}",
             const std::string& outcome = "ok");
  static Deployment OfRetainedRelease(const App& app, const Release& release,
                                      const std::string& type);
  void WorkerLoop();
  void RunDeployment(std::int64_t id, const std::atomic<bool>& cancel,
                     const std::optional<GitCredential>& credentials,
                     const std::vector<std::string>& placement);
  void FailDeployment(std::int64_t id, const std::string& error);
  void RouteApp(const App& app);
  Result<GatewayState> SetGateway(const std::string& app, const GatewayState& state,
                                  const Actor& actor);
  void ApplyGate(const std::string& app, const GatewayState& state);
  void Recover();
  void RecoverApp(const App& app);
  void RestoreGate(const App& app);
  std::map<std::string, Instance> AdoptLive(const App& app);
  void StartOnNode(const App& app, const Release& release, const Manifest& manifest,
                   const std::string& node, std::map<std::string, Instance>& adopted);
  void StartService(const App& app, const Release& release, const Manifest& manifest,
                    std::map<std::string, Instance>& adopted);
  void Serve(const App& app, const std::map<std::string, Instance>& adopted);
  void RemoveAppFiles(const std::string& node, const std::string& app);
  void ReapStrays();
  void SyncLoop();
  // One pass over the apps not busy at `since_ms` (wall clock of the busy snapshot).
  void SyncOnce(const std::set<std::int64_t>& busy, long long since_ms);
  void SweepLeftovers(const App& app, const std::optional<Serving>& serving, long long since_ms);
  void Supervise(const App& app, const Serving& serving);
  Result<Instance> RedeployService(const App& app, const Release& release,
                                   const Manifest& manifest);

  Context& ctx_;
  ControllerOptions options_;
  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::deque<std::int64_t> queue_;                   // deployment ids
  std::map<std::int64_t, std::int64_t> queued_app_;  // deployment id → app id
  std::set<std::int64_t> busy_apps_;
  std::map<std::int64_t, std::shared_ptr<std::atomic<bool>>> running_;  // id → cancel flag
  std::map<std::int64_t, GitCredential> fetch_credentials_;      // deployment id → caller's
  std::map<std::int64_t, std::vector<std::string>> placements_;  // deployment id → --nodes
  std::mutex apps_mu_;  // serialises app creation, so two clients cannot claim one route
  // Serialises gateway mode changes, so the recorded mode and the router's gate agree.
  std::mutex gate_mu_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
  struct Backoff {
    int attempts = 0;
    Clock::time_point next{};
  };
  std::map<std::int64_t, Backoff> restarts_;  // app id → crash restarts; SyncLoop's thread only
};

}  // namespace slipway
