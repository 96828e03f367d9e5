// Strict reading of the sandbox and template request bodies (api/sandbox_body.h).
#include "api/sandbox_body.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <set>

#include "api/api_internal.h"
#include "control/validation.h"
#include "git/git.h"

namespace slipway::api {
namespace {

using json = nlohmann::json;

// Names of other things (environments) are checked by their owners; this only bounds them.
constexpr std::size_t kMaxNameBytes = 128;

// kInvalid naming the first key of `obj` that is not in `allowed`.
Status OnlyKeys(const json& obj, const std::set<std::string>& allowed, const std::string& where) {
  for (const auto& [key, value] : obj.items()) {
    if (!allowed.count(key))
      return Invalid(fmt::format("unknown field '{}{}'", where, key.substr(0, 64)));
  }
  return Status::Ok();
}

// An optional string field: absent or null = "".
Result<std::string> Text(const json& obj, const char* key, const std::string& label) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Invalid(fmt::format("'{}' must be a string", label));
  auto s = it->get<std::string>();
  if (s.size() > kMaxNameBytes)
    return Invalid(fmt::format("'{}' is longer than {} bytes", label, kMaxNameBytes));
  return s;
}

// An optional memory limit: a byte count (integer) or a size string; absent = 0.
Result<long long> Memory(const json& obj, const std::string& label) {
  auto it = obj.find("memory");
  if (it == obj.end() || it->is_null()) return 0LL;
  if (it->is_string()) {
    auto bytes = ParseMemorySize(it->get<std::string>());
    if (!bytes.ok()) return Invalid(fmt::format("'{}': {}", label, bytes.status().message()));
    return *bytes;
  }
  if (!it->is_number_integer())
    return Invalid(fmt::format("'{}' must be a size (\"256MiB\") or a number of bytes", label));
  bool huge = it->is_number_unsigned() && it->get<std::uint64_t>() > std::uint64_t(kMaxMemoryBytes);
  long long n = huge ? kMaxMemoryBytes + 1 : it->get<std::int64_t>();
  if (n < kMinMemoryBytes || n > kMaxMemoryBytes)
    return Invalid(fmt::format("'{}' must be between 4MiB and 1TiB", label));
  return n;
}

// An optional CPU limit: a number in [kMinCpus, kMaxCpus]; absent = 0.
Result<double> Cpus(const json& obj, const std::string& label) {
  auto it = obj.find("cpus");
  if (it == obj.end() || it->is_null()) return 0.0;
  if (!it->is_number()) return Invalid(fmt::format("'{}' must be a number", label));
  double cpus = it->get<double>();
  if (!std::isfinite(cpus) || cpus < kMinCpus || cpus > kMaxCpus)
    return Invalid(fmt::format("'{}' must be between 0.01 and 64", label));
  return cpus;
}

// {name, branch? | upstream: true, memory?, cpus?}
Result<SandboxService> Service(const json& s, std::size_t index) {
  std::string at = fmt::format("services[{}]", index);
  if (!s.is_object()) return Invalid(fmt::format("'{}' must be an object", at));
  if (auto ok = OnlyKeys(s, {"name", "branch", "upstream", "memory", "cpus"}, at + "."); !ok.ok())
    return ok;
  SandboxService out;
  auto name = Text(s, "name", at + ".name");
  auto branch = Text(s, "branch", at + ".branch");
  if (!name.ok()) return name.status();
  if (!branch.ok()) return branch.status();
  if (name->empty()) return Invalid(fmt::format("'{}.name' is required", at));
  if (auto v = ValidateAppName(*name); !v.ok())
    return Invalid(fmt::format("'{}.name': {}", at, v.message()));
  auto up = s.find("upstream");
  if (up != s.end() && !up->is_null() && !up->is_boolean())
    return Invalid(fmt::format("'{}.upstream' must be true or false", at));
  bool upstream = up != s.end() && up->is_boolean() && up->get<bool>();
  if (upstream == !branch->empty())
    return Invalid(fmt::format("'{}' needs either a branch or upstream: true", at));
  if (!upstream) {
    if (auto v = git::ValidateRef(*branch); !v.ok())
      return Invalid(fmt::format("'{}.branch': {}", at, v.message()));
  }
  auto memory = Memory(s, at + ".memory");
  if (!memory.ok()) return memory.status();
  auto cpus = Cpus(s, at + ".cpus");
  if (!cpus.ok()) return cpus.status();
  out.name = *name;
  out.branch = *branch;
  out.route = upstream ? "upstream" : "sandbox";
  out.memory_bytes = *memory;
  out.cpus = *cpus;
  return out;
}

// services: an array of at most kMaxSandboxServices distinct services; absent = none.
Result<std::vector<SandboxService>> Services(const json& body) {
  std::vector<SandboxService> out;
  auto it = body.find("services");
  if (it == body.end() || it->is_null()) return out;
  if (!it->is_array()) return Invalid("'services' must be a list");
  if (it->size() > kMaxSandboxServices)
    return Invalid(fmt::format("'services' holds at most {} services", kMaxSandboxServices));
  std::set<std::string> seen;
  for (std::size_t i = 0; i < it->size(); ++i) {
    auto s = Service((*it)[i], i);
    if (!s.ok()) return s.status();
    if (!seen.insert(s->name).second)
      return Invalid(fmt::format("service '{}' is named twice", s->name));
    out.push_back(*s);
  }
  return out;
}

// The fields a sandbox and a template share: services, environment, entry, limits.
Status Common(const json& body, SandboxSpec& spec) {
  auto services = Services(body);
  if (!services.ok()) return services.status();
  auto environment = Text(body, "environment", "environment");
  if (!environment.ok()) return environment.status();
  auto entry = Text(body, "entry", "entry");
  if (!entry.ok()) return entry.status();
  auto memory = Memory(body, "memory");
  if (!memory.ok()) return memory.status();
  auto cpus = Cpus(body, "cpus");
  if (!cpus.ok()) return cpus.status();
  spec.services = std::move(*services);
  spec.environment = *environment;
  spec.entry = *entry;
  spec.memory_bytes = *memory;
  spec.cpus = *cpus;
  return Status::Ok();
}

// An entry, when given with explicit services and no template, must be one of them.
Status CheckEntry(const SandboxSpec& spec) {
  if (spec.entry.empty() || !spec.template_name.empty()) return Status::Ok();
  for (const auto& s : spec.services)
    if (s.name == spec.entry) return Status::Ok();
  return Invalid(fmt::format("'entry' names '{}', which is not one of the services", spec.entry));
}

// Stored bodies are read leniently: a field of another type reads as its default.
std::string StoredText(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
double StoredNumber(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

json ServiceView(const json& s) {
  json out = {{"name", StoredText(s, "name")}};
  std::string branch = StoredText(s, "branch");
  if (branch.empty())
    out["upstream"] = true;
  else
    out["branch"] = branch;
  if (StoredNumber(s, "memory_bytes") > 0)
    out["memory_bytes"] = static_cast<long long>(StoredNumber(s, "memory_bytes"));
  if (StoredNumber(s, "cpus") > 0) out["cpus"] = StoredNumber(s, "cpus");
  return out;
}

}  // namespace

Result<long long> ParseMemorySize(const std::string& text) {
  static const std::vector<std::pair<std::string, int>> kUnits = {
      {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"K", 10},
      {"M", 20},   {"G", 30},   {"T", 40},   {"B", 0}};
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::string unit = text.substr(digits);
  int shift = -1;
  if (unit.empty()) shift = 0;
  for (const auto& [name, bits] : kUnits)
    if (unit == name) shift = bits;
  if (digits == 0 || digits > 13 || shift < 0)
    return Invalid("not a size: write a number of bytes or e.g. 256MiB, 1GiB");
  long long n = std::stoll(text.substr(0, digits));
  if (n > (kMaxMemoryBytes >> shift) || (n << shift) < kMinMemoryBytes)
    return Invalid("a memory limit must be between 4MiB and 1TiB");
  return n << shift;
}

Status CheckSandboxName(const std::string& name, const char* what) {
  bool ok = !name.empty() && name.size() <= 32 && name[0] >= 'a' && name[0] <= 'z' &&
            name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
  if (ok) return Status::Ok();
  return Invalid(fmt::format("{} names are 1..32 of a-z 0-9 -, starting with a letter", what));
}

Result<SandboxSpec> ParseSandboxSpec(const json& body) {
  if (!body.is_object()) return Invalid("request body must be a JSON object");
  if (auto ok = OnlyKeys(body,
                         {"name", "template", "environment", "entry", "services", "memory", "cpus",
                          "expire_after"},
                         "");
      !ok.ok())
    return ok;
  SandboxSpec spec;
  auto name = Text(body, "name", "name");
  auto tmpl = Text(body, "template", "template");
  auto expire = Text(body, "expire_after", "expire_after");
  for (auto* f : {&name, &tmpl, &expire})
    if (!f->ok()) return f->status();
  if (name->empty()) return Invalid("'name' is required");
  if (auto v = CheckSandboxName(*name, "sandbox"); !v.ok()) return v;
  if (!tmpl->empty())
    if (auto v = CheckSandboxName(*tmpl, "template"); !v.ok()) return v;
  if (auto common = Common(body, spec); !common.ok()) return common;
  spec.name = *name;
  spec.template_name = *tmpl;
  if (spec.services.empty() && spec.template_name.empty())
    return Invalid("'services' is required (or a 'template' that names them)");
  if (!expire->empty()) {
    std::chrono::milliseconds ttl{0};
    if (!ParseTtl(*expire, ttl))
      return Invalid("'expire_after' must be a duration such as 14d, 12h or 90m");
    spec.expire_after_ms = ttl.count();
  }
  if (auto entry = CheckEntry(spec); !entry.ok()) return entry;
  return spec;
}

Result<json> ParseTemplateBody(const json& body) {
  if (!body.is_object()) return Invalid("request body must be a JSON object");
  if (auto ok = OnlyKeys(body, {"services", "environment", "entry", "memory", "cpus"}, "");
      !ok.ok())
    return ok;
  SandboxSpec spec;
  if (auto common = Common(body, spec); !common.ok()) return common;
  if (spec.services.empty()) return Invalid("'services' is required");
  if (auto entry = CheckEntry(spec); !entry.ok()) return entry;
  json services = json::array();
  for (const auto& s : spec.services)
    services.push_back({{"name", s.name},
                        {"branch", s.branch},
                        {"memory_bytes", s.memory_bytes},
                        {"cpus", s.cpus}});
  return json{{"services", services},
              {"environment", spec.environment},
              {"entry", spec.entry},
              {"memory_bytes", spec.memory_bytes},
              {"cpus", spec.cpus}};
}

json TemplateView(const SandboxTemplate& t) {
  json body = json::parse(t.body_json, nullptr, false);
  if (!body.is_object()) body = json::object();
  json services = json::array();
  auto list = body.find("services");
  if (list != body.end() && list->is_array())
    for (const auto& s : *list)
      if (s.is_object()) services.push_back(ServiceView(s));
  return {{"name", t.name},
          {"services", services},
          {"environment", StoredText(body, "environment")},
          {"entry", StoredText(body, "entry")},
          {"memory_bytes", static_cast<long long>(StoredNumber(body, "memory_bytes"))},
          {"cpus", StoredNumber(body, "cpus")},
          {"created_by", t.created_by},
          {"created_ms", t.created_ms},
          {"updated_ms", t.updated_ms}};
}

json SnapshotView(const SandboxSnapshot& s) {
  return {{"id", s.id},
          {"sandbox", s.sandbox},
          {"created_by", s.created_by},
          {"created_ms", s.created_ms}};
}

}  // namespace slipway::api
