#include "control/instances.h"

#include <fmt/format.h>

#include <filesystem>

namespace slipway {

std::string ImageTag(const std::string& app, const Release& release) {
  return fmt::format("slipway/{}:{}-{}", app, release.number, release.commit.substr(0, 7));
}

InstanceHandle HandleOf(const Instance& i) { return {i.pid, i.start_ticks, i.port, i.container_id}; }

std::string InstanceLogPath(const Paths& paths, const std::string& app, std::int64_t instance_id) {
  return fmt::format("{}/instance-{}.log", paths.logs(app), instance_id);
}

namespace {

InstanceSpec MakeSpec(const Context& ctx, const App& app, const Release& release, const Manifest& m,
                      const Instance& instance) {
  InstanceSpec spec;
  spec.runtime = m.runtime;
  spec.app = app.name;
  spec.release_id = release.id;
  spec.release_dir = release.path;
  spec.command = m.command;
  spec.env = m.env;
  spec.env["SLIPWAY_APP"] = app.name;
  spec.env["SLIPWAY_RELEASE"] = std::to_string(release.number);
  spec.env["SLIPWAY_INSTANCE_ID"] = std::to_string(instance.id);
  spec.env[kHomeMarker] = ctx.paths.data;
  spec.port = instance.port;
  spec.log_path = InstanceLogPath(ctx.paths, app.name, instance.id);
  if (m.runtime == "container") {
    ContainerSpec& c = spec.container;
    c.image = ImageTag(app.name, release);
    c.name = fmt::format("slipway-{}-{}", app.name, release.number);
    c.container_port = m.container_port;
    c.host_ip = m.host_ip;
    c.memory_bytes = m.memory_bytes;
    c.cpus = m.cpus;
    c.volumes = m.volumes;
    c.restart = m.restart;
    c.labels = {{"slipway.app", app.name},
                {"slipway.release", std::to_string(release.number)},
                {"slipway.deployment", std::to_string(release.deployment_id)},
                {"slipway.instance", std::to_string(instance.id)},
                {"slipway.home", ctx.paths.data}};
  }
  return spec;
}

}  // namespace

Result<Instance> LaunchInstance(Context& ctx, const App& app, const Release& release, const Manifest& manifest,
                                const std::string& state) {
  auto port = ctx.agent.AllocatePort();
  if (!port.ok()) return port.status();
  Instance rec;
  rec.app_id = app.id;
  rec.release_id = release.id;
  rec.runtime = manifest.runtime;
  rec.port = *port;
  rec.state = state;
  auto created = ctx.store.CreateInstance(rec);
  if (!created.ok()) return created.status();
  std::error_code ec;
  std::filesystem::create_directories(ctx.paths.logs(app.name), ec);
  auto handle = ctx.agent.StartInstance(MakeSpec(ctx, app, release, manifest, *created));
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

}  // namespace slipway
