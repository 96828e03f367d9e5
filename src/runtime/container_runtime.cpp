#include <fmt/format.h>

#include <mutex>
#include <regex>

#include <nlohmann/json.hpp>

#include "docker/client.h"
#include "runtime/runtime.h"

namespace slipway {
namespace {

using json = nlohmann::json;

// The label that tells Stop which network to remove after the container.
constexpr const char* kNetworkLabel = "slipway.network";

// Held while a container of a network is created and started, and while a network is
// removed after its last container: Docker attaches the endpoint only at start, so without
// it a stop could remove the network between another container's create and its start.
std::mutex& NetworkMutex() {
  static std::mutex mu;
  return mu;
}

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
  json labels = c.labels;
  json config = {{"Image", c.image},
                 {"Env", env},
                 {"ExposedPorts", {{port_key, json::object()}}},
                 {"HostConfig", host}};
  if (!c.network.empty()) {
    labels[kNetworkLabel] = c.network;
    config["HostConfig"]["NetworkMode"] = c.network;
    config["NetworkingConfig"] = {{"EndpointsConfig", {{c.network, {{"Aliases", c.aliases}}}}}};
  }
  config["Labels"] = labels;
  if (!spec.command.empty()) config["Cmd"] = {"/bin/sh", "-c", spec.command};
  return config;
}

Status ValidateNetwork(const ContainerSpec& c) {
  if (c.network.empty()) {
    if (!c.aliases.empty()) return Invalid("container aliases need a network");
    return Status::Ok();
  }
  if (!ValidNetworkName(c.network))
    return Invalid("network name '" + c.network + "' is not [a-z0-9][a-z0-9_.-]{0,62}");
  if (c.aliases.size() > kMaxNetworkAliases)
    return Invalid(fmt::format("at most {} network aliases", kMaxNetworkAliases));
  for (const auto& a : c.aliases) {
    if (!ValidNetworkName(a))
      return Invalid("network alias '" + a + "' is not [a-z0-9][a-z0-9_.-]{0,62}");
  }
  return Status::Ok();
}

Result<std::string> CreateAndStart(const docker::Client& client, const InstanceSpec& spec) {
  json config = ContainerConfig(spec);
  auto id = client.CreateContainer(spec.container.name, config);
  if (!id.ok() && id.status().code() == Code::kConflict) {
    // The name is taken: the release's serving container during a restart, or one left by
    // an earlier attempt. The new one gets its instance id appended.
    auto it = spec.container.labels.find("slipway.instance");
    std::string suffix = it == spec.container.labels.end() ? std::to_string(spec.port) : it->second;
    id = client.CreateContainer(spec.container.name + "-" + suffix, config);
  }
  if (!id.ok()) return id.status();
  if (auto s = client.StartContainer(*id); !s.ok()) {
    (void)client.RemoveContainer(*id);
    return s;
  }
  return id;
}

}  // namespace

bool ValidNetworkName(const std::string& name) {
  static const std::regex kName("^[a-z0-9][a-z0-9_.-]{0,62}$");
  return std::regex_match(name, kName);
}

Result<InstanceHandle> ContainerRuntime::Start(const InstanceSpec& spec) {
  if (auto s = ValidateNetwork(spec.container); !s.ok()) return s;
  auto client = docker::Client::Connect();
  if (!client.ok()) return client.status();
  Result<std::string> id = std::string();
  if (spec.container.network.empty()) {
    id = CreateAndStart(*client, spec);
  } else {
    std::lock_guard lock(NetworkMutex());
    auto made = client->EnsureNetwork(spec.container.network,
                                      {{"slipway.sandbox", spec.container.network}});
    if (!made.ok()) return made;
    id = CreateAndStart(*client, spec);
  }
  if (!id.ok()) return id.status();
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

// The network goes with its last container; one that still has containers stays (Docker
// answers "has active endpoints"), to go with the last of them.
void ContainerRuntime::Stop(const InstanceHandle& h, std::chrono::milliseconds grace) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return;
  std::string network;
  if (auto state = client->InspectContainer(h.container_id); state.ok()) {
    if (auto it = state->labels.find(kNetworkLabel); it != state->labels.end())
      network = it->second;
  }
  int seconds = static_cast<int>(std::max<long long>(1, grace.count() / 1000));
  (void)client->StopContainer(h.container_id, seconds);
  if (network.empty() || !ValidNetworkName(network)) {
    (void)client->RemoveContainer(h.container_id);
    return;
  }
  std::lock_guard lock(NetworkMutex());
  (void)client->RemoveContainer(h.container_id);
  (void)client->RemoveNetwork(network);  // kConflict while others are on it; kNotFound: gone
}

}  // namespace slipway
