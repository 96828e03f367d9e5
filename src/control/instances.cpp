#include "control/instances.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <optional>

#include "control/injection.h"

namespace slipway {

std::string ImageTag(const std::string& app, const Release& release) {
  return fmt::format("slipway/{}:{}-{}", app, release.number, release.commit.substr(0, 7));
}

InstanceHandle HandleOf(const Instance& i) {
  return {i.pid, i.start_ticks, i.port, i.container_id, i.runtime};
}

std::string InstanceLogPath(const Paths& paths, const std::string& app, std::int64_t instance_id) {
  return fmt::format("{}/instance-{}.log", paths.logs(app), instance_id);
}

namespace {

// What every instance of a release sees in its environment: the manifest's env, the
// injection's variables over it, and the server's own. (The agent adds its home marker, see
// agent/agent.h.)
std::map<std::string, std::string> ReleaseEnv(const App& app, const Release& release,
                                              const Manifest& m, const Injection& injection = {}) {
  auto env = m.env;
  InjectEnv(injection, env);
  env["SLIPWAY_APP"] = app.name;
  env["SLIPWAY_RELEASE"] = std::to_string(release.number);
  return env;
}

std::map<std::string, std::string> ReleaseLabels(const App& app, const Release& release) {
  return {{"slipway.app", app.name},
          {"slipway.release", std::to_string(release.number)},
          {"slipway.deployment", std::to_string(release.deployment_id)}};
}

InstanceSpec MakeSpec(const Context& ctx, const App& app, const Release& release, const Manifest& m,
                      const Instance& instance, const Injection& injection) {
  InstanceSpec spec;
  spec.runtime = m.runtime;
  spec.app = app.name;
  spec.release_id = release.id;
  spec.release_dir = release.path;
  spec.command = m.command;
  spec.env = ReleaseEnv(app, release, m, injection);
  spec.env["SLIPWAY_INSTANCE_ID"] = std::to_string(instance.id);
  // Where to listen: loopback on the server's own node; every interface on a remote node,
  // where the gateway comes from another machine.
  bool remote = !instance.node.empty() && instance.node != kLocalNode;
  if (!spec.env.count("HOST")) spec.env["HOST"] = remote ? "0.0.0.0" : "127.0.0.1";
  spec.port = instance.port;
  spec.log_path = InstanceLogPath(ctx.paths, app.name, instance.id);
  if (m.runtime == "container") {  // swarm services are started by the Deployer itself
    ContainerSpec& c = spec.container;
    c.image = ImageTag(app.name, release);
    c.name = fmt::format("slipway-{}-{}", app.name, release.number);
    c.container_port = m.container_port;
    c.host_ip = remote && m.host_ip == "127.0.0.1" ? "0.0.0.0" : m.host_ip;
    c.memory_bytes = injection.memory_bytes > 0 ? injection.memory_bytes : m.memory_bytes;
    c.cpus = injection.cpus > 0 ? injection.cpus : m.cpus;
    c.volumes = m.volumes;
    c.restart = m.restart;
    c.labels = ReleaseLabels(app, release);
    c.labels["slipway.instance"] = std::to_string(instance.id);
    c.network = injection.network;
    c.aliases = injection.aliases;
    // A container reaches its sandbox peers by name on their network, not on loopback.
    for (const auto& [k, v] : injection.container_env) spec.env[k] = v;
  }
  return spec;
}

}  // namespace

Result<Instance> LaunchInstance(Context& ctx, const App& app, const Release& release,
                                const Manifest& manifest, const std::string& state,
                                const std::string& node, const Injection* injection) {
  std::optional<Injection> looked_up;
  if (!injection) {
    auto current = InjectionFor(ctx, app);
    if (!current.ok()) return current.status();
    injection = &looked_up.emplace(std::move(*current));
  }
  Agent& agent = ctx.On(node);
  auto port = agent.AllocatePort();
  if (!port.ok()) return port.status();
  Instance rec;
  rec.app_id = app.id;
  rec.release_id = release.id;
  rec.runtime = manifest.runtime;
  rec.port = *port;
  rec.state = state;
  rec.node = node;
  auto created = ctx.store.CreateInstance(rec);
  if (!created.ok()) return created.status();
  auto handle = agent.StartInstance(MakeSpec(ctx, app, release, manifest, *created, *injection));
  if (!handle.ok()) {
    created->state = "stopped";
    (void)ctx.store.UpdateInstance(*created);
    return handle.status();
  }
  created->pid = handle->pid;
  created->start_ticks = handle->start_ticks;
  created->container_id = handle->container_id;
  if (auto s = ctx.store.UpdateInstance(*created); !s.ok()) return s;
  return *created;
}

bool StopAndRecord(Context& ctx, Instance& instance, std::chrono::milliseconds grace) {
  if (!ctx.Reachable(instance.node)) {
    spdlog::warn("instance {} on node {}: node not connected; stopped once it is back", instance.id,
                 instance.node);
    return false;
  }
  ctx.On(instance.node).StopInstance(HandleOf(instance), grace);
  // The call fails quietly when the node goes silent meanwhile (a partition): then the
  // record stays live for the sweep, instead of hiding a process that still runs.
  if (!ctx.Reachable(instance.node) || ctx.On(instance.node).IsRunning(HandleOf(instance))) {
    spdlog::warn("instance {} on node {}: not confirmed stopped; tried again later", instance.id,
                 instance.node);
    return false;
  }
  instance.state = "stopped";
  if (auto s = ctx.store.UpdateInstance(instance); !s.ok())
    spdlog::error("instance {}: cannot record it stopped: {}", instance.id, s.ToString());
  return true;
}

Result<std::shared_ptr<gateway::Target>> TargetOf(const Context& ctx, const std::string& id,
                                                  const Instance& instance) {
  std::string host = ctx.AddressOf(instance.node);
  if (host.empty()) return Unavailable("the address of node " + instance.node + " is unknown");
  return std::make_shared<gateway::Target>(id, host, instance.port);
}

std::string ServiceName(const std::string& app) {
  return "slipway-" + app;
}

ServiceSpec MakeServiceSpec(const App& app, const Release& release, const Manifest& m) {
  ServiceSpec s;
  s.name = ServiceName(app.name);
  s.image = ImageTag(app.name, release);
  s.env = ReleaseEnv(app, release, m);
  s.labels = ReleaseLabels(app, release);
  s.container_port = m.container_port;
  s.replicas = m.replicas;
  s.constraints = m.constraints;
  s.memory_bytes = m.memory_bytes;
  s.cpus = m.cpus;
  s.healthcheck = m.healthcheck;
  s.parallelism = m.update_parallelism;
  s.update_delay = m.update_delay;
  s.monitor = m.update_monitor;
  s.order = m.update_order;
  return s;
}

Result<std::vector<TaskView>> SyncServicePool(Context& ctx, const std::string& app,
                                              const std::string& service) {
  auto tasks = ctx.agent.ServiceTasks(service);
  if (!tasks.ok()) return tasks;
  std::map<int, std::shared_ptr<gateway::Target>> existing;
  for (const auto& r : ctx.router.Snapshot()->routes()) {
    if (r.app != app) continue;
    for (const auto& t : r.pool) existing[t->port()] = t;
  }
  std::vector<std::shared_ptr<gateway::Target>> pool;
  bool changed = false;
  for (const auto& t : *tasks) {
    if (t.desired != "running" || t.state != "running" || t.port == 0 ||
        !ctx.agent.TaskHealthy(t.container_id))
      continue;
    auto it = existing.find(t.port);
    if (it != existing.end()) {
      pool.push_back(it->second);
      existing.erase(it);
    } else {
      pool.push_back(std::make_shared<gateway::Target>(
          fmt::format("{}-task-{}", app, t.id.substr(0, 12)), "127.0.0.1", t.port));
      changed = true;
    }
  }
  if (changed || !existing.empty()) ctx.router.SetPool(app, std::move(pool));
  return tasks;
}

}  // namespace slipway
