#include "manifest/manifest.h"

#include "core/utf8.h"
#include "manifest/manifest_sections.h"
#include "manifest/reader.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

namespace slipway {
using namespace manifest_detail;  // NOLINT: this file defines them
namespace {

using namespace std::chrono_literals;
namespace limits = manifest_limits;

constexpr long long kMaxDurationMs = 87'600LL * 3'600'000;  // 10 years of 365 days

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// out = a * b + c, false on overflow.
bool MulAdd(long long a, long long b, long long c, long long& out) {
  long long product = 0;
  if (__builtin_mul_overflow(a, b, &product)) return false;
  return !__builtin_add_overflow(product, c, &out);
}

// Splits "12.5ms" into "12", "5", "ms"; false unless it is digits[.digits]unit.
bool SplitDuration(std::string_view text, std::string_view& whole, std::string_view& fraction,
                   std::string_view& unit) {
  auto digits_end = [&](std::size_t i) {
    while (i < text.size() && IsDigit(text[i])) ++i;
    return i;
  };
  std::size_t w = digits_end(0);
  if (w == 0) return false;
  whole = text.substr(0, w);
  std::size_t f = w;
  if (w < text.size() && text[w] == '.') {
    f = digits_end(w + 1);
    if (f == w + 1) return false;
    fraction = text.substr(w + 1, f - w - 1);
  }
  unit = text.substr(f);
  return unit.empty() || unit == "ms" || unit == "s" || unit == "m" || unit == "h";
}

}  // namespace

namespace manifest_detail {

Parsed ParseDurationMs(std::string_view text, long long& ms) {
  std::string_view whole, fraction, unit;
  if (!SplitDuration(text, whole, fraction, unit)) return Parsed::kMalformed;
  const long long per_unit = unit == "ms"  ? 1
                             : unit == "m" ? 60'000
                             : unit == "h" ? 3'600'000
                                           : 1000;
  long long n = 0;
  for (char c : whole) {
    // Stopping at the cap keeps a 20-digit number from wrapping around.
    if (!MulAdd(n, 10, c - '0', n) || n > kMaxDurationMs) return Parsed::kTooLarge;
  }
  // Digits past the twelfth are worth less than 4ns of any unit, and ignoring them keeps
  // frac * per_unit within range.
  long long frac = 0, scale = 1;
  for (char c : fraction.substr(0, 12)) {
    frac = frac * 10 + (c - '0');
    scale *= 10;
  }
  long long total = 0;
  if (!MulAdd(n, per_unit, frac * per_unit / scale, total) || total > kMaxDurationMs)
    return Parsed::kTooLarge;
  ms = total;
  return Parsed::kOk;
}

}  // namespace manifest_detail

namespace {
bool BytesUnit(std::string_view unit, long long& multiplier) {
  std::string lower(unit);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  constexpr long long kKB = 1'000, kMB = kKB * kKB, kGB = kMB * kKB, kTB = kGB * kKB;
  static const std::pair<const char*, long long> kUnits[] = {
      {"", 1},     {"b", 1},      {"k", kKiB},   {"kib", kKiB}, {"kb", kKB},
      {"m", kMiB}, {"mib", kMiB}, {"mb", kMB},   {"g", kGiB},   {"gib", kGiB},
      {"gb", kGB}, {"t", kTiB},   {"tib", kTiB}, {"tb", kTB}};
  for (const auto& [name, value] : kUnits) {
    if (lower == name) {
      multiplier = value;
      return true;
    }
  }
  return false;
}

}  // namespace

namespace manifest_detail {

Parsed ParseBytesValue(std::string_view text, long long& out) {
  std::size_t i = 0;
  while (i < text.size() && IsDigit(text[i])) ++i;
  long long multiplier = 0;
  if (i == 0 || !BytesUnit(text.substr(i), multiplier)) return Parsed::kMalformed;
  long long n = 0;
  for (char c : text.substr(0, i)) {
    if (!MulAdd(n, 10, c - '0', n)) return Parsed::kTooLarge;
  }
  long long total = 0;
  if (!MulAdd(n, multiplier, 0, total)) return Parsed::kTooLarge;
  out = total;
  return Parsed::kOk;
}

// The largest whole unit, as a user would write it: 0s, 100ms, 1m, 24h.
std::string FormatDuration(std::chrono::milliseconds d) {
  const long long ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string FormatBytes(long long n) {
  static const std::pair<long long, const char*> kUnits[] = {
      {kTiB, "TiB"}, {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
  for (const auto& [mult, name] : kUnits) {
    if (n != 0 && n % mult == 0) return std::to_string(n / mult) + name;
  }
  return std::to_string(n) + " bytes";
}

// A user's value quoted in a message, cut short (on a character boundary) so that an error
// stays one readable line.
std::string Shown(const std::string& s) {
  constexpr std::size_t kMax = 64;
  if (s.size() <= kMax) return s;
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

}  // namespace manifest_detail

namespace {

// Bounds what reading the tree can cost before any field is read. yaml-cpp shares an
// aliased node instead of copying it, so a small file can describe a huge tree (or, with an
// alias inside its own anchor, a cyclic one): every use of an alias is counted, and the walk
// stops as soon as a limit is crossed, so it never visits more than kNodes nodes.
class ExpandedSize {
 public:
  void Visit(const YAML::Node& node, int depth) {
    if (depth > limits::kDepth) {
      Reader::Fail(node, "manifest nesting is deeper than " + std::to_string(limits::kDepth) +
                             " levels (YAML aliases count once per use)");
    }
    if (++nodes_ > limits::kNodes) {
      Reader::Fail(node, "manifest exceeds the size limit of " + std::to_string(limits::kNodes) +
                             " values (YAML aliases count once per use)");
    }
    if (node.IsScalar()) {
      AddText(node);
    } else if (node.IsSequence()) {
      for (const auto& item : node) Visit(item, depth + 1);
    } else if (node.IsMap()) {
      for (const auto& kv : node) {
        Visit(kv.first, depth + 1);
        Visit(kv.second, depth + 1);
      }
    }
  }

 private:
  void AddText(const YAML::Node& node) {
    bytes_ += node.Scalar().size();
    if (bytes_ > limits::kExpandedBytes) {
      Reader::Fail(node,
                   "manifest exceeds the size limit of 1 MiB of text once expanded "
                   "(YAML aliases count once per use)");
    }
    // yaml-cpp passes undecodable bytes through, and they would make every later JSON dump
    // of the manifest throw.
    if (!IsUtf8(node.Scalar())) Reader::Fail(node, "manifest text is not valid UTF-8");
  }

  std::size_t nodes_ = 0;
  std::size_t bytes_ = 0;
};

void ReadImageSource(const YAML::Node& run, Manifest& m) {
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
}

void ReadContainer(const YAML::Node& run, Manifest& m) {
  ReadImageSource(run, m);
  if (run["port"]) m.container_port = Reader::Int(run["port"], "run.port", 1, 65535);
  if (run["host_ip"]) m.host_ip = Reader::Scalar(run["host_ip"], "run.host_ip");
  if (run["memory"]) m.memory_bytes = Reader::Bytes(run["memory"], "run.memory", 6 * kMiB, kTiB);
  if (run["cpus"]) m.cpus = Reader::Cpus(run["cpus"]);
  if (run["volumes"]) {
    m.volumes = Reader::Steps(run["volumes"], "run.volumes", "entries", limits::kListEntries,
                              limits::kStringBytes);
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

void ReadUpdate(const YAML::Node& u, Manifest& m) {
  Reader::Keys(u, "run.update", {"parallelism", "delay", "monitor", "order"});
  if (u["parallelism"])
    m.update_parallelism = Reader::Int(u["parallelism"], "run.update.parallelism", 0, 1000);
  if (u["delay"]) m.update_delay = Reader::Duration(u["delay"], "run.update.delay", 0ms, 1h);
  if (u["monitor"])
    m.update_monitor = Reader::Duration(u["monitor"], "run.update.monitor", 0ms, 1h);
  if (u["order"]) {
    m.update_order = Reader::Scalar(u["order"], "run.update.order");
    if (m.update_order != "start-first" && m.update_order != "stop-first") {
      Reader::Fail(u["order"], "run.update.order: expected start-first or stop-first");
    }
  }
}

void ReadSwarm(const YAML::Node& run, Manifest& m) {
  for (const char* key : {"volumes", "restart", "host_ip"}) {
    if (run[key])
      Reader::Fail(run[key], std::string("run.") + key + ": does not apply to runtime: swarm");
  }
  if (run["replicas"]) m.replicas = Reader::Int(run["replicas"], "run.replicas", 1, 1000);
  if (run["constraints"]) {
    m.constraints = Reader::Steps(run["constraints"], "run.constraints", "entries",
                                  limits::kListEntries, limits::kStringBytes);
  }
  if (run["healthcheck"]) {
    m.healthcheck = Reader::Steps(run["healthcheck"], "run.healthcheck", "entries",
                                  limits::kListEntries, limits::kStringBytes);
  }
  if (const auto& u = run["update"]) ReadUpdate(u, m);
}

void ReadRuntime(const YAML::Node& run, Manifest& m) {
  if (run["runtime"]) {
    m.runtime = Reader::Scalar(run["runtime"], "run.runtime");
    if (m.runtime != "process" && m.runtime != "container" && m.runtime != "swarm") {
      Reader::Fail(run["runtime"], "run.runtime: '" + Shown(m.runtime) +
                                       "' is not supported (expected process, container or swarm)");
    }
  }
  if (m.runtime != "swarm") {
    for (const char* key : {"replicas", "constraints", "healthcheck", "update"}) {
      if (run[key])
        Reader::Fail(run[key], std::string("run.") + key + ": only applies to runtime: swarm");
    }
  }
}

void ReadRun(const YAML::Node& run, Manifest& m) {
  Reader::Keys(
      run, "run",
      {"runtime", "command", "dockerfile", "image_tar", "image", "port", "host_ip", "memory",
       "cpus", "volumes", "restart", "replicas", "constraints", "healthcheck", "update"});
  ReadRuntime(run, m);
  if (m.is_image_runtime()) {
    ReadContainer(run, m);
    if (m.runtime == "swarm") ReadSwarm(run, m);
    if (run["command"])
      m.command = Reader::Scalar(run["command"], "run.command", limits::kCommandBytes);
    return;
  }
  for (const char* key : {"dockerfile", "image_tar", "image", "port", "host_ip", "memory", "cpus",
                          "volumes", "restart"}) {
    if (run[key])
      Reader::Fail(run[key],
                   std::string("run.") + key + ": only applies to runtime: container or swarm");
  }
  if (!run["command"]) Reader::Fail(run, "run.command: required");
  m.command = Reader::Scalar(run["command"], "run.command", limits::kCommandBytes);
  if (m.command.empty()) Reader::Fail(run["command"], "run.command: must not be empty");
}

void ReadHealth(const YAML::Node& h, Manifest& m) {
  Reader::Keys(h, "health", {"path", "timeout", "max_latency", "max_memory", "probes"});
  if (h["path"]) {
    m.health_path = Reader::Scalar(h["path"], "health.path");
    bool clean = std::all_of(m.health_path.begin(), m.health_path.end(),
                             [](unsigned char c) { return c > 0x20 && c < 0x7f; });
    if (m.health_path.empty() || m.health_path[0] != '/' || !clean)
      Reader::Fail(h["path"],
                   "health.path: must start with / and hold no spaces or control characters");
  }
  if (h["timeout"]) m.health_timeout = Reader::Duration(h["timeout"], "health.timeout", 100ms, 1h);
  if (h["max_latency"])
    m.max_latency = Reader::Duration(h["max_latency"], "health.max_latency", 1ms, 1min);
  if (h["max_memory"])
    m.max_memory_bytes = Reader::Bytes(h["max_memory"], "health.max_memory", kMiB, kTiB);
  if (h["probes"]) m.probes = Reader::Int(h["probes"], "health.probes", 1, 100);
}

void ReadDeploy(const YAML::Node& d, Manifest& m) {
  Reader::Keys(d, "deploy", {"watch_window", "drain_timeout", "timeout", "strategy"});
  if (d["strategy"]) {
    m.strategy = Reader::Scalar(d["strategy"], "deploy.strategy");
    if (m.strategy != "parallel" && m.strategy != "one-by-one")
      Reader::Fail(d["strategy"], "deploy.strategy: expected parallel or one-by-one");
  }
  if (d["watch_window"])
    m.watch_window = Reader::Duration(d["watch_window"], "deploy.watch_window", 0ms, 1h);
  if (d["drain_timeout"])
    m.drain_timeout = Reader::Duration(d["drain_timeout"], "deploy.drain_timeout", 0ms, 1h);
  if (d["timeout"]) m.deploy_timeout = Reader::Duration(d["timeout"], "deploy.timeout", 1s, 24h);
}

}  // namespace

bool IsNodeLabel(std::string_view label) {
  if (label.empty() || label.size() > 64) return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return c > 0x20 && c < 0x7f && std::string_view("\"'\\,/").find(c) == std::string_view::npos;
  });
}

namespace {

// nodes: [label, ...]: the deployment runs on the nodes that carry every one of them.
void ReadNodes(const YAML::Node& nodes, Manifest& m) {
  if (!nodes.IsSequence() && !nodes.IsScalar())
    Reader::Fail(nodes, "nodes: expected a list of node labels, e.g. [beta]");
  auto check = [&m](const YAML::Node& item) {
    if (!item.IsScalar()) Reader::Fail(item, "nodes: each label must be a string");
    const std::string& l = item.Scalar();
    if (!IsNodeLabel(l))
      Reader::Fail(item,
                   "nodes: a label is 1..64 printable characters without spaces, quotes, "
                   "commas, slashes or backslashes");
    if (m.nodes.size() == 32) Reader::Fail(item, "nodes: at most 32 labels");
    m.nodes.push_back(l);
  };
  if (nodes.IsScalar()) return check(nodes);
  for (const auto& item : nodes) check(item);
}

void ReadEnv(const YAML::Node& env, Manifest& m) {
  if (!env.IsMap()) Reader::Fail(env, "env: expected a mapping of NAME: value");
  std::size_t count = 0;
  for (const auto& kv : env) {
    if (++count > limits::kEnvEntries) {
      Reader::Fail(kv.first, "env: too many variables (the limit is " +
                                 std::to_string(limits::kEnvEntries) + ")");
    }
    const std::string key = kv.first.Scalar();
    if (key.size() > limits::kStringBytes) {
      Reader::Fail(kv.first, "env: variable name too long (" + std::to_string(key.size()) +
                                 " bytes; the limit is " + std::to_string(limits::kStringBytes) +
                                 ")");
    }
    bool valid = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0]));
    for (char c : key) valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!valid) Reader::Fail(kv.first, "env: '" + Shown(key) + "' is not a valid variable name");
    if (key == "PORT") Reader::Fail(kv.first, "env: PORT is assigned by slipway");
    m.env[key] = Reader::Scalar(kv.second, "env." + key, limits::kEnvValueBytes);
  }
}

Manifest Read(const YAML::Node& root) {
  Manifest m;
  Reader::Keys(root, "",
               {"app", "nodes", "build", "test", "run", "health", "release", "deploy", "env",
                "rollout", "notify", "sandbox"});
  if (root["app"]) m.app = Reader::Scalar(root["app"], "app");
  if (root["nodes"]) ReadNodes(root["nodes"], m);
  if (root["build"])
    m.build = Reader::Steps(root["build"], "build", "steps", limits::kSteps, limits::kStepBytes);
  if (root["test"])
    m.test = Reader::Steps(root["test"], "test", "steps", limits::kSteps, limits::kStepBytes);
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
  if (root["rollout"]) ReadRollout(root["rollout"], m);
  if (root["notify"]) ReadNotify(root["notify"], m);
  if (root["sandbox"]) ReadSandbox(root["sandbox"], m);
  CheckRollout(root, m);
  return m;
}

std::string Where(const std::string& file, const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; editors count from 1.
  if (mark.line < 0) return file + ":1:1";
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

Result<Manifest> ParseManifest(const std::string& text, const std::string& file) {
  if (text.size() > limits::kFileBytes) {
    return Invalid(file + ":1:1: manifest is " + std::to_string(text.size()) +
                   " bytes; the limit is " + std::to_string(limits::kFileBytes) + " bytes");
  }
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return Invalid(file + ":1:1: manifest is empty");
    ExpandedSize().Visit(root, 1);
    return Read(root);
  } catch (const ManifestError& e) {
    return Invalid(Where(file, e.mark) + ": " + e.message);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own recursion guard (about 500 levels), which it reports as "bad file".
    return Invalid(Where(file, e.mark) + ": manifest nesting is deeper than " +
                   std::to_string(limits::kDepth) + " levels");
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
  long long ms = 0;
  if (ParseDurationMs(text, ms) != Parsed::kOk) return false;
  out = std::chrono::milliseconds(ms);
  return true;
}

bool ParseBytes(const std::string& text, long long& out) {
  return ParseBytesValue(text, out) == Parsed::kOk;
}

namespace {
nlohmann::json JsonOf(const Manifest& m) {
  return {{"app", m.app},
          {"build", m.build},
          {"test", m.test},
          {"runtime", m.runtime},
          {"command", m.command},
          {"health_path", m.health_path},
          {"health_timeout_ms", m.health_timeout.count()},
          {"max_latency_ms", m.max_latency.count()},
          {"max_memory_bytes", m.max_memory_bytes},
          {"probes", m.probes},
          {"keep", m.keep},
          {"watch_window_ms", m.watch_window.count()},
          {"drain_timeout_ms", m.drain_timeout.count()},
          {"deploy_timeout_ms", m.deploy_timeout.count()},
          {"env", m.env},
          {"dockerfile", m.dockerfile},
          {"image_tar", m.image_tar},
          {"image", m.image},
          {"container_port", m.container_port},
          {"host_ip", m.host_ip},
          {"memory_bytes", m.memory_bytes},
          {"cpus", m.cpus},
          {"volumes", m.volumes},
          {"restart", m.restart},
          {"replicas", m.replicas},
          {"constraints", m.constraints},
          {"healthcheck", m.healthcheck},
          {"update_parallelism", m.update_parallelism},
          {"update_delay_ms", m.update_delay.count()},
          {"update_monitor_ms", m.update_monitor.count()},
          {"update_order", m.update_order},
          {"nodes", m.nodes},
          {"strategy", m.strategy},
          {"rollout", RolloutToJson(m.rollout)},
          {"sandbox_config", SandboxConfigToJson(m.sandbox_config)}};
}
}  // namespace

std::string Manifest::SummaryJson() const {
  // The fields of ToJson() a deployment record needs: no steps, no env values.
  static const char* const kKeys[] = {
      "runtime",        "command",     "dockerfile",        "image_tar",        "image",
      "container_port", "health_path", "health_timeout_ms", "max_latency_ms",   "max_memory_bytes",
      "probes",         "keep",        "watch_window_ms",   "drain_timeout_ms", "deploy_timeout_ms",
      "replicas",       "rollout"};
  nlohmann::json full = JsonOf(*this), j = nlohmann::json::object();
  for (const char* key : kKeys) j[key] = full[key];
  std::vector<std::string> env_names;
  for (const auto& entry : env) env_names.push_back(entry.first);
  j["env_names"] = env_names;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Manifest::ToJson() const {
  nlohmann::json j = JsonOf(*this);
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
    m.nodes = j.value("nodes", std::vector<std::string>{});
    m.strategy = j.value("strategy", "parallel");
    if (j.contains("rollout")) m.rollout = RolloutFromJson(j["rollout"]);
    if (j.contains("sandbox_config")) m.sandbox_config = SandboxConfigFromJson(j["sandbox_config"]);
    return m;
  } catch (const nlohmann::json::exception& e) {
    return Invalid(std::string("stored manifest: ") + e.what());
  }
}

}  // namespace slipway
