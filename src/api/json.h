#pragma once
// JSON renderings of the domain records. Secrets (webhook secrets, repo passwords) are
// never rendered.
#include <nlohmann/json.hpp>

#include "core/model.h"

namespace slipway {

nlohmann::json ToJson(const App& a);
// {"mode": "open"|"paused"|"maintenance", "max_ms": N, "message": "..."}
nlohmann::json ToJson(const GatewayState& g);
nlohmann::json ToJson(const Deployment& d);
nlohmann::json ToJson(const Event& e);
nlohmann::json ToJson(const Release& r, std::optional<std::int64_t> current);
nlohmann::json ToJson(const AuditEvent& a);

}  // namespace slipway
