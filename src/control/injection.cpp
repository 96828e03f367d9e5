#include "control/injection.h"

#include <fmt/format.h>

#include <algorithm>

namespace slipway {

namespace {

// A secret shorter than this is not redacted: "***" in place of every "a" or "on" would
// mangle the output and hide nothing worth hiding.
constexpr std::size_t kMinSecretBytes = 4;

Status ValidateFilePath(const std::string& path) {
  auto bad = [&path](const char* why) {
    return Invalid(fmt::format("injected file '{}': {}", path, why));
  };
  if (path.empty()) return Invalid("an injected file has an empty path");
  if (path.size() > 1024) return bad("path longer than 1024 bytes");
  if (path.front() == '/') return bad("absolute paths are not allowed");
  if (path.find('\0') != std::string::npos) return bad("path contains a NUL byte");
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = std::min(path.find('/', start), path.size());
    std::string_view part(path.data() + start, end - start);
    if (part == "..") return bad("'..' is not allowed");
    if (part.empty() || part == ".") return bad("empty or '.' path component");
    start = end + 1;
  }
  return Status::Ok();
}

std::string WhoseInjection(const App& app) {
  if (!app.environment.empty()) return "environment '" + app.environment + "'";
  if (!app.sandbox.empty()) return "sandbox '" + app.sandbox + "'";
  return "environment";
}

}  // namespace

std::string Redact(std::string text, const std::vector<std::string>& secrets) {
  std::vector<const std::string*> order;
  for (const auto& s : secrets)
    if (s.size() >= kMinSecretBytes) order.push_back(&s);
  // Longest first: a secret that contains another is replaced whole, not around it.
  std::stable_sort(order.begin(), order.end(), [](const std::string* a, const std::string* b) {
    return a->size() > b->size();
  });
  for (const std::string* secret : order) {
    for (auto pos = text.find(*secret); pos != std::string::npos; pos = text.find(*secret, pos + 3))
      text.replace(pos, secret->size(), "***");
  }
  return text;
}

bool ReservedEnvName(const std::string& name) {
  return name == "PORT" || name == "HOST" || name.rfind("SLIPWAY_", 0) == 0;
}

void InjectEnv(const Injection& injection, std::map<std::string, std::string>& env) {
  for (const auto& [name, value] : injection.env)
    if (!ReservedEnvName(name)) env[name] = value;
}

Status ValidateInjection(const Injection& injection) {
  if (injection.files.size() > kMaxInjectedFiles)
    return Invalid(
        fmt::format("{} injected files: at most {}", injection.files.size(), kMaxInjectedFiles));
  for (const auto& [path, content] : injection.files) {
    if (auto s = ValidateFilePath(path); !s.ok()) return s;
  }
  if (!injection.network.empty() && !ValidNetworkName(injection.network))
    return Invalid("network name '" + injection.network + "' is not [a-z0-9][a-z0-9_.-]{0,62}");
  if (injection.aliases.size() > kMaxNetworkAliases)
    return Invalid(fmt::format("at most {} network aliases", kMaxNetworkAliases));
  for (const auto& a : injection.aliases) {
    if (!ValidNetworkName(a))
      return Invalid("network alias '" + a + "' is not [a-z0-9][a-z0-9_.-]{0,62}");
  }
  return Status::Ok();
}

Result<Injection> InjectionFor(const Context& ctx, const App& app) {
  if (!ctx.injection) return Injection{};
  auto injection = ctx.injection->For(app);
  if (!injection.ok())
    return Status(injection.status().code(),
                  fmt::format("cannot inject the {} into {}: {}", WhoseInjection(app), app.name,
                              injection.status().message()));
  if (auto s = ValidateInjection(*injection); !s.ok())
    return Status(s.code(), fmt::format("cannot inject the {} into {}: {}", WhoseInjection(app),
                                        app.name, s.message()));
  return injection;
}

Status WriteInjectedFiles(Agent& agent, const std::string& release_dir,
                          const Injection& injection) {
  for (const auto& [path, content] : injection.files) {
    if (auto s = agent.WriteFile(release_dir + "/" + path, content, kInjectedFileMode); !s.ok())
      return Status(s.code(), "injected file " + path + ": " + s.message());
  }
  return Status::Ok();
}

}  // namespace slipway
