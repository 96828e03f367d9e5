#include "control/environments.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace slipway {

using json = nlohmann::json;
using Limits = EnvironmentLimits;

namespace {

// A name or path as an error message may quote it: at most 64 bytes, control characters
// replaced. Names and paths are not secret; values are never passed here.
std::string Shown(const std::string& s) {
  std::string out = s.substr(0, 64);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s.size() > 64 ? out + "…" : out;
}

bool IsLower(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool IsWord(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

Status ValidateValue(const std::string& kind, const std::string& key, const std::string& value) {
  if (value.size() > Limits::kMaxValueBytes)
    return Invalid(fmt::format("the value of {} '{}' is larger than 64 KiB", kind, Shown(key)));
  if (value.find('\0') != std::string::npos)
    return Invalid(fmt::format("the value of {} '{}' contains a NUL byte", kind, Shown(key)));
  return Status::Ok();
}

Status ValidateEntries(const std::string& kind, const std::map<std::string, std::string>& m) {
  if (m.size() > Limits::kMaxEntries)
    return Invalid(fmt::format("at most {} {}s per environment", Limits::kMaxEntries, kind));
  for (const auto& [k, v] : m) {
    if (auto s = ValidateVariableName(k); !s.ok()) return s;
    if (auto s = ValidateValue(kind, k, v); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ValidateFiles(const std::map<std::string, std::string>& files) {
  if (files.size() > Limits::kMaxFiles)
    return Invalid(fmt::format("at most {} files per environment", Limits::kMaxFiles));
  std::size_t total = 0;
  for (const auto& [path, content] : files) {
    if (auto s = ValidateFilePath(path); !s.ok()) return s;
    if (content.size() > Limits::kMaxFileBytes)
      return Invalid(fmt::format("file '{}' is larger than 1 MiB", Shown(path)));
    total += content.size();
    // A file cannot also be a directory of another ("a" and "a/b").
    auto next = files.upper_bound(path);
    if (next != files.end() && next->first.rfind(path + "/", 0) == 0)
      return Invalid(fmt::format("file '{}' cannot also be the directory of '{}'", Shown(path),
                                 Shown(next->first)));
  }
  if (total > Limits::kMaxTotalFileBytes)
    return Invalid("an environment's files must total at most 4 MiB");
  return Status::Ok();
}

// What a change sets, by kind, for the audit trail: names and paths, never values.
json KeysOf(const EnvironmentChange& c) {
  json j = json::object();
  auto names = [](const std::map<std::string, std::string>& m) {
    json a = json::array();
    for (const auto& [k, v] : m) a.push_back(k);
    return a;
  };
  if (!c.vars.empty()) j["vars"] = names(c.vars);
  if (!c.secrets.empty()) j["secrets"] = names(c.secrets);
  if (!c.files.empty()) j["files"] = names(c.files);
  return j;
}

// Applies `c` to `e`: unsets first (each must exist), then sets; a name moves between
// variables and secrets when set as the other kind.
Status Apply(const EnvironmentChange& c, Environment& e) {
  for (const auto& k : c.unset) {
    if (c.vars.count(k) || c.secrets.count(k) || c.files.count(k))
      return Invalid(fmt::format("'{}' is both set and unset", Shown(k)));
    if (e.vars.erase(k) + e.secrets.erase(k) + e.files.erase(k) == 0)
      return NotFound(
          fmt::format("environment '{}' has no variable, secret or file '{}'", e.name, Shown(k)));
  }
  for (const auto& [k, v] : c.vars) {
    if (c.secrets.count(k))
      return Invalid(fmt::format("'{}' is given both as a variable and as a secret", Shown(k)));
    e.secrets.erase(k);
    e.vars[k] = v;
  }
  for (const auto& [k, v] : c.secrets) {
    e.vars.erase(k);
    e.secrets[k] = v;
  }
  for (const auto& [p, content] : c.files) e.files[p] = content;
  return ValidateEnvironment(e);
}

Status NotFoundEnv(const std::string& name) {
  return NotFound(fmt::format("environment '{}' does not exist", Shown(name)));
}

}  // namespace

Status ValidateEnvironmentName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && IsLower(name[0]) &&
            std::all_of(name.begin(), name.end(),
                        [](char c) { return IsLower(c) || c == '_' || c == '.' || c == '-'; });
  if (ok) return Status::Ok();
  return Invalid(
      "environment name must be 1 to 64 of a-z 0-9 _ . -, starting with a letter or digit");
}

Status ValidateVariableName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && !(name[0] >= '0' && name[0] <= '9') &&
            std::all_of(name.begin(), name.end(), IsWord);
  if (!ok)
    return Invalid(fmt::format(
        "'{}' is not a valid variable name (letters, digits and '_', not starting with a digit, "
        "at most 128)",
        Shown(name)));
  if (name == "PORT" || name == "HOST" || name.rfind("SLIPWAY_", 0) == 0)
    return Invalid(fmt::format(
        "'{}' is set by Slipway itself (PORT, HOST and SLIPWAY_* cannot be set by an environment)",
        Shown(name)));
  return Status::Ok();
}

Status ValidateFilePath(const std::string& path) {
  if (path.empty() || path.size() > Limits::kMaxPathBytes)
    return Invalid("a file path must be 1 to 255 bytes");
  if (path.front() == '/')
    return Invalid(fmt::format("file path '{}' must be relative (no leading '/')", Shown(path)));
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7f || c == '\\')
      return Invalid(
          fmt::format("file path '{}' must not contain control characters or '\\'", Shown(path)));
  for (std::size_t start = 0; start <= path.size();) {
    auto slash = std::min(path.find('/', start), path.size());
    std::string segment = path.substr(start, slash - start);
    if (segment == "..")
      return Invalid(fmt::format("file path '{}' must not contain a '..' segment", Shown(path)));
    if (segment.empty() || segment == ".")
      return Invalid(
          fmt::format("file path '{}' must not contain an empty or '.' segment", Shown(path)));
    start = slash + 1;
  }
  return Status::Ok();
}

Status ValidateEnvironment(const Environment& e) {
  if (auto s = ValidateEnvironmentName(e.name); !s.ok()) return s;
  if (auto s = ValidateEntries("variable", e.vars); !s.ok()) return s;
  if (auto s = ValidateEntries("secret", e.secrets); !s.ok()) return s;
  for (const auto& [k, v] : e.vars)
    if (e.secrets.count(k))
      return Invalid(fmt::format("'{}' is both a variable and a secret", Shown(k)));
  return ValidateFiles(e.files);
}

Environments::Environments(Store& store) : store_(store) {}

Result<Environment> Environments::Create(const std::string& name, const EnvironmentChange& change,
                                         const Actor& actor) {
  if (auto s = ValidateEnvironmentName(name); !s.ok()) return s;
  if (!change.unset.empty()) return Invalid("a new environment has nothing to unset");
  Environment e;
  e.name = name;
  if (auto s = Apply(change, e); !s.ok()) return s;
  std::lock_guard lock(mu_);
  auto created = store_.CreateEnvironment(e);
  if (!created.ok()) {
    if (created.status().code() == Code::kConflict)
      return Conflict(fmt::format("environment '{}' already exists", name));
    return created.status();
  }
  Audit(actor, "env.create", name, KeysOf(change));
  return created;
}

Result<Environment> Environments::Change(const std::string& name, const EnvironmentChange& change,
                                         const Actor& actor) {
  if (change.empty())
    return Invalid("nothing to change: give variables, secrets, files or names to unset");
  std::lock_guard lock(mu_);
  auto e = Get(name);
  if (!e.ok()) return e.status();
  if (auto s = Apply(change, *e); !s.ok()) return s;
  e->updated_ms = 0;  // the store's now
  if (auto s = store_.UpdateEnvironment(*e); !s.ok())
    return s.code() == Code::kNotFound ? NotFoundEnv(name) : s;
  if (json keys = KeysOf(change); !keys.empty()) Audit(actor, "env.set", name, keys);
  if (!change.unset.empty()) Audit(actor, "env.unset", name, {{"unset", change.unset}});
  return Get(name);
}

Status Environments::Delete(const std::string& name, const Actor& actor) {
  std::lock_guard lock(mu_);
  if (auto e = Get(name); !e.ok()) return e.status();
  auto holder = ReferenceTo(name);
  if (!holder.ok()) return holder.status();
  if (!holder->empty())
    return Conflict(
        fmt::format("environment '{}' is used by {}; point it at another environment "
                    "or none first",
                    name, *holder));
  if (auto s = store_.DeleteEnvironment(name); !s.ok())
    return s.code() == Code::kNotFound ? NotFoundEnv(name) : s;
  Audit(actor, "env.delete", name, json::object());
  return Status::Ok();
}

Result<Environment> Environments::Get(const std::string& name) {
  if (!ValidateEnvironmentName(name).ok()) return NotFoundEnv(name);
  auto e = store_.GetEnvironment(name);
  if (!e.ok() && e.status().code() == Code::kNotFound) return NotFoundEnv(name);
  return e;
}

Result<std::vector<Environment>> Environments::List() {
  return store_.ListEnvironments();
}

json Environments::View(const Environment& e) {
  json secrets = json::array(), files = json::array();
  for (const auto& [k, v] : e.secrets) secrets.push_back(k);
  for (const auto& [p, content] : e.files) files.push_back(p);
  return {{"name", e.name},
          {"vars", e.vars.empty() ? json::object() : json(e.vars)},
          {"secrets", secrets},
          {"files", files},
          {"created_ms", e.created_ms},
          {"updated_ms", e.updated_ms}};
}

Result<Injection> Environments::InjectionOf(const std::string& name) {
  auto e = Get(name);
  if (!e.ok()) return e.status();
  Injection in;
  in.env = e->vars;
  in.files = e->files;
  for (const auto& [k, v] : e->secrets) {
    in.env[k] = v;
    if (!v.empty()) in.secrets.push_back(v);
  }
  // Longest first, so that a secret containing another is redacted whole.
  std::sort(in.secrets.begin(), in.secrets.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  in.secrets.erase(std::unique(in.secrets.begin(), in.secrets.end()), in.secrets.end());
  return in;
}

Result<std::string> Environments::ReferenceTo(const std::string& name) {
  auto apps = store_.ListApps();
  if (!apps.ok()) return apps.status();
  for (const auto& a : *apps)
    if (a.environment == name) return fmt::format("app '{}'", a.name);
  auto sandboxes = store_.ListSandboxes();
  if (!sandboxes.ok()) return sandboxes.status();
  for (const auto& s : *sandboxes)
    if (s.environment == name) return fmt::format("sandbox '{}'", s.name);
  return std::string();
}

void Environments::Audit(const Actor& actor, const std::string& action, const std::string& name,
                         const json& detail) {
  AuditEvent a;
  a.actor = actor.name;
  a.source = actor.source;
  a.action = action;
  a.target = "env/" + name;
  a.detail_json = detail.dump();
  if (auto s = store_.AppendAudit(a); !s.ok())
    spdlog::error("cannot write the audit trail: {}", s.ToString());
}

Result<Injection> EnvironmentInjection::For(const App& app) {
  if (app.environment.empty()) return Injection{};
  return environments_.InjectionOf(app.environment);
}

}  // namespace slipway
