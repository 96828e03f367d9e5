// Recovery after a restart and supervision between deployments: the Controller's half that
// reconciles what runs with what the store says should.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "control/controller.h"
#include "control/instances.h"
#include "control/validation.h"

namespace slipway {

namespace {
// Whether `path` exists on the node; false when the node cannot say.
bool Exists(Agent& agent, const std::string& path) {
  auto exists = agent.PathExists(path);
  return exists.ok() && *exists;
}
}  // namespace

void Controller::Recover() {
  auto running = ctx_.store.ListDeployments({std::nullopt, DeployStatus::kRunning, 1000});
  if (running.ok()) {
    for (auto d : *running) {
      d.error = fmt::format("{}: interrupted by a server restart", ToString(d.stage));
      d.status = DeployStatus::kFailed;
      // Mid-rollout the previous release still serves on every node: recovery routes all
      // traffic back to it and the sweep stops the canaries, so the rollout ends rolled back.
      if (d.stage == Stage::kRollout) {
        d.error += "; the previous release serves every request again";
        d.status = DeployStatus::kRolledBack;
      }
      d.completed_ms = ctx_.clock.WallMillis();
      ctx_.events.Append(d.id, ToString(d.stage), ToString(d.status), d.error);
      (void)ctx_.store.UpdateDeployment(d);
      spdlog::warn("deployment #{} was running when the server stopped; marked {}", d.id,
                   ToString(d.status));
    }
  }
  ReapStrays();
  // Nothing builds while the server is down: what is under builds/ was interrupted.
  if (auto s = ctx_.agent.RemovePath(ctx_.paths.data + "/builds"); !s.ok())
    spdlog::warn("cannot clear interrupted builds: {}", s.message());
  if (auto apps = ctx_.store.ListApps(); apps.ok()) {
    for (const auto& app : *apps) RecoverApp(app);
  }
  auto queued = ctx_.store.ListDeployments({std::nullopt, DeployStatus::kQueued, 1000});
  if (queued.ok()) {
    std::lock_guard lock(mu_);
    for (auto it = queued->rbegin(); it != queued->rend(); ++it) {
      queue_.push_back(it->id);
      queued_app_[it->id] = it->app_id;
    }
  }
}

// The app's files on `node`; a node that is not connected keeps them (and is told nothing).
void Controller::RemoveAppFiles(const std::string& node, const std::string& app) {
  if (!ctx_.Reachable(node)) {
    spdlog::warn("app {}: node {} is not connected; its files stay there", app, node);
    return;
  }
  for (const auto& dir : {ctx_.paths.releases(app), ctx_.paths.builds(app), ctx_.paths.cache(app),
                          ctx_.paths.logs(app)}) {
    if (auto s = ctx_.On(node).RemovePath(dir); !s.ok())
      spdlog::warn("app {} on node {}: {}", app, node, s.message());
  }
}

void Controller::RecoverApp(const App& app) {
  RestoreGate(app);
  std::optional<Release> release;
  std::optional<Manifest> manifest;
  if (app.current_release_id) {
    auto r = ctx_.store.GetRelease(*app.current_release_id);
    auto m = r.ok() ? Manifest::FromJson(r->manifest_json) : Result<Manifest>(r.status());
    if (m.ok()) {
      release = *r;
      manifest = *m;
    } else {
      spdlog::error("{}: the serving release cannot be read: {}", app.name, m.status().message());
    }
  }
  auto adopted = AdoptLive(app);
  if (release && !app.stopped) {
    if (manifest->runtime == "swarm") {
      if (adopted.empty()) StartService(app, *release, *manifest, adopted);
    } else {
      for (const auto& node : release->nodes) {
        if (!adopted.count(node)) StartOnNode(app, *release, *manifest, node, adopted);
      }
    }
  }
  Serve(app, adopted);
}

// The gate holds (or answers 503) before the route appears. A max outside 1s..1h can only
// come from a hand-edited database: the default is used instead.
void Controller::RestoreGate(const App& app) {
  GatewayState gate = app.gateway;
  if (!ValidatePauseMax(std::chrono::milliseconds(gate.max_ms)).ok()) gate.max_ms = 30000;
  ApplyGate(app.name, gate);
  if (gate.mode != GatewayMode::kOpen)
    spdlog::info("{}: gateway restored to {}", app.name, ToString(gate.mode));
}

// The live instances of the current release still running, one per node; the others are
// stopped. A remote node reconnects after the control plane restarts: its instance is trusted
// until the supervisor can ask (a dead one is then restarted there), and an instance on a
// node away now is stopped once the node is back (supervision).
std::map<std::string, Instance> Controller::AdoptLive(const App& app) {
  std::map<std::string, Instance> adopted;
  auto instances = ctx_.store.ListLiveInstances(app.id);
  if (!instances.ok()) return adopted;
  for (auto inst : *instances) {
    bool current = app.current_release_id && inst.release_id == *app.current_release_id;
    bool reachable = ctx_.Reachable(inst.node);
    if (current && !adopted.count(inst.node) &&
        (!reachable || ctx_.On(inst.node).IsRunning(HandleOf(inst)))) {
      adopted.emplace(inst.node, inst);
      continue;
    }
    if (!reachable) continue;
    ctx_.On(inst.node).StopInstance(HandleOf(inst), std::chrono::seconds(5));
    inst.state = "stopped";
    if (auto s = ctx_.store.UpdateInstance(inst); !s.ok())
      spdlog::error("{}: instance {}: {}", app.name, inst.id, s.ToString());
  }
  return adopted;
}

// The serving release is still on the node's disk (and its image there): start it again
// instead of rebuilding, and wait (up to health_timeout) for it to answer.
void Controller::StartOnNode(const App& app, const Release& release, const Manifest& manifest,
                             const std::string& node, std::map<std::string, Instance>& adopted) {
  Result<Instance> started = NotFound("the serving release is gone from disk");
  if (!ctx_.Reachable(node)) {
    started = Unavailable("node " + node + " is not connected");
  } else if (Exists(ctx_.On(node), release.path)) {
    started = LaunchInstance(ctx_, app, release, manifest, "serving", node);
  }
  if (!started.ok()) {
    spdlog::error("{}: the serving release cannot be restarted on node {}: {}", app.name, node,
                  started.status().message());
    return;
  }
  auto deadline = ctx_.clock.Now() + manifest.health_timeout;
  auto h = HandleOf(*started);
  Agent& agent = ctx_.On(node);
  while (ctx_.clock.Now() < deadline && agent.IsRunning(h) &&
         !agent.Probe(h.port, manifest.health_path, std::chrono::milliseconds(1000)).healthy()) {
    ctx_.clock.SleepFor(std::chrono::milliseconds(20));
  }
  spdlog::info("{}: restarted release {} on node {} port {}", app.name, release.number, node,
               started->port);
  adopted.emplace(node, *started);
}

void Controller::StartService(const App& app, const Release& release, const Manifest& manifest,
                              std::map<std::string, Instance>& adopted) {
  auto started = RedeployService(app, release, manifest);
  if (started.ok())
    adopted.emplace(started->node, *started);
  else
    spdlog::error("{}: the service cannot be redeployed: {}", app.name, started.status().message());
}

// Routes the app to what was adopted (nothing: 503 until a deployment).
void Controller::Serve(const App& app, const std::map<std::string, Instance>& adopted) {
  Serving serving;
  for (auto [node, inst] : adopted) {
    if (inst.runtime != "swarm") {
      auto target = TargetOf(ctx_, fmt::format("{}-i{}", app.name, inst.id), inst);
      if (!target.ok()) {
        spdlog::error("{}: cannot route to instance {} on node {}: {}", app.name, inst.id, node,
                      target.status().message());
        continue;
      }
      serving.targets.push_back(*target);
    }
    inst.state = "serving";
    if (auto s = ctx_.store.UpdateInstance(inst); !s.ok())
      spdlog::error("{}: instance {}: {}", app.name, inst.id, s.ToString());
    serving.instances.push_back(inst);
    spdlog::info("{}: serving instance {} on node {} (pid {}, port {})", app.name, inst.id, node,
                 inst.pid, inst.port);
  }
  bool swarm = !serving.instances.empty() && serving.runtime() == "swarm";
  if (!serving.instances.empty() && (swarm || !serving.targets.empty()))
    ctx_.serving.Set(app.id, serving);
  RouteApp(app);
  if (swarm) {
    (void)SyncServicePool(ctx_, app.name, serving.first().container_id);
    spdlog::info("{}: following the tasks of service {}", app.name, ServiceName(app.name));
  }
}

Result<Instance> Controller::RedeployService(const App& app, const Release& release,
                                             const Manifest& manifest) {
  auto id = ctx_.agent.DeployService(MakeServiceSpec(app, release, manifest));
  if (!id.ok()) return id.status();
  Instance rec;
  rec.app_id = app.id;
  rec.release_id = release.id;
  rec.runtime = "swarm";
  rec.container_id = *id;
  rec.state = "serving";
  rec.node = kLocalNode;
  return ctx_.store.CreateInstance(rec);
}

// Keeps the gateway pools of swarm apps on their current tasks between deployments (a task
// that crashed and came back has a new port). Apps with a deployment running are left to it.
void Controller::SyncLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(500));
    if (stopping_) break;
    std::set<std::int64_t> busy = busy_apps_;
    long long since_ms = ctx_.clock.WallMillis();
    lock.unlock();
    try {
      SyncOnce(busy, since_ms);
    } catch (const std::exception& e) {  // one bad pass must not end the process
      spdlog::error("sync pass failed: {}", e.what());
    }
    lock.lock();
  }
}

void Controller::SyncOnce(const std::set<std::int64_t>& busy, long long since_ms) {
  auto apps = ctx_.store.ListApps();
  if (!apps.ok()) return;
  for (const auto& app : *apps) {
    if (busy.count(app.id)) continue;
    auto serving = ctx_.serving.Get(app.id);
    SweepLeftovers(app, serving, since_ms);
    if (!serving) continue;
    if (serving->runtime() == "swarm") {
      (void)SyncServicePool(ctx_, app.name, serving->first().container_id);
    } else if (serving->runtime() == "process") {
      Supervise(app, *serving);
    }
  }
}

// Live instance records that serve nothing (a node was away when a drain, a discard or a
// stop wanted them gone, or the control plane restarted meanwhile): stopped once their node
// is connected. Only records older than the pass's busy snapshot (`since_ms`, less a second
// of slack) are considered, so an instance a deployment that started since is bringing up
// is never touched.
void Controller::SweepLeftovers(const App& app, const std::optional<Serving>& serving,
                                long long since_ms) {
  auto live = ctx_.store.ListLiveInstances(app.id);
  if (!live.ok()) return;
  for (auto inst : *live) {
    if (inst.runtime == "swarm" || inst.created_ms + 1000 >= since_ms) continue;
    bool serves = serving && std::any_of(serving->instances.begin(), serving->instances.end(),
                                         [&](const Instance& s) { return s.id == inst.id; });
    if (serves || !ctx_.Reachable(inst.node)) continue;
    spdlog::info("{}: stopping leftover instance {} on node {}", app.name, inst.id, inst.node);
    (void)StopAndRecord(ctx_, inst, std::chrono::seconds(5));
  }
}

// A serving process that died (on any node) is replaced by a restart deployment of the same
// release, with exponential backoff (1 s doubling to 60 s) so an app that crashes at once
// does not spin. (Containers have Docker's restart policy; Swarm restarts its own tasks.)
void Controller::Supervise(const App& app, const Serving& serving) {
  const Instance* gone = nullptr;
  for (const auto& i : serving.instances) {
    if (!ctx_.Reachable(i.node)) continue;  // asked again once the node is back
    if (!ctx_.On(i.node).IsRunning(HandleOf(i))) {
      gone = &i;
      break;
    }
  }
  if (!gone) {
    if (auto it = restarts_.find(app.id);
        it != restarts_.end() && ctx_.clock.Now() > it->second.next + std::chrono::minutes(5)) {
      restarts_.erase(it);  // stable for a while: forget the crash history
    }
    return;
  }
  auto& backoff = restarts_[app.id];
  auto now = ctx_.clock.Now();
  if (now < backoff.next) return;
  auto delay = std::chrono::seconds(std::min(60, 1 << std::min(backoff.attempts, 6)));
  backoff.attempts++;
  backoff.next = now + delay;
  spdlog::warn("{}: instance {} (pid {}) on node {} is gone; restarting release (attempt {})",
               app.name, gone->id, gone->pid, gone->node, backoff.attempts);
  RestartCrashed(app.id);
}

// Kills processes and removes containers an earlier run left behind (build steps, instances
// that are no longer recorded as live); recorded live instances are left to RecoverApp.
void Controller::ReapStrays() {
  std::vector<int> pids;
  std::vector<std::string> containers;
  auto instances = ctx_.store.ListLiveInstances(0);
  if (!instances.ok()) {  // without the list, everything would look like a stray
    spdlog::error("not reaping strays: {}", instances.status().message());
    return;
  }
  for (const auto& i : *instances) {
    if (i.node != kLocalNode) continue;  // each node reaps its own
    if (i.pid) pids.push_back(i.pid);
    if (!i.container_id.empty()) containers.push_back(i.container_id);
  }
  auto reaped = ctx_.agent.ReapStrays(pids, containers);
  if (!reaped.ok()) spdlog::warn("reaping strays: {}", reaped.status().message());
}

}  // namespace slipway
