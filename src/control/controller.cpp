#include "control/controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "control/deployer.h"
#include "control/instances.h"
#include "control/validation.h"
#include "git/git.h"
#include "manifest/manifest.h"
#include "obs/metrics.h"

namespace slipway {

using json = nlohmann::json;

namespace {
// A full SHA-1 or SHA-256 commit id in lower-case hex.
bool IsCommitId(const std::string& s) {
  return (s.size() == 40 || s.size() == 64) &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}
}  // namespace

Controller::Controller(Context& ctx, ControllerOptions options) : ctx_(ctx), options_(options) {
  auto& m = obs::Metrics::Global();
  m.Describe("slipway_webhooks_received_total", "counter",
             "Webhook deliveries by provider, event and outcome.");
  m.Describe("slipway_deployments_total", "counter", "Finished deployments by runtime and status.");
  m.Describe("slipway_deployment_duration_seconds", "histogram",
             "Deployment duration from start to end.");
}

Controller::~Controller() {
  Stop();
}

void Controller::Start() {
  Recover();
  for (int i = 0; i < options_.max_concurrent; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  workers_.emplace_back([this] { SyncLoop(); });
}

void Controller::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [id, flag] : running_) flag->store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  ctx_.events.NotifyAll();
}

void Controller::RouteApp(const App& app) {
  gateway::Route route;
  route.app = app.name;
  route.hosts = app.hosts.empty() ? std::vector<std::string>{app.name + ".localhost"} : app.hosts;
  route.path_prefix = app.path_prefix;
  if (auto serving = ctx_.serving.Get(app.id)) {
    if (serving->targets.size() == 1)
      route.target = serving->targets.front();
    else
      route.pool = serving->targets;  // several nodes (a swarm app's pool is synced later)
  }
  ctx_.router.SetRoute(std::move(route));
}

Result<App> Controller::CreateApp(App app, const Actor& actor) {
  if (auto s = ValidateAppName(app.name); !s.ok()) return s;
  if (auto s = git::ValidateRepoUrl(app.repo); !s.ok()) return s;
  if (app.branch.empty()) app.branch = "main";
  if (auto s = git::ValidateRef(app.branch); !s.ok()) return Invalid("branch: " + s.message());
  if (app.secret.size() < 8 || app.secret.size() > 1024)
    return Invalid("secret must be 8 to 1024 characters (it signs webhooks)");
  if (auto s = ValidateHosts(app.hosts); !s.ok()) return s;
  if (auto s = ValidatePathPrefix(app.path_prefix); !s.ok()) return s;
  if (auto s = ValidateUpstream(app.upstream); !s.ok()) return s;
  std::lock_guard lock(apps_mu_);
  if (auto s = EnvironmentExists(app.environment); !s.ok()) return s;
  auto existing = ctx_.store.ListApps();
  if (!existing.ok()) return existing.status();
  if (auto holder = RouteClash(app, *existing); !holder.empty()) {
    return Conflict(fmt::format("app '{}' already routes {}{}", holder, EffectiveHosts(app).front(),
                                app.path_prefix));
  }
  {
    // A gate outlives its app in the router: a new app of an old name starts open. No one
    // can pause it before the record exists.
    std::lock_guard gate_lock(gate_mu_);
    ApplyGate(app.name, GatewayState{});
  }
  auto created = ctx_.store.CreateApp(app);
  if (!created.ok()) return created;
  RouteApp(*created);
  json detail = {
      {"branch", app.branch}, {"repo", git::RedactUrl(app.repo)}, {"hosts", EffectiveHosts(app)}};
  if (!app.upstream.empty()) detail["upstream"] = app.upstream;
  if (!app.environment.empty()) detail["environment"] = app.environment;
  Audit(actor, "app.create", "app/" + app.name, app.name, detail.dump());
  return created;
}

Status Controller::EnvironmentExists(const std::string& name) {
  if (name.empty()) return Status::Ok();
  auto e = ctx_.store.GetEnvironment(name);
  if (e.ok()) return Status::Ok();
  if (e.status().code() != Code::kNotFound) return e.status();
  return NotFound(fmt::format("environment '{}' does not exist", name.substr(0, 64)));
}

Result<App> Controller::ChangeAppSettings(const std::string& name,
                                          const std::optional<std::string>& upstream,
                                          const std::optional<std::string>& environment,
                                          const Actor& actor) {
  if (upstream) {
    if (auto s = ValidateUpstream(*upstream); !s.ok()) return s;
  }
  std::lock_guard lock(apps_mu_);
  auto app = ctx_.store.GetApp(name);
  if (!app.ok()) return app.status();
  json detail = json::object();
  if (upstream) detail["upstream"] = app->upstream = *upstream;
  if (environment) {
    if (auto s = EnvironmentExists(*environment); !s.ok()) return s;
    detail["environment"] = app->environment = *environment;
  }
  if (auto s = ctx_.store.UpdateAppSettings(*app); !s.ok()) return s;
  Audit(actor, "app.set", "app/" + name, name, detail.dump());
  return app;
}

void Controller::Audit(const Actor& actor, const std::string& action, const std::string& target,
                       const std::string& app, const std::string& detail_json,
                       const std::string& outcome) {
  AuditEvent e;
  e.outcome = outcome;
  e.actor = actor.name;
  e.action = action;
  e.target = target;
  e.detail_json = detail_json;
  e.source = actor.source;
  e.app = app;
  if (auto s = ctx_.store.AppendAudit(e); !s.ok())
    spdlog::error("cannot write the audit trail: {}", s.ToString());
}

Status Controller::DeleteApp(const std::string& name, const Actor& actor) {
  auto app = ctx_.store.GetApp(name);
  if (!app.ok()) return app.status();
  {
    std::lock_guard lock(mu_);
    if (busy_apps_.count(app->id)) return Conflict("app '" + name + "' has a deployment running");
  }
  ctx_.router.RemoveRoute(name);
  {
    // Held requests go on to whatever serves them now (the draining instance, or a 404).
    std::lock_guard gate_lock(gate_mu_);
    ctx_.router.Gate(name)->Resume();
  }
  if (auto serving = ctx_.serving.Get(app->id)) {
    for (const auto& i : serving->instances)
      ctx_.On(i.node).StopInstance(HandleOf(i), std::chrono::seconds(10));
    ctx_.serving.Set(app->id, std::nullopt);
  }
  std::set<std::string> nodes = {kLocalNode};
  if (auto releases = ctx_.store.ListReleases(app->id, true); releases.ok())
    for (const auto& r : *releases) nodes.insert(r.nodes.begin(), r.nodes.end());
  if (auto s = ctx_.store.DeleteApp(app->id); !s.ok()) return s;
  for (const auto& node : nodes) RemoveAppFiles(node, name);
  Audit(actor, "app.delete", "app/" + name, name);
  return Status::Ok();
}

Result<Deployment> Controller::Deploy(const std::string& app_name, const std::string& ref,
                                      const Actor& actor, const std::string& type,
                                      const std::string& commit, const WebhookDelivery* delivery,
                                      const std::vector<std::string>& nodes) {
  if (!ref.empty()) {
    if (auto s = git::ValidateRef(ref); !s.ok()) return Invalid("ref: " + s.message());
  }
  if (nodes.size() > 32) return Invalid("nodes: at most 32 labels");
  for (const auto& l : nodes) {
    if (!IsNodeLabel(l))
      return Invalid(
          "nodes: a label is 1..64 printable characters without spaces, quotes, "
          "commas, slashes or backslashes");
  }
  auto app = ctx_.store.GetApp(app_name);
  if (!app.ok()) return app.status();
  Deployment d;
  d.app_id = app->id;
  d.app = app->name;
  d.type = type;
  d.ref = ref.empty() ? app->branch : ref;
  d.branch = ref.empty() ? app->branch : "";
  d.commit = commit;
  d.repository = git::RedactUrl(app->repo);  // credentials stay with the app only
  Result<Deployment> q = Internal("not queued");
  {
    // The placement is stored with the queue entry, under the same lock: a worker that wakes
    // at once must see it.
    std::lock_guard lock(mu_);
    q = EnqueueLocked(std::move(d), delivery, actor.git);
    if (q.ok() && !nodes.empty()) placements_[q->id] = nodes;
  }
  if (q.ok()) {
    Audit(actor, "deployment.create", "deployment/" + std::to_string(q->id), app_name,
          json{{"ref", q->ref}, {"type", type}, {"commit", commit}}.dump());
  }
  return q;
}

Result<Deployment> Controller::Rollback(const std::string& app_name,
                                        std::optional<std::int64_t> number, const Actor& actor) {
  auto app = ctx_.store.GetApp(app_name);
  if (!app.ok()) return app.status();
  auto releases = ctx_.store.ListReleases(app->id, false);
  if (!releases.ok()) return releases.status();
  const Release* target = nullptr;
  bool past_current = false;
  for (const auto& r : *releases) {
    if (number) {
      if (r.number == *number) target = &r;
    } else if (past_current) {
      target = &r;
      break;
    } else if (app->current_release_id && r.id == *app->current_release_id) {
      past_current = true;
    }
  }
  if (!target) {
    return NotFound(
        number ? fmt::format("release {} of '{}' is not retained", *number, app_name)
               : fmt::format("'{}' has no retained release before the current one", app_name));
  }
  if (app->current_release_id && target->id == *app->current_release_id) {
    return Conflict(fmt::format("release {} is already serving", target->number));
  }
  Deployment d = OfRetainedRelease(*app, *target, "rollback");
  d.rollback_from = app->current_release_id;
  auto q = Enqueue(std::move(d));
  if (q.ok()) {
    Audit(actor, "deployment.rollback", "deployment/" + std::to_string(q->id), app_name,
          json{{"release", target->number}}.dump());
  }
  return q;
}

// A deployment that starts a release already on disk (rollback, restart): no build.
Deployment Controller::OfRetainedRelease(const App& app, const Release& release,
                                         const std::string& type) {
  Deployment d;
  d.app_id = app.id;
  d.app = app.name;
  d.type = type;
  d.ref = fmt::format("release {}", release.number);
  d.commit = release.commit;
  d.repository = git::RedactUrl(app.repo);  // credentials stay with the app only
  d.release_id = release.id;
  return d;
}

// One owner per app: the checks, the stopped flag and taking the instances off the serving
// state happen under mu_, which the scheduler, StartApp and the supervisor's restart take
// too, so a restart cannot slip in between and undo a stop (nor a stop half-undo a start).
Status Controller::StopApp(const std::string& app_name, const Actor& actor) {
  auto app = ctx_.store.GetApp(app_name);
  if (!app.ok()) return app.status();
  std::optional<Serving> serving;
  {
    std::lock_guard lock(mu_);
    if (busy_apps_.count(app->id))
      return Conflict("app '" + app_name + "' has a deployment running");
    auto cancelled = CancelQueuedRestartsLocked(app->id, actor);
    if (!cancelled.ok()) return cancelled.status();
    serving = ctx_.serving.Get(app->id);
    // Nothing serves and no start was pending: nothing to stop. A cancelled start still
    // leaves the app stopped (recovery must not bring it back).
    if (!serving && *cancelled == 0) return Conflict("app '" + app_name + "' is not running");
    if (auto s = ctx_.store.SetAppStopped(app->id, true); !s.ok()) return s;
    ctx_.serving.Set(app->id, std::nullopt);
  }
  if (!serving) {
    Audit(actor, "app.stop", "app/" + app_name, app_name, json{{"cancelled_start", true}}.dump());
    return Status::Ok();
  }
  ctx_.router.Switch(app_name, nullptr);
  for (Instance stopped : serving->instances)
    (void)StopAndRecord(ctx_, stopped, std::chrono::seconds(10));
  Audit(actor, "app.stop", "app/" + app_name, app_name);
  return Status::Ok();
}

// A queued restart (the supervisor's, or a start) is moot once the app is stopped; any other
// queued deployment is the user's to cancel first (kConflict). REQUIRES: mu_ held.
Result<int> Controller::CancelQueuedRestartsLocked(std::int64_t app_id, const Actor& actor) {
  std::vector<Deployment> restarts;
  for (auto qid : queue_) {
    if (queued_app_[qid] != app_id) continue;
    auto d = ctx_.store.GetDeployment(qid);
    if (!d.ok()) return d.status();
    if (d->type != "restart")
      return Conflict(
          fmt::format("app '{}' has deployment #{} queued: cancel it first", d->app, d->id));
    restarts.push_back(*d);
  }
  for (auto& d : restarts) {
    std::erase(queue_, d.id);
    queued_app_.erase(d.id);
    d.status = DeployStatus::kCancelled;
    d.error = "the app was stopped by " + actor.name;
    d.completed_ms = ctx_.clock.WallMillis();
    ctx_.events.Append(d.id, "queued", "cancelled", d.error);  // event first, then status
    if (auto s = ctx_.store.UpdateDeployment(d); !s.ok()) return s;
  }
  return static_cast<int>(restarts.size());
}

Result<Deployment> Controller::StartApp(const std::string& app_name, bool restart,
                                        const Actor& actor) {
  auto app = ctx_.store.GetApp(app_name);
  if (!app.ok()) return app.status();
  if (!app->current_release_id)
    return NotFound("app '" + app_name + "' has no release yet: deploy it first");
  auto release = ctx_.store.GetRelease(*app->current_release_id);
  if (!release.ok()) return release.status();
  Result<Deployment> q = Internal("not queued");
  {
    std::lock_guard lock(mu_);
    if (!restart && ctx_.serving.Get(app->id))
      return Conflict("app '" + app_name + "' is already running");
    if (auto s = ctx_.store.SetAppStopped(app->id, false); !s.ok()) return s;
    q = EnqueueLocked(OfRetainedRelease(*app, *release, "restart"));
  }
  if (q.ok()) {
    Audit(actor, restart ? "app.restart" : "app.start", "app/" + app_name, app_name,
          json{{"deployment", q->id}}.dump());
  }
  return q;
}

// The supervisor's restart of a crashed app, decided again under mu_ with a fresh record: a
// stop, a delete or a deployment since the check wins, and nothing is queued twice.
void Controller::RestartCrashed(std::int64_t app_id) {
  std::lock_guard lock(mu_);
  if (busy_apps_.count(app_id)) return;
  for (auto qid : queue_)
    if (queued_app_[qid] == app_id) return;
  auto app = ctx_.store.GetAppById(app_id);
  if (!app.ok() || app->stopped || !app->current_release_id || !ctx_.serving.Get(app_id)) return;
  auto release = ctx_.store.GetRelease(*app->current_release_id);
  if (!release.ok()) return;
  auto q = EnqueueLocked(OfRetainedRelease(*app, *release, "restart"));
  if (!q.ok()) {
    spdlog::error("{}: restart failed: {}", app->name, q.status().message());
    return;
  }
  Audit(SystemActor("supervisor"), "app.restart", "app/" + app->name, app->name,
        json{{"deployment", q->id}}.dump());
}

// --- gateway modes ---------------------------------------------------------------------

namespace {
const char* GatewayAction(GatewayMode mode) {
  switch (mode) {
    case GatewayMode::kPaused:
      return "app.pause";
    case GatewayMode::kMaintenance:
      return "app.maintenance";
    case GatewayMode::kOpen:
      break;
  }
  return "app.resume";
}
}  // namespace

Result<GatewayState> Controller::PauseApp(const std::string& app_name,
                                          std::chrono::milliseconds max, const Actor& actor) {
  if (auto s = ValidatePauseMax(max); !s.ok()) return s;
  return SetGateway(app_name, GatewayState{GatewayMode::kPaused, max.count(), ""}, actor);
}

Result<GatewayState> Controller::MaintenanceApp(const std::string& app_name,
                                                const std::string& message, const Actor& actor) {
  if (auto s = ValidateMaintenanceMessage(message); !s.ok()) return s;
  GatewayState state;
  state.mode = GatewayMode::kMaintenance;
  state.message = message;
  return SetGateway(app_name, state, actor);
}

Result<GatewayState> Controller::ResumeApp(const std::string& app_name, const Actor& actor) {
  return SetGateway(app_name, GatewayState{}, actor);
}

// Record first, then the gate: a failed write changes nothing, and a restart restores what
// the gateway was last told.
Result<GatewayState> Controller::SetGateway(const std::string& app_name, const GatewayState& state,
                                            const Actor& actor) {
  std::lock_guard lock(gate_mu_);
  auto app = ctx_.store.GetApp(app_name);
  if (!app.ok()) return app.status();
  if (auto s = ctx_.store.SetAppGateway(app->id, state); !s.ok()) return s;
  ApplyGate(app_name, state);
  json detail = {{"from", ToString(app->gateway.mode)}};
  if (state.mode == GatewayMode::kPaused) detail["max_ms"] = state.max_ms;
  if (state.mode == GatewayMode::kMaintenance) detail["message"] = state.message;
  Audit(actor, GatewayAction(state.mode), "app/" + app_name, app_name, detail.dump());
  return state;
}

// REQUIRES: gate_mu_ held, or no API call can run yet (recovery).
void Controller::ApplyGate(const std::string& app_name, const GatewayState& state) {
  auto gate = ctx_.router.Gate(app_name);
  switch (state.mode) {
    case GatewayMode::kPaused:
      gate->Pause(std::chrono::milliseconds(state.max_ms));
      return;
    case GatewayMode::kMaintenance:
      gate->Maintenance(state.message);
      return;
    case GatewayMode::kOpen:
      gate->Resume();
      return;
  }
}

Result<Deployment> Controller::Enqueue(Deployment d, const WebhookDelivery* delivery,
                                       const std::optional<GitCredential>& credentials) {
  std::lock_guard lock(mu_);
  return EnqueueLocked(std::move(d), delivery, credentials);
}

Result<Deployment> Controller::EnqueueLocked(Deployment d, const WebhookDelivery* delivery,
                                             const std::optional<GitCredential>& credentials) {
  if (stopping_) return Unavailable("the server is shutting down");
  auto created = delivery ? ctx_.store.CreateDeploymentForDelivery(std::move(d), *delivery)
                          : ctx_.store.CreateDeployment(std::move(d));
  if (!created.ok()) return created;
  ctx_.events.Append(created->id, "queued", "info",
                     fmt::format("queued {} of {}", created->type, created->ref));
  // A newer deployment of the same app makes the queued ones pointless.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (queued_app_[*it] != created->app_id) {
      ++it;
      continue;
    }
    if (auto old = ctx_.store.GetDeployment(*it); old.ok()) {
      old->status = DeployStatus::kCancelled;
      old->error = fmt::format("superseded by deployment #{}", created->id);
      old->completed_ms = ctx_.clock.WallMillis();
      ctx_.events.Append(old->id, "queued", "cancelled", old->error);  // event first, then status
      (void)ctx_.store.UpdateDeployment(*old);
    }
    queued_app_.erase(*it);
    fetch_credentials_.erase(*it);
    placements_.erase(*it);
    it = queue_.erase(it);
  }
  queue_.push_back(created->id);
  queued_app_[created->id] = created->app_id;
  if (credentials) fetch_credentials_[created->id] = *credentials;
  // A newer release ends the app's rollout in progress (rolled back): it would otherwise wait
  // behind a whole bake, or forever behind a paused one. Nothing happens when none runs.
  if (ctx_.rollouts && created->type != "restart" && !created->app.empty()) {
    (void)ctx_.rollouts->Request(created->app,
                                 {RolloutCommand::Kind::kAbort,
                                  fmt::format("deployment #{}, which supersedes it", created->id)});
  }
  cv_.notify_all();
  return created;
}

Status Controller::Cancel(std::int64_t id, const Actor& actor) {
  auto d = ctx_.store.GetDeployment(id);
  if (!d.ok()) return d.status();
  std::lock_guard lock(mu_);
  if (auto it = running_.find(id); it != running_.end()) {
    it->second->store(true);
  } else if (queued_app_.count(id)) {
    queue_.erase(std::find(queue_.begin(), queue_.end(), id));
    queued_app_.erase(id);
    fetch_credentials_.erase(id);
    placements_.erase(id);
    d->status = DeployStatus::kCancelled;
    d->error = "cancelled by " + actor.name;
    d->completed_ms = ctx_.clock.WallMillis();
    ctx_.events.Append(id, "queued", "cancelled", d->error);
    (void)ctx_.store.UpdateDeployment(*d);
  } else {
    return Conflict(fmt::format("deployment #{} already ended ({})", id, ToString(d->status)));
  }
  Audit(actor, "deployment.cancel", "deployment/" + std::to_string(id), d->app);
  return Status::Ok();
}

void Controller::WorkerLoop() {
  for (;;) {
    std::int64_t id = 0;
    std::int64_t app_id = 0;
    std::shared_ptr<std::atomic<bool>> cancel;
    std::optional<GitCredential> credentials;
    std::vector<std::string> placement;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        if (stopping_) return true;
        for (auto qid : queue_)
          if (!busy_apps_.count(queued_app_[qid])) return true;
        return false;
      });
      if (stopping_) return;
      auto it = std::find_if(queue_.begin(), queue_.end(),
                             [&](auto qid) { return !busy_apps_.count(queued_app_[qid]); });
      id = *it;
      app_id = queued_app_[id];
      queue_.erase(it);
      queued_app_.erase(id);
      busy_apps_.insert(app_id);
      cancel = std::make_shared<std::atomic<bool>>(false);
      running_[id] = cancel;
      if (auto c = fetch_credentials_.find(id); c != fetch_credentials_.end()) {
        credentials = c->second;
        fetch_credentials_.erase(c);
      }
      if (auto p = placements_.find(id); p != placements_.end()) {
        placement = std::move(p->second);
        placements_.erase(p);
      }
    }
    RunDeployment(id, *cancel, credentials, placement);
    {
      std::lock_guard lock(mu_);
      busy_apps_.erase(app_id);
      running_.erase(id);
    }
    cv_.notify_all();
    ctx_.events.NotifyAll();
  }
}

// One deployment on a worker thread. Nothing it throws may end the process (the gateway lives
// in it too): an exception fails that deployment with its message.
void Controller::RunDeployment(std::int64_t id, const std::atomic<bool>& cancel,
                               const std::optional<GitCredential>& credentials,
                               const std::vector<std::string>& placement) {
  try {
    auto d = ctx_.store.GetDeployment(id);
    if (d.ok() && d->status == DeployStatus::kQueued) {
      Deployer deployer(ctx_, *d, cancel, credentials, placement);
      deployer.Run();
    }
  } catch (const std::exception& e) {
    spdlog::error("deployment #{} threw: {}", id, e.what());
    FailDeployment(id, std::string("internal error: ") + e.what());
  } catch (...) {
    spdlog::error("deployment #{} threw an unknown exception", id);
    FailDeployment(id, "internal error");
  }
}

void Controller::FailDeployment(std::int64_t id, const std::string& error) {
  auto d = ctx_.store.GetDeployment(id);
  if (!d.ok() || IsTerminal(d->status)) return;
  d->status = DeployStatus::kFailed;
  d->error = error;
  d->completed_ms = ctx_.clock.WallMillis();
  ctx_.events.Append(id, ToString(d->stage), "failed", error);
  (void)ctx_.store.UpdateDeployment(*d);
}

WebhookOutcome Controller::ReceiveWebhook(const std::string& provider, const std::string& app_name,
                                          const webhook::HeaderMap& headers,
                                          const std::string& body, const std::string& source) {
  // Label values come from fixed sets only: a sender must not be able to mint series.
  static const std::set<std::string> kEvents = {"push",
                                                "ping",
                                                "create",
                                                "delete",
                                                "pull_request",
                                                "issue_comment",
                                                "Push Hook",
                                                "Tag Push Hook",
                                                "Merge Request Hook",
                                                "Note Hook",
                                                "repo:push",
                                                "pullrequest:created",
                                                "pullrequest:updated",
                                                "pullrequest:comment_created"};
  auto count = [&](const std::string& event, const WebhookOutcome& o) {
    obs::Metrics::Global().Inc(
        "slipway_webhooks_received_total",
        {{"provider", webhook::IsKnownProvider(provider) ? provider : "other"},
         {"event", event.empty() || kEvents.count(event) ? event : "other"},
         {"outcome", o.outcome}});
    return o;
  };
  if (!webhook::IsKnownProvider(provider)) {
    return count("",
                 {404, "not_found", "unknown webhook provider '" + provider + "'", std::nullopt});
  }
  auto app = ctx_.store.GetApp(app_name);
  if (!app.ok()) return count("", {404, "not_found", app.status().message(), std::nullopt});
  if (auto s = webhook::VerifySignature(provider, headers, body, app->secret); !s.ok()) {
    return count("", {401, "unauthorized", s.message(), std::nullopt});
  }
  auto delivery = webhook::ParseDelivery(provider, headers, body);
  if (!delivery.ok()) return count("", {400, "invalid", delivery.status().message(), std::nullopt});
  const auto& dl = *delivery;
  WebhookOutcome out{200, "ignored", "", std::nullopt};
  bool deploy = false;
  if (dl.ping) {
    out = {200, "pong", "webhook is set up for app '" + app_name + "'", std::nullopt};
  } else if (!dl.push) {
    out.detail = "event '" + dl.event + "' does not trigger deployments";
  } else if (dl.push->deleted) {
    out.detail = dl.push->ref + " was deleted";
  } else if (dl.push->branch.empty()) {
    out.detail = dl.push->ref + " is not a branch";
  } else if (dl.push->branch != app->branch) {
    out.detail = "branch '" + dl.push->branch + "' is not tracked (tracking '" + app->branch + "')";
  } else if (!IsCommitId(dl.push->commit)) {
    return count(dl.event, {400, "invalid", "the pushed commit is not a commit id", std::nullopt});
  } else {
    deploy = true;
  }
  WebhookDelivery rec{
      provider, dl.delivery_id, app_name, dl.event, deploy ? "queued" : out.outcome, std::nullopt,
      0};
  auto duplicate = [&] {
    return count(dl.event, {200, "duplicate",
                            "delivery " + dl.delivery_id + " was already received", std::nullopt});
  };
  if (deploy) {
    // The delivery and its deployment are recorded together: a crash keeps both or neither.
    Actor pusher{provider + ":" + dl.push->pusher.substr(0, 128), source, std::nullopt};
    auto q = Deploy(app_name, dl.push->branch, pusher, "push", dl.push->commit,
                    dl.delivery_id.empty() ? nullptr : &rec);
    if (!q.ok() && q.status().code() == Code::kConflict) return duplicate();
    if (!q.ok()) return count(dl.event, {503, "unavailable", q.status().message(), std::nullopt});
    out = {202, "queued",
           fmt::format("deployment #{} of {} queued", q->id, dl.push->commit.substr(0, 7)), q->id};
  } else if (!dl.delivery_id.empty()) {
    if (auto s = ctx_.store.RecordDelivery(rec); !s.ok()) {
      if (s.code() == Code::kConflict) return duplicate();
      return count(dl.event, {503, "unavailable", s.message(), std::nullopt});
    }
  }
  if (dl.push && !dl.push->deleted && !dl.push->branch.empty() && IsCommitId(dl.push->commit)) {
    Actor pusher{provider + ":" + dl.push->pusher.substr(0, 128), source, std::nullopt};
    QueueSandboxCopies(*app, *dl.push, pusher, out);
  }
  return count(dl.event, out);
}

// A push to the shared app's repository also deploys the sandboxes' copies of that app that
// follow the pushed branch (sandbox-<sandbox>-<app>, the same repository), unless their
// sandbox is suspended or expired: a sandbox tracks its feature branch as an app tracks its.
void Controller::QueueSandboxCopies(const App& shared, const webhook::PushEvent& push,
                                    const Actor& pusher, WebhookOutcome& out) {
  auto apps = ctx_.store.ListApps();
  if (!apps.ok()) return;
  int queued = 0;
  for (const auto& copy : *apps) {
    if (copy.sandbox.empty() || copy.name != "sandbox-" + copy.sandbox + "-" + shared.name ||
        copy.branch != push.branch || copy.repo != shared.repo)
      continue;
    auto sandbox = ctx_.store.GetSandbox(copy.sandbox);
    if (!sandbox.ok() || sandbox->status == "suspended" || sandbox->status == "expired") continue;
    auto d = Deploy(copy.name, push.branch, pusher, "push", push.commit, nullptr);
    if (!d.ok()) {
      spdlog::warn("push to {}: sandbox copy {}: {}", shared.name, copy.name, d.status().message());
      continue;
    }
    if (!out.deployment_id) out.deployment_id = d->id;
    ++queued;
  }
  if (queued == 0) return;
  std::string also = fmt::format("{} sandbox deployment{} queued", queued, queued == 1 ? "" : "s");
  if (out.outcome == "queued") {
    out.detail += "; " + also;
  } else if (out.outcome == "ignored") {
    out = {202, "queued", also + "; " + shared.name + ": " + out.detail, out.deployment_id};
  }
}

Result<nlohmann::json> Controller::RolloutStatus(const std::string& app) {
  auto a = ctx_.store.GetApp(app);
  if (!a.ok()) return a.status();
  auto status = ctx_.rollouts ? ctx_.rollouts->Get(app) : std::nullopt;
  if (status) return *status;
  // Since a restart: what the records say about the app's latest rollout.
  auto recent = ctx_.store.ListDeployments({a->id, std::nullopt, 20});
  if (recent.ok()) {
    for (const auto& d : *recent) {
      auto config = nlohmann::json::parse(d.config_json, nullptr, false);
      if (!config.is_object() || !config.contains("rollout") || config["rollout"].empty()) continue;
      return nlohmann::json{{"app", app},
                            {"deployment_id", d.id},
                            {"state", ToString(d.status)},
                            {"stage", nullptr},
                            {"stages", config["rollout"]},
                            {"error", d.error},
                            {"note",
                             "from the deployment's record (no live rollout status "
                             "since the server started)"}};
    }
  }
  return NotFound("no rollout of " + app + " on record");
}

Result<nlohmann::json> Controller::RolloutDecision(const std::string& app,
                                                   RolloutCommand::Kind kind, const Actor& actor) {
  auto a = ctx_.store.GetApp(app);
  if (!a.ok()) return a.status();
  if (!ctx_.rollouts) return Conflict("no rollout in progress for " + app);
  bool abort = kind == RolloutCommand::Kind::kAbort;
  Status s = ctx_.rollouts->Request(app, RolloutCommand{kind, actor.name});
  auto status = ctx_.rollouts->Get(app);
  nlohmann::json detail = {{"deployment_id", status ? status->value("deployment_id", 0) : 0},
                           {"stage", status ? status->value("stage", nlohmann::json()) : nullptr}};
  if (!s.ok()) detail["refused"] = s.message();
  Audit(actor, abort ? "rollout.abort" : "rollout.promote", "app/" + app, app, detail.dump(),
        s.ok() ? "ok" : "refused");
  if (!s.ok()) return s;
  // What was asked and that it was taken; the rollout carries it out at its next step.
  nlohmann::json out = *status;
  out["requested"] = abort ? "abort" : "promote";
  out["accepted"] = true;
  return out;
}

}  // namespace slipway
