#pragma once
// Pure rules of sandboxes: names, the janitor's expiry decision and the health summary.
// No I/O; the control plane's Sandboxes service (control/sandboxes.h) applies them.
#include <string>
#include <vector>

#include "core/model.h"
#include "core/status.h"

namespace slipway {

// 1..32 of [a-z0-9-], starting with a letter, not ending with '-'.
Status ValidateSandboxName(const std::string& name);

// "ACCOUNT_URL" for "account" ('-' and '.' become '_').
std::string ServiceUrlVar(const std::string& service);

// What the janitor does with a sandbox at `now_ms`: nothing; expire it (inactive for its
// expire_after_ms: its instances stop, it keeps its ports); or delete it (expired for
// `retention_ms`). A sandbox with expire_after_ms <= 0 never expires.
enum class ExpiryStep { kNone, kExpire, kDelete };
ExpiryStep DecideExpiry(const Sandbox& s, long long now_ms, long long retention_ms);

// One service's live state, as `sandbox show` reports it.
struct ServiceHealth {
  std::string name;
  bool upstream = false;  // served by the shared environment
  bool running = false;   // an instance runs (or the upstream answers)
  bool healthy = false;   // its health endpoint answered 2xx
};

// healthy: every service runs and answers its health check; unhealthy: the entry service
// does not, or none does; degraded otherwise. A suspended or expired sandbox is unhealthy.
std::string SandboxHealth(const Sandbox& s, const std::vector<ServiceHealth>& services);

}  // namespace slipway
