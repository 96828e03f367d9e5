#include "agent/wire.h"

#include <algorithm>
#include <cctype>

#include "crypto/crypto.h"

namespace slipway {
using nlohmann::json;

namespace {
// Durations travel as integer milliseconds.
long long Ms(std::chrono::milliseconds d) {
  return d.count();
}
std::chrono::milliseconds MsOf(const json& j, const char* key, std::chrono::milliseconds dflt) {
  return j.contains(key) ? std::chrono::milliseconds(j.at(key).get<long long>()) : dflt;
}
template <typename T>
void Opt(const json& j, const char* key, T& out) {
  if (j.contains(key)) j.at(key).get_to(out);
}
}  // namespace

void to_json(json& j, const ContainerSpec& v) {
  j = json{{"image", v.image},
           {"name", v.name},
           {"container_port", v.container_port},
           {"host_ip", v.host_ip},
           {"memory_bytes", v.memory_bytes},
           {"cpus", v.cpus},
           {"volumes", v.volumes},
           {"restart", v.restart},
           {"labels", v.labels},
           {"network", v.network},
           {"aliases", v.aliases}};
}
void from_json(const json& j, ContainerSpec& v) {
  Opt(j, "image", v.image);
  Opt(j, "name", v.name);
  Opt(j, "container_port", v.container_port);
  Opt(j, "host_ip", v.host_ip);
  Opt(j, "memory_bytes", v.memory_bytes);
  Opt(j, "cpus", v.cpus);
  Opt(j, "volumes", v.volumes);
  Opt(j, "restart", v.restart);
  Opt(j, "labels", v.labels);
  Opt(j, "network", v.network);
  Opt(j, "aliases", v.aliases);
}

void to_json(json& j, const InstanceSpec& v) {
  j = json{{"runtime", v.runtime},
           {"container", v.container},
           {"app", v.app},
           {"release_id", v.release_id},
           {"release_dir", v.release_dir},
           {"command", v.command},
           {"env", v.env},
           {"port", v.port},
           {"log_path", v.log_path}};
}
void from_json(const json& j, InstanceSpec& v) {
  Opt(j, "runtime", v.runtime);
  Opt(j, "container", v.container);
  Opt(j, "app", v.app);
  Opt(j, "release_id", v.release_id);
  Opt(j, "release_dir", v.release_dir);
  Opt(j, "command", v.command);
  Opt(j, "env", v.env);
  Opt(j, "port", v.port);
  Opt(j, "log_path", v.log_path);
}

void to_json(json& j, const InstanceHandle& v) {
  j = json{{"pid", v.pid},
           {"start_ticks", v.start_ticks},
           {"port", v.port},
           {"container_id", v.container_id},
           {"runtime", v.runtime}};
}
void from_json(const json& j, InstanceHandle& v) {
  Opt(j, "pid", v.pid);
  Opt(j, "start_ticks", v.start_ticks);
  Opt(j, "port", v.port);
  Opt(j, "container_id", v.container_id);
  Opt(j, "runtime", v.runtime);
}

void to_json(json& j, const ServiceSpec& v) {
  j = json{{"name", v.name},
           {"image", v.image},
           {"env", v.env},
           {"labels", v.labels},
           {"container_port", v.container_port},
           {"replicas", v.replicas},
           {"constraints", v.constraints},
           {"memory_bytes", v.memory_bytes},
           {"cpus", v.cpus},
           {"healthcheck", v.healthcheck},
           {"parallelism", v.parallelism},
           {"update_delay_ms", Ms(v.update_delay)},
           {"monitor_ms", Ms(v.monitor)},
           {"order", v.order}};
}
void from_json(const json& j, ServiceSpec& v) {
  Opt(j, "name", v.name);
  Opt(j, "image", v.image);
  Opt(j, "env", v.env);
  Opt(j, "labels", v.labels);
  Opt(j, "container_port", v.container_port);
  Opt(j, "replicas", v.replicas);
  Opt(j, "constraints", v.constraints);
  Opt(j, "memory_bytes", v.memory_bytes);
  Opt(j, "cpus", v.cpus);
  Opt(j, "healthcheck", v.healthcheck);
  Opt(j, "parallelism", v.parallelism);
  v.update_delay = MsOf(j, "update_delay_ms", v.update_delay);
  v.monitor = MsOf(j, "monitor_ms", v.monitor);
  Opt(j, "order", v.order);
}

void to_json(json& j, const ServiceView& v) {
  j = json{{"id", v.id},
           {"image", v.image},
           {"update_state", v.update_state},
           {"update_message", v.update_message}};
}
void from_json(const json& j, ServiceView& v) {
  Opt(j, "id", v.id);
  Opt(j, "image", v.image);
  Opt(j, "update_state", v.update_state);
  Opt(j, "update_message", v.update_message);
}

void to_json(json& j, const TaskView& v) {
  j = json{{"id", v.id},           {"slot", v.slot},   {"state", v.state},
           {"desired", v.desired}, {"image", v.image}, {"container_id", v.container_id},
           {"message", v.message}, {"port", v.port}};
}
void from_json(const json& j, TaskView& v) {
  Opt(j, "id", v.id);
  Opt(j, "slot", v.slot);
  Opt(j, "state", v.state);
  Opt(j, "desired", v.desired);
  Opt(j, "image", v.image);
  Opt(j, "container_id", v.container_id);
  Opt(j, "message", v.message);
  Opt(j, "port", v.port);
}

void to_json(json& j, const ImageRequest& v) {
  j = json{{"release_dir", v.release_dir},
           {"dockerfile", v.dockerfile},
           {"image_tar", v.image_tar},
           {"image", v.image},
           {"tag", v.tag}};
}
void from_json(const json& j, ImageRequest& v) {
  Opt(j, "release_dir", v.release_dir);
  Opt(j, "dockerfile", v.dockerfile);
  Opt(j, "image_tar", v.image_tar);
  Opt(j, "image", v.image);
  Opt(j, "tag", v.tag);
}

void to_json(json& j, const ProbeResult& v) {
  j = json{{"status", v.status}, {"latency_us", v.latency.count()}, {"error", v.error}};
}
void from_json(const json& j, ProbeResult& v) {
  Opt(j, "status", v.status);
  long long us = 0;
  Opt(j, "latency_us", us);
  v.latency = std::chrono::microseconds(us);
  Opt(j, "error", v.error);
}

void to_json(json& j, const RepoView& v) {
  j = json{{"name", v.name}, {"kind", v.kind}, {"location", v.location}};
}
void from_json(const json& j, RepoView& v) {
  j.at("name").get_to(v.name);
  j.at("kind").get_to(v.kind);
  j.at("location").get_to(v.location);
}

namespace os {
void to_json(json& j, const RunResult& v) {
  j = json{{"exit_code", v.exit_code},
           {"signal", v.signal},
           {"timed_out", v.timed_out},
           {"cancelled", v.cancelled}};
}
void from_json(const json& j, RunResult& v) {
  Opt(j, "exit_code", v.exit_code);
  Opt(j, "signal", v.signal);
  Opt(j, "timed_out", v.timed_out);
  Opt(j, "cancelled", v.cancelled);
}
}  // namespace os

namespace wire {

Result<std::string> ToWire(const std::string& root, const std::string& path) {
  if (path.empty()) return std::string();
  if (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
      path[root.size()] == '/')
    return path.substr(root.size() + 1);
  return Invalid("path is outside the data directory");
}

Result<std::string> FromWire(const std::string& root, const std::string& path) {
  if (path.empty()) return std::string();
  if (path.size() > 4096 || path.front() == '/' || path.find('\0') != std::string::npos)
    return Invalid("node paths are relative to the data directory");
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.compare(start, end - start, "..") == 0 && end - start == 2)
      return Invalid("node paths may not contain '..'");
    start = end + 1;
  }
  return root + "/" + path;
}

namespace {
// The serialized size of `item` as one more member of a JSON array.
std::size_t ItemBytes(const json& item) {
  return item.dump(-1, ' ', false, json::error_handler_t::replace).size() + 1;
}
}  // namespace

json ReposToWire(const std::vector<RepoView>& repos) {
  json list = json::array();
  std::size_t bytes = 0;
  for (const auto& r : repos) {
    json item = r;
    bytes += ItemBytes(item);
    if (bytes > kMaxListBytes) return json{{"repos", std::move(list)}, {"truncated", true}};
    list.push_back(std::move(item));
  }
  return json{{"repos", std::move(list)}, {"truncated", false}};
}

std::vector<RepoView> ReposFromWire(const json& value) {
  return value.at("repos").get<std::vector<RepoView>>();
}

json BranchesToWire(const git::BranchList& branches) {
  json list = json::array();
  std::size_t bytes = 0;
  for (const auto& b : branches.branches) {
    json item = json::array({b.name, b.commit});
    bytes += ItemBytes(item);
    if (bytes > kMaxListBytes) return json{{"branches", std::move(list)}, {"truncated", true}};
    list.push_back(std::move(item));
  }
  return json{{"branches", std::move(list)}, {"truncated", branches.truncated}};
}

git::BranchList BranchesFromWire(const json& value) {
  git::BranchList out;
  for (const auto& item : value.at("branches"))
    out.branches.push_back({item.at(0).get<std::string>(), item.at(1).get<std::string>()});
  out.truncated = value.value("truncated", false);
  return out;
}

std::vector<json> WriteFileArgs(const std::string& path, std::string_view content, int mode,
                                const std::string& upload) {
  if (content.size() <= kWritePartBytes)
    return {json{{"path", path}, {"mode", mode}, {"data", crypto::Base64UrlEncode(content)}}};
  std::vector<json> ops;
  const int parts = static_cast<int>((content.size() + kWritePartBytes - 1) / kWritePartBytes);
  for (int i = 0; i < parts; ++i) {
    std::size_t offset = static_cast<std::size_t>(i) * kWritePartBytes;
    ops.push_back(json{{"path", path},
                       {"mode", mode},
                       {"data", crypto::Base64UrlEncode(content.substr(offset, kWritePartBytes))},
                       {"part", i},
                       {"parts", parts},
                       {"offset", offset},
                       {"upload", upload}});
  }
  return ops;
}

Result<WritePart> WritePartOf(const json& args) {
  WritePart p;
  if (!args.contains("parts")) return p;
  p.index = args.at("part").get<int>();
  p.parts = args.at("parts").get<int>();
  p.offset = args.at("offset").get<std::size_t>();
  p.upload = args.at("upload").get<std::string>();
  const int max_parts = static_cast<int>(kMaxWriteFileBytes / kWritePartBytes) + 1;
  bool id_ok = !p.upload.empty() && p.upload.size() <= 64 &&
               std::all_of(p.upload.begin(), p.upload.end(), [](char c) {
                 return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
               });
  if (p.parts < 1 || p.parts > max_parts || p.index < 0 || p.index >= p.parts || !id_ok ||
      p.offset > kMaxWriteFileBytes)
    return Invalid("write_file: malformed part");
  return p;
}

std::string CodeName(Code code) {
  return ToString(code);
}

Code CodeFromName(const std::string& name) {
  for (int c = static_cast<int>(Code::kOk); c <= static_cast<int>(Code::kInternal); ++c) {
    if (name == ToString(static_cast<Code>(c))) return static_cast<Code>(c);
  }
  return Code::kInternal;
}

}  // namespace wire
}  // namespace slipway
