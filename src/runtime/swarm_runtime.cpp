#include "runtime/swarm_runtime.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "docker/client.h"
#include "net/http.h"

namespace slipway {
namespace {

using json = nlohmann::json;

long long Nanos(std::chrono::milliseconds ms) {
  return ms.count() * 1'000'000LL;
}

json ServiceJson(const ServiceSpec& s) {
  json env = json::array();
  for (const auto& [k, v] : s.env) env.push_back(k + "=" + v);
  env.push_back("PORT=" + std::to_string(s.container_port));
  // Task containers carry no slipway.home label: they belong to the service, and the
  // orphan-container reaper must leave them alone.
  auto container_labels = s.labels;
  container_labels.erase("slipway.home");
  json container = {{"Image", s.image}, {"Env", env}, {"Labels", container_labels}, {"Init", true}};
  if (!s.healthcheck.empty()) {
    json test = json::array({"CMD"});
    for (const auto& a : s.healthcheck) test.push_back(a);
    container["Healthcheck"] = {{"Test", test},
                                {"Interval", Nanos(std::chrono::milliseconds(500))},
                                {"Timeout", Nanos(std::chrono::seconds(2))},
                                {"Retries", 2},
                                {"StartPeriod", Nanos(std::chrono::seconds(0))}};
  }
  json limits = json::object();
  if (s.memory_bytes > 0) limits["MemoryBytes"] = s.memory_bytes;
  if (s.cpus > 0) limits["NanoCPUs"] = static_cast<long long>(s.cpus * 1e9);
  json update = {{"Parallelism", s.parallelism}, {"Delay", Nanos(s.update_delay)},
                 {"FailureAction", "rollback"},  {"Monitor", Nanos(s.monitor)},
                 {"MaxFailureRatio", 0},         {"Order", s.order}};
  json rollback = {{"Parallelism", s.parallelism}, {"Delay", 0},
                   {"FailureAction", "pause"},     {"Monitor", Nanos(std::chrono::seconds(1))},
                   {"MaxFailureRatio", 0},         {"Order", s.order}};
  return {{"Name", s.name},
          {"Labels", s.labels},
          {"TaskTemplate",
           {{"ContainerSpec", container},
            {"Resources", {{"Limits", limits}}},
            {"Placement", {{"Constraints", s.constraints}}},
            {"RestartPolicy", {{"Condition", "any"}, {"Delay", Nanos(std::chrono::seconds(1))}}}}},
          {"Mode", {{"Replicated", {{"Replicas", s.replicas}}}}},
          {"UpdateConfig", update},
          {"RollbackConfig", rollback},
          // Host mode with no published port: every task gets its own ephemeral host port.
          {"EndpointSpec",
           {{"Ports",
             {{{"Protocol", "tcp"}, {"TargetPort", s.container_port}, {"PublishMode", "host"}}}}}}};
}

}  // namespace

Result<std::string> SwarmRuntime::Deploy(const ServiceSpec& spec) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return client.status();
  auto existing = client->Call("GET", "/services/" + net::PercentEncode(spec.name));
  if (!existing.ok() && existing.status().code() != Code::kNotFound) return existing.status();
  if (!existing.ok()) {
    auto created = client->Call("POST", "/services/create", ServiceJson(spec));
    if (!created.ok()) {
      if (created.status().message().find("not a swarm manager") != std::string::npos) {
        return Unavailable(
            "this Docker node is not a swarm manager (run `docker swarm init` first)");
      }
      return created.status();
    }
    return (*created).value("ID", "");
  }
  std::string id = (*existing)["ID"];
  long long version = (*existing)["Version"]["Index"];
  json body = ServiceJson(spec);
  // Same image (a restart): force new tasks anyway.
  body["TaskTemplate"]["ForceUpdate"] =
      (*existing)["Spec"]["TaskTemplate"].value("ForceUpdate", 0) + 1;
  auto updated =
      client->Call("POST", fmt::format("/services/{}/update?version={}", id, version), body);
  if (!updated.ok()) return updated.status();
  return id;
}

Result<ServiceView> SwarmRuntime::Inspect(const std::string& service) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return client.status();
  auto s = client->Call("GET", "/services/" + net::PercentEncode(service));
  if (!s.ok()) return s.status();
  ServiceView v;
  v.id = (*s)["ID"];
  v.image = (*s)["Spec"]["TaskTemplate"]["ContainerSpec"].value("Image", "");
  if (s->contains("UpdateStatus") && (*s)["UpdateStatus"].is_object()) {
    v.update_state = (*s)["UpdateStatus"].value("State", "");
    v.update_message = (*s)["UpdateStatus"].value("Message", "");
  }
  return v;
}

Result<std::vector<TaskView>> SwarmRuntime::Tasks(const std::string& service) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return client.status();
  json filters = {{"service", {service}}};
  auto list = client->Call("GET", "/tasks?filters=" + net::PercentEncode(filters.dump()));
  if (!list.ok()) return list.status();
  std::vector<TaskView> out;
  for (const auto& t : *list) {
    TaskView v;
    v.id = t.value("ID", "");
    v.slot = t.value("Slot", 0);
    v.desired = t.value("DesiredState", "");
    const auto& st = t["Status"];
    v.state = st.value("State", "");
    v.message = st.value("Err", st.value("Message", ""));
    if (st.contains("ContainerStatus"))
      v.container_id = st["ContainerStatus"].value("ContainerID", "");
    if (st.contains("PortStatus") && st["PortStatus"].contains("Ports")) {
      // Docker 20.10 may publish a host-mode port twice, one for IPv4 and one for IPv6, each
      // with its own number; the IPv4 one comes first and is the one loopback reaches.
      for (const auto& p : st["PortStatus"]["Ports"]) {
        if (v.port == 0) v.port = p.value("PublishedPort", 0);
      }
    }
    v.image = t["Spec"]["ContainerSpec"].value("Image", "");
    out.push_back(std::move(v));
  }
  return out;
}

bool SwarmRuntime::Healthy(const std::string& container_id) {
  if (container_id.empty()) return false;
  auto client = docker::Client::Connect();
  if (!client.ok()) return false;
  auto c = client->Call("GET", "/containers/" + container_id + "/json");
  if (!c.ok()) return false;
  const auto& state = (*c)["State"];
  if (!state.value("Running", false)) return false;
  if (!state.contains("Health") || !state["Health"].is_object()) return true;
  return state["Health"].value("Status", "") == "healthy";
}

Status SwarmRuntime::Rollback(const std::string& service) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return client.status();
  auto s = client->Call("GET", "/services/" + net::PercentEncode(service));
  if (!s.ok()) return s.status();
  if (!s->contains("PreviousSpec")) return Remove(service);  // nothing to go back to
  long long version = (*s)["Version"]["Index"];
  return client
      ->Call("POST",
             fmt::format("/services/{}/update?version={}&rollback=previous",
                         (*s)["ID"].get<std::string>(), version),
             (*s)["Spec"])
      .status();
}

Status SwarmRuntime::Remove(const std::string& service) {
  auto client = docker::Client::Connect();
  if (!client.ok()) return client.status();
  auto r = client->Call("DELETE", "/services/" + net::PercentEncode(service));
  return r.ok() || r.status().code() == Code::kNotFound ? Status::Ok() : r.status();
}

}  // namespace slipway
