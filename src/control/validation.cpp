#include "control/validation.h"

#include "core/utf8.h"
#include "gateway/target.h"

#include <algorithm>
#include <cctype>
#include <regex>

namespace slipway {
namespace {

bool ValidLabel(const std::string& label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
    return false;
  return std::all_of(label.begin(), label.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-'; });
}

bool ValidHostName(const std::string& host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  for (;;) {
    auto dot = host.find('.', start);
    if (!ValidLabel(host.substr(start, dot - start))) return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

bool IsControl(char32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

}  // namespace

Status ValidatePauseMax(std::chrono::milliseconds max) {
  if (max < std::chrono::seconds(1) || max > std::chrono::hours(1))
    return Invalid("max must be between 1s and 1h");
  return Status::Ok();
}

Status ValidateMaintenanceMessage(const std::string& message) {
  if (message.empty() || message.size() > 1024) return Invalid("message must be 1 to 1024 bytes");
  for (std::size_t i = 0; i < message.size();) {
    char32_t cp = 0;
    std::size_t len = DecodeUtf8(message, i, cp);
    if (len == 0) return Invalid("message must be valid UTF-8");
    if (IsControl(cp)) return Invalid("message must not contain control characters");
    i += len;
  }
  return Status::Ok();
}

Status ValidateAppName(const std::string& name) {
  static const std::regex kName("^[a-z][a-z0-9-]{0,62}$");
  if (std::regex_match(name, kName)) return Status::Ok();
  return Invalid(
      "app name must be lower-case letters, digits and '-', starting with a letter (max 63)");
}

Status ValidateHosts(std::vector<std::string>& hosts) {
  if (hosts.size() > 32) return Invalid("at most 32 hosts per app");
  for (auto& h : hosts) {
    std::transform(h.begin(), h.end(), h.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    bool wildcard = h.rfind("*.", 0) == 0;
    std::string name = wildcard ? h.substr(2) : h;
    // "*.com" would claim a whole top-level domain: a wildcard needs two labels under it.
    if (!ValidHostName(name) || (wildcard && name.find('.') == std::string::npos)) {
      std::string shown = h.size() > 80 ? h.substr(0, 80) + "…" : h;
      return Invalid("'" + shown +
                     "' is not a valid host name (letters, digits, inner '-', dot-separated "
                     "labels of at most 63; optionally '*.' first)");
    }
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  return Status::Ok();
}

Status ValidatePathPrefix(std::string& prefix) {
  if (prefix.empty()) return Status::Ok();
  static const std::regex kPrefix("^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+/?$");
  if (prefix.size() > 256 || !std::regex_match(prefix, kPrefix) ||
      prefix.find("/./") != std::string::npos || prefix.find("/../") != std::string::npos ||
      prefix.ends_with("/.") || prefix.ends_with("/..")) {
    return Invalid(
        "path_prefix must look like /api or /v1/orders (URL path characters, no "
        "'.' or '..' segments, at most 256)");
  }
  if (prefix.back() == '/') prefix.pop_back();
  return Status::Ok();
}

Status ValidateUpstream(const std::string& url) {
  if (url.empty()) return Status::Ok();
  if (url.size() > 2048) return Invalid("upstream URL: at most 2048 bytes");
  auto target = gateway::TargetFromUrl("upstream", url);
  return target.ok() ? Status::Ok() : target.status();
}

std::vector<std::string> EffectiveHosts(const App& app) {
  return app.hosts.empty() ? std::vector<std::string>{app.name + ".localhost"} : app.hosts;
}

std::string RouteClash(const App& app, const std::vector<App>& existing) {
  auto mine = EffectiveHosts(app);
  for (const auto& other : existing) {
    if (other.name == app.name || other.path_prefix != app.path_prefix) continue;
    for (const auto& h : EffectiveHosts(other)) {
      if (std::find(mine.begin(), mine.end(), h) != mine.end()) return other.name;
    }
  }
  return "";
}

}  // namespace slipway
