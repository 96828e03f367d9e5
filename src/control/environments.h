#pragma once
// Environments: named sets of variables, secrets and files that the apps and sandboxes
// referencing them get at deploy (docs/ENVIRONMENTS.md).
//
// Secrets are write-only: nothing here ever renders a secret's value or a file's content
// (View shows names), audit entries name the keys changed and never a value, and error
// messages never quote one. Only InjectionOf hands the values out, to the deployer.
//
// Thread-safety: every method may be called from any thread. Create, Change and Delete hold
// one mutex across their read-modify-write, so two concurrent changes of one environment
// both land (neither overwrites the other's keys).
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/actor.h"
#include "control/context.h"
#include "core/model.h"
#include "core/status.h"
#include "store/store.h"

namespace slipway {

// Limits (docs/ENVIRONMENTS.md), checked after a change is applied.
struct EnvironmentLimits {
  static constexpr std::size_t kMaxValueBytes = 64 * 1024;  // a variable's or secret's value
  static constexpr std::size_t kMaxEntries = 256;           // variables; secrets
  static constexpr std::size_t kMaxFiles = 64;
  static constexpr std::size_t kMaxFileBytes = 1024 * 1024;  // one file's content
  static constexpr std::size_t kMaxTotalFileBytes = 4 * 1024 * 1024;
  static constexpr std::size_t kMaxPathBytes = 255;
};

// What one create or change asks for. Keys set replace what is there; a name set as a
// variable stops being a secret and the other way round. `unset` names variables, secrets
// or file paths to remove (each must exist).
struct EnvironmentChange {
  std::map<std::string, std::string> vars;
  std::map<std::string, std::string> secrets;
  std::map<std::string, std::string> files;  // relative path → content
  std::vector<std::string> unset;
  bool empty() const { return vars.empty() && secrets.empty() && files.empty() && unset.empty(); }
};

// The checks, one kInvalid message each (no value is ever quoted):
// [a-z0-9][a-z0-9_.-]{0,63}.
Status ValidateEnvironmentName(const std::string& name);
// [A-Za-z_][A-Za-z0-9_]{0,127}, and not PORT, HOST or SLIPWAY_* (the deployer's own).
Status ValidateVariableName(const std::string& name);
// Relative, no leading '/', no empty, '.' or '..' segment, no control character, ≤ 255 bytes.
Status ValidateFilePath(const std::string& path);
// Every name, value, path, size and count of `e` within the limits.
Status ValidateEnvironment(const Environment& e);

class Environments {
 public:
  // `store` must outlive the service.
  explicit Environments(Store& store);

  // Creates `name` with the change's keys (`unset` must be empty). kInvalid (names, values,
  // limits; nothing stored), kConflict (the name is taken). Audited env.create.
  Result<Environment> Create(const std::string& name, const EnvironmentChange& change,
                             const Actor& actor);
  // Applies `change` to `name`. kNotFound (no such environment, or an unset key it does not
  // hold), kInvalid (as Create; nothing changes). Audited env.set and/or env.unset.
  Result<Environment> Change(const std::string& name, const EnvironmentChange& change,
                             const Actor& actor);
  // kNotFound; kConflict naming the app or sandbox that still references it. Audited.
  Status Delete(const std::string& name, const Actor& actor);

  Result<Environment> Get(const std::string& name);
  Result<std::vector<Environment>> List();  // by name

  // {name, vars: {K: V}, secrets: [K…], files: [path…], created_ms, updated_ms}: secrets'
  // values and files' contents never appear.
  static nlohmann::json View(const Environment& e);

  // What an instance gets: env = variables and secrets, the files, and the secrets' values
  // (for redaction). kNotFound when the environment is gone.
  Result<Injection> InjectionOf(const std::string& name);

 private:
  // The app or sandbox that references `name`, as "app 'x'" / "sandbox 'y'"; "" when none.
  Result<std::string> ReferenceTo(const std::string& name);
  void Audit(const Actor& actor, const std::string& action, const std::string& name,
             const nlohmann::json& detail);

  Store& store_;
  std::mutex mu_;  // serialises Create, Change and Delete (read-modify-write of the store)
};

// The InjectionSource for shared apps alone: an app without an environment gets nothing,
// one with an environment gets Environments::InjectionOf. The sandbox service replaces it
// (delegating shared apps to Environments) once it is wired.
class EnvironmentInjection final : public InjectionSource {
 public:
  // `environments` must outlive the adapter.
  explicit EnvironmentInjection(Environments& environments) : environments_(environments) {}
  Result<Injection> For(const App& app) override;

 private:
  Environments& environments_;
};

}  // namespace slipway
