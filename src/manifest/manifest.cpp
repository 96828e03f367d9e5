#include "manifest/manifest.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace slipway {
namespace {

struct ManifestError {
  YAML::Mark mark;
  std::string message;
};

// Error-reporting helpers bound to the node being read. Throws ManifestError, caught in
// ParseManifest; nothing escapes this file.
class Reader {
 public:
  [[noreturn]] static void Fail(const YAML::Node& node, const std::string& msg) {
    throw ManifestError{node.Mark(), msg};
  }

  static std::string Scalar(const YAML::Node& node, const std::string& key) {
    if (!node.IsScalar()) Fail(node, key + ": expected a string");
    return node.Scalar();
  }

  static std::vector<std::string> Steps(const YAML::Node& node, const std::string& key) {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(node.Scalar());
      return out;
    }
    if (!node.IsSequence()) Fail(node, key + ": expected a list of shell commands");
    for (const auto& item : node) {
      if (!item.IsScalar() || item.Scalar().empty())
        Fail(item, key + ": each step must be a command string");
      out.push_back(item.Scalar());
    }
    return out;
  }

  static std::chrono::milliseconds Duration(const YAML::Node& node, const std::string& key) {
    std::chrono::milliseconds d{};
    if (!node.IsScalar() || !ParseDuration(node.Scalar(), d)) {
      Fail(node, key + ": expected a duration like 10s or 500ms");
    }
    return d;
  }

  static int Int(const YAML::Node& node, const std::string& key, int min, int max) {
    if (!node.IsScalar()) Fail(node, key + ": expected a number");
    const std::string& s = node.Scalar();
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v < min || v > max) {
      Fail(node, key + ": expected a whole number from " + std::to_string(min) + " to " +
                     std::to_string(max));
    }
    return static_cast<int>(v);
  }

  // Rejects keys outside `allowed`, so a typo is an error and not a silent default.
  static void Keys(const YAML::Node& node, const std::string& where,
                   const std::set<std::string>& allowed) {
    if (!node.IsMap()) Fail(node, (where.empty() ? "manifest" : where) + ": expected a mapping");
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      if (!allowed.count(key)) {
        std::string known;
        for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
        Fail(kv.first, "unknown key '" + (where.empty() ? key : where + "." + key) +
                           "' (expected one of: " + known + ")");
      }
    }
  }
};

void ReadContainer(const YAML::Node& run, Manifest& m) {
  int sources = 0;
  for (const char* key : {"dockerfile", "image_tar", "image"}) {
    if (!run[key]) continue;
    ++sources;
    std::string v = Reader::Scalar(run[key], std::string("run.") + key);
    if (v.empty()) Reader::Fail(run[key], std::string("run.") + key + ": must not be empty");
    (std::string(key) == "dockerfile" ? m.dockerfile
     : std::string(key) == "image"    ? m.image
                                      : m.image_tar) = v;
  }
  if (sources != 1)
    Reader::Fail(run, "run: a container needs exactly one of dockerfile, image_tar or image");
  if (run["port"]) m.container_port = Reader::Int(run["port"], "run.port", 1, 65535);
  if (run["host_ip"]) m.host_ip = Reader::Scalar(run["host_ip"], "run.host_ip");
  if (run["memory"] &&
      (!run["memory"].IsScalar() || !ParseBytes(run["memory"].Scalar(), m.memory_bytes))) {
    Reader::Fail(run["memory"], "run.memory: expected a size like 256MiB");
  }
  if (run["cpus"]) {
    const auto& n = run["cpus"];
    char* end = nullptr;
    m.cpus = n.IsScalar() ? std::strtod(n.Scalar().c_str(), &end) : -1;
    if (!n.IsScalar() || *end != '\0' || m.cpus <= 0 || m.cpus > 1024)
      Reader::Fail(n, "run.cpus: expected a positive number like 0.5");
  }
  if (run["volumes"]) {
    m.volumes = Reader::Steps(run["volumes"], "run.volumes");
    for (std::size_t i = 0; i < m.volumes.size(); ++i) {
      if (m.volumes[i].find(':') == std::string::npos)
        Reader::Fail(run["volumes"][i], "run.volumes: expected host:container");
    }
  }
  if (run["restart"]) {
    m.restart = Reader::Scalar(run["restart"], "run.restart");
    if (m.restart != "no" && m.restart != "always" && m.restart != "unless-stopped" &&
        m.restart != "on-failure") {
      Reader::Fail(run["restart"],
                   "run.restart: expected no, always, unless-stopped or on-failure");
    }
  }
}

void ReadSwarm(const YAML::Node& run, Manifest& m) {
  for (const char* key : {"volumes", "restart", "host_ip"}) {
    if (run[key])
      Reader::Fail(run[key], std::string("run.") + key + ": does not apply to runtime: swarm");
  }
  if (run["replicas"]) m.replicas = Reader::Int(run["replicas"], "run.replicas", 1, 1000);
  if (run["constraints"]) m.constraints = Reader::Steps(run["constraints"], "run.constraints");
  if (run["healthcheck"]) m.healthcheck = Reader::Steps(run["healthcheck"], "run.healthcheck");
  if (const auto& u = run["update"]) {
    Reader::Keys(u, "run.update", {"parallelism", "delay", "monitor", "order"});
    if (u["parallelism"])
      m.update_parallelism = Reader::Int(u["parallelism"], "run.update.parallelism", 0, 1000);
    if (u["delay"]) m.update_delay = Reader::Duration(u["delay"], "run.update.delay");
    if (u["monitor"]) m.update_monitor = Reader::Duration(u["monitor"], "run.update.monitor");
    if (u["order"]) {
      m.update_order = Reader::Scalar(u["order"], "run.update.order");
      if (m.update_order != "start-first" && m.update_order != "stop-first") {
        Reader::Fail(u["order"], "run.update.order: expected start-first or stop-first");
      }
    }
  }
}

void ReadRun(const YAML::Node& run, Manifest& m) {
  Reader::Keys(
      run, "run",
      {"runtime", "command", "dockerfile", "image_tar", "image", "port", "host_ip", "memory",
       "cpus", "volumes", "restart", "replicas", "constraints", "healthcheck", "update"});
  if (run["runtime"]) {
    m.runtime = Reader::Scalar(run["runtime"], "run.runtime");
    if (m.runtime != "process" && m.runtime != "container" && m.runtime != "swarm") {
      Reader::Fail(run["runtime"], "run.runtime: '" + m.runtime +
                                       "' is not supported (expected process, container or swarm)");
    }
  }
  if (m.runtime != "swarm") {
    for (const char* key : {"replicas", "constraints", "healthcheck", "update"}) {
      if (run[key])
        Reader::Fail(run[key], std::string("run.") + key + ": only applies to runtime: swarm");
    }
  }
  if (m.is_image_runtime()) {
    ReadContainer(run, m);
    if (m.runtime == "swarm") ReadSwarm(run, m);
    if (run["command"]) m.command = Reader::Scalar(run["command"], "run.command");
    return;
  }
  for (const char* key : {"dockerfile", "image_tar", "image", "port", "host_ip", "memory", "cpus",
                          "volumes", "restart"}) {
    if (run[key])
      Reader::Fail(run[key],
                   std::string("run.") + key + ": only applies to runtime: container or swarm");
  }
  if (!run["command"]) Reader::Fail(run, "run.command: required");
  m.command = Reader::Scalar(run["command"], "run.command");
  if (m.command.empty()) Reader::Fail(run["command"], "run.command: must not be empty");
}

void ReadHealth(const YAML::Node& h, Manifest& m) {
  Reader::Keys(h, "health", {"path", "timeout", "max_latency", "max_memory", "probes"});
  if (h["path"]) {
    m.health_path = Reader::Scalar(h["path"], "health.path");
    if (m.health_path.empty() || m.health_path[0] != '/')
      Reader::Fail(h["path"], "health.path: must start with /");
  }
  if (h["timeout"]) m.health_timeout = Reader::Duration(h["timeout"], "health.timeout");
  if (h["max_latency"]) m.max_latency = Reader::Duration(h["max_latency"], "health.max_latency");
  if (h["max_memory"]) {
    if (!h["max_memory"].IsScalar() || !ParseBytes(h["max_memory"].Scalar(), m.max_memory_bytes)) {
      Reader::Fail(h["max_memory"], "health.max_memory: expected a size like 256MiB");
    }
  }
  if (h["probes"]) m.probes = Reader::Int(h["probes"], "health.probes", 1, 100);
}

void ReadDeploy(const YAML::Node& d, Manifest& m) {
  Reader::Keys(d, "deploy", {"watch_window", "drain_timeout", "timeout"});
  if (d["watch_window"])
    m.watch_window = Reader::Duration(d["watch_window"], "deploy.watch_window");
  if (d["drain_timeout"])
    m.drain_timeout = Reader::Duration(d["drain_timeout"], "deploy.drain_timeout");
  if (d["timeout"]) m.deploy_timeout = Reader::Duration(d["timeout"], "deploy.timeout");
}

void ReadEnv(const YAML::Node& env, Manifest& m) {
  if (!env.IsMap()) Reader::Fail(env, "env: expected a mapping of NAME: value");
  for (const auto& kv : env) {
    const std::string key = kv.first.Scalar();
    bool valid = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0]));
    for (char c : key) valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!valid) Reader::Fail(kv.first, "env: '" + key + "' is not a valid variable name");
    if (key == "PORT") Reader::Fail(kv.first, "env: PORT is assigned by slipway");
    m.env[key] = Reader::Scalar(kv.second, "env." + key);
  }
}

Manifest Read(const YAML::Node& root) {
  Manifest m;
  Reader::Keys(root, "", {"app", "build", "test", "run", "health", "release", "deploy", "env"});
  if (root["app"]) m.app = Reader::Scalar(root["app"], "app");
  if (root["build"]) m.build = Reader::Steps(root["build"], "build");
  if (root["test"]) m.test = Reader::Steps(root["test"], "test");
  if (!root["run"]) Reader::Fail(root, "run: required (how to start the app)");
  ReadRun(root["run"], m);
  if (root["health"]) ReadHealth(root["health"], m);
  if (root["release"]) {
    Reader::Keys(root["release"], "release", {"keep"});
    if (root["release"]["keep"])
      m.keep = Reader::Int(root["release"]["keep"], "release.keep", 1, 100);
  }
  if (root["deploy"]) ReadDeploy(root["deploy"], m);
  if (root["env"]) ReadEnv(root["env"], m);
  return m;
}

std::string Where(const std::string& file, const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; editors count from 1.
  if (mark.line < 0) return file + ":1:1";
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

Result<Manifest> ParseManifest(const std::string& text, const std::string& file) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return Invalid(file + ":1:1: manifest is empty");
    return Read(root);
  } catch (const ManifestError& e) {
    return Invalid(Where(file, e.mark) + ": " + e.message);
  } catch (const YAML::Exception& e) {
    return Invalid(Where(file, e.mark) + ": " + e.msg);
  }
}

Result<Manifest> LoadManifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": no such file");
  std::stringstream ss;
  ss << in.rdbuf();
  auto slash = path.find_last_of('/');
  return ParseManifest(ss.str(), slash == std::string::npos ? path : path.substr(slash + 1));
}

bool ParseDuration(const std::string& text, std::chrono::milliseconds& out) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0) return false;
  double value = 0;
  try {
    value = std::stod(text.substr(0, i));
  } catch (...) {
    return false;
  }
  std::string unit = text.substr(i);
  double ms;
  if (unit.empty() || unit == "s")
    ms = value * 1000;
  else if (unit == "ms")
    ms = value;
  else if (unit == "m")
    ms = value * 60'000;
  else if (unit == "h")
    ms = value * 3'600'000;
  else
    return false;
  out = std::chrono::milliseconds(static_cast<long long>(ms));
  return true;
}

bool ParseBytes(const std::string& text, long long& out) {
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 15) return false;
  long long v = std::stoll(text.substr(0, i));
  std::string unit = text.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, long long> kUnits[] = {
      {"", 1},          {"b", 1},           {"k", 1024},       {"kb", 1000},
      {"kib", 1024},    {"m", 1 << 20},     {"mb", 1000000},   {"mib", 1 << 20},
      {"g", 1LL << 30}, {"gb", 1000000000}, {"gib", 1LL << 30}};
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) {
      out = v * mult;
      return true;
    }
  }
  return false;
}

std::string Manifest::ToJson() const {
  nlohmann::json j = {{"app", app},
                      {"build", build},
                      {"test", test},
                      {"runtime", runtime},
                      {"command", command},
                      {"health_path", health_path},
                      {"health_timeout_ms", health_timeout.count()},
                      {"max_latency_ms", max_latency.count()},
                      {"max_memory_bytes", max_memory_bytes},
                      {"probes", probes},
                      {"keep", keep},
                      {"watch_window_ms", watch_window.count()},
                      {"drain_timeout_ms", drain_timeout.count()},
                      {"deploy_timeout_ms", deploy_timeout.count()},
                      {"env", env},
                      {"dockerfile", dockerfile},
                      {"image_tar", image_tar},
                      {"image", image},
                      {"container_port", container_port},
                      {"host_ip", host_ip},
                      {"memory_bytes", memory_bytes},
                      {"cpus", cpus},
                      {"volumes", volumes},
                      {"restart", restart},
                      {"replicas", replicas},
                      {"constraints", constraints},
                      {"healthcheck", healthcheck},
                      {"update_parallelism", update_parallelism},
                      {"update_delay_ms", update_delay.count()},
                      {"update_monitor_ms", update_monitor.count()},
                      {"update_order", update_order}};
  return j.dump();
}

Result<Manifest> Manifest::FromJson(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Invalid("stored manifest is not valid JSON");
  try {
    Manifest m;
    m.app = j.value("app", "");
    m.build = j.value("build", std::vector<std::string>{});
    m.test = j.value("test", std::vector<std::string>{});
    m.runtime = j.value("runtime", "process");
    m.command = j.value("command", "");
    m.health_path = j.value("health_path", "/health");
    m.health_timeout = std::chrono::milliseconds(j.value("health_timeout_ms", 30000LL));
    m.max_latency = std::chrono::milliseconds(j.value("max_latency_ms", 100LL));
    m.max_memory_bytes = j.value("max_memory_bytes", 0LL);
    m.probes = j.value("probes", 3);
    m.keep = j.value("keep", 3);
    m.watch_window = std::chrono::milliseconds(j.value("watch_window_ms", 10000LL));
    m.drain_timeout = std::chrono::milliseconds(j.value("drain_timeout_ms", 30000LL));
    m.deploy_timeout = std::chrono::milliseconds(j.value("deploy_timeout_ms", 1800000LL));
    m.env = j.value("env", std::map<std::string, std::string>{});
    m.dockerfile = j.value("dockerfile", "");
    m.image_tar = j.value("image_tar", "");
    m.image = j.value("image", "");
    m.container_port = j.value("container_port", 8080);
    m.host_ip = j.value("host_ip", "127.0.0.1");
    m.memory_bytes = j.value("memory_bytes", 0LL);
    m.cpus = j.value("cpus", 0.0);
    m.volumes = j.value("volumes", std::vector<std::string>{});
    m.restart = j.value("restart", "unless-stopped");
    m.replicas = j.value("replicas", 2);
    m.constraints = j.value("constraints", std::vector<std::string>{});
    m.healthcheck = j.value("healthcheck", std::vector<std::string>{});
    m.update_parallelism = j.value("update_parallelism", 1);
    m.update_delay = std::chrono::milliseconds(j.value("update_delay_ms", 0LL));
    m.update_monitor = std::chrono::milliseconds(j.value("update_monitor_ms", 2000LL));
    m.update_order = j.value("update_order", "start-first");
    return m;
  } catch (const nlohmann::json::exception& e) {
    return Invalid(std::string("stored manifest: ") + e.what());
  }
}

}  // namespace slipway
