#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "docker/client.h"
#include "runtime/runtime.h"

namespace slipway {
namespace {

using json = nlohmann::json;

json ContainerConfig(const InstanceSpec& spec) {
  const ContainerSpec& c = spec.container;
  std::string port_key = std::to_string(c.container_port) + "/tcp";
  json env = json::array();
  for (const auto& [k, v] : spec.env) env.push_back(k + "=" + v);
  env.push_back("PORT=" + std::to_string(c.container_port));
  json host = {
      {"PortBindings",
       {{port_key, {{{"HostIp", c.host_ip}, {"HostPort", std::to_string(spec.port)}}}}}},
      {"RestartPolicy", {{"Name", c.restart}}},
      // An init as PID 1 forwards SIGTERM, so a stop takes milliseconds, not the grace period.
      {"Init", true},
  };
  if (c.memory_bytes > 0) host["Memory"] = c.memory_bytes;
  if (c.cpus > 0) host["NanoCpus"] = static_cast<long long>(c.cpus * 1e9);
  if (!c.volumes.empty()) host["Binds"] = c.volumes;
  json config = {{"Image", c.image},
                 {"Env", env},
                 {"Labels", c.labels},
                 {"ExposedPorts", {{port_key, json::object()}}},
                 {"HostConfig", host}};
  if (!spec.command.empty()) config["Cmd"] = {"/bin/sh", "-c", spec.command};
  return config;
}

}  // namespace

Result<InstanceHandle> ContainerRuntime::Start(const InstanceSpec& spec) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return client.status();
  json config = ContainerConfig(spec);
  auto id = client->CreateContainer(spec.container.name, config);
  if (!id.ok() && id.status().code() == Code::kConflict) {
    // The name is taken: the release's serving container during a restart, or one left by
    // an earlier attempt. The new one gets its instance id appended.
    auto it = spec.container.labels.find("slipway.instance");
    std::string suffix = it == spec.container.labels.end() ? std::to_string(spec.port) : it->second;
    id = client->CreateContainer(spec.container.name + "-" + suffix, config);
  }
  if (!id.ok()) return id.status();
  if (auto s = client->StartContainer(*id); !s.ok()) {
    (void)client->RemoveContainer(*id);
    return s;
  }
  InstanceHandle h;
  h.port = spec.port;
  h.container_id = *id;
  h.runtime = "container";
  return h;
}

bool ContainerRuntime::IsRunning(const InstanceHandle& h) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return false;
  auto state = client->InspectContainer(h.container_id);
  // A container its restart policy keeps reviving after crashes is not running for us.
  return state.ok() && state->running && !state->restarting;
}

long long ContainerRuntime::MemoryBytes(const InstanceHandle& h) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return 0;
  auto usage = client->MemoryUsage(h.container_id);
  return usage.ok() ? *usage : 0;
}

void ContainerRuntime::Stop(const InstanceHandle& h, std::chrono::milliseconds grace) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return;
  int seconds = static_cast<int>(std::max<long long>(1, grace.count() / 1000));
  (void)client->StopContainer(h.container_id, seconds);
  (void)client->RemoveContainer(h.container_id);
}

}  // namespace slipway
