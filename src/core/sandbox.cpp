#include "core/sandbox.h"

#include <algorithm>

namespace slipway {

Status ValidateSandboxName(const std::string& name) {
  auto bad = [] {
    return Invalid(
        "sandbox name: 1 to 32 lower-case letters, digits and '-', starting with a letter and "
        "not ending with '-'");
  };
  if (name.empty() || name.size() > 32) return bad();
  if (name.front() < 'a' || name.front() > 'z' || name.back() == '-') return bad();
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return bad();
  return Status::Ok();
}

std::string ServiceUrlVar(const std::string& service) {
  std::string out;
  for (char c : service) {
    if (c == '-' || c == '.')
      out += '_';
    else if (c >= 'a' && c <= 'z')
      out += static_cast<char>(c - 'a' + 'A');
    else
      out += c;
  }
  return out + "_URL";
}

ExpiryStep DecideExpiry(const Sandbox& s, long long now_ms, long long retention_ms) {
  if (s.status == "expired")
    return s.expired_ms > 0 && now_ms - s.expired_ms >= retention_ms ? ExpiryStep::kDelete
                                                                     : ExpiryStep::kNone;
  if (s.expire_after_ms <= 0) return ExpiryStep::kNone;
  long long since = std::max(s.last_active_ms, s.created_ms);
  return now_ms - since >= s.expire_after_ms ? ExpiryStep::kExpire : ExpiryStep::kNone;
}

std::string SandboxHealth(const Sandbox& s, const std::vector<ServiceHealth>& services) {
  if (s.status == "suspended" || s.status == "expired" || services.empty()) return "unhealthy";
  int good = 0;
  bool entry_good = false;
  for (const auto& h : services) {
    bool ok = h.running && h.healthy;
    good += ok ? 1 : 0;
    if (h.name == s.entry) entry_good = ok;
  }
  if (!entry_good || good == 0) return "unhealthy";
  return good == static_cast<int>(services.size()) ? "healthy" : "degraded";
}

}  // namespace slipway
