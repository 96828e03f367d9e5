#include "api/json.h"

#include "git/git.h"

namespace slipway {

nlohmann::json ToJson(const App& a) {
  nlohmann::json j = {
      {"id", a.id},
      {"name", a.name},
      {"repo", git::RedactUrl(a.repo)},
      {"branch", a.branch},
      {"hosts", a.hosts.empty() ? std::vector<std::string>{a.name + ".localhost"} : a.hosts},
      {"path_prefix", a.path_prefix},
      {"secret", a.secret.empty() ? "unset" : "set"},  // write-only
      {"stopped", a.stopped},  // stopped by a user: stays down across restarts
      {"created_ms", a.created_ms}};
  j["current_release_id"] =
      a.current_release_id ? nlohmann::json(*a.current_release_id) : nlohmann::json();
  j["gateway"] = ToJson(a.gateway);
  return j;
}

nlohmann::json ToJson(const GatewayState& g) {
  return {{"mode", ToString(g.mode)}, {"max_ms", g.max_ms}, {"message", g.message}};
}

nlohmann::json ToJson(const Deployment& d) {
  nlohmann::json j = {{"id", d.id},
                      {"app", d.app},
                      {"type", d.type},
                      {"environment", d.environment},
                      {"status", ToString(d.status)},
                      {"stage", ToString(d.stage)},
                      {"commit", d.commit},
                      {"ref", d.ref},
                      {"branch", d.branch},
                      {"repository", git::RedactUrl(d.repository)},
                      {"error", d.error},
                      {"created_ms", d.created_ms},
                      {"updated_ms", d.updated_ms},
                      {"completed_ms", d.completed_ms}};
  j["config"] = nlohmann::json::parse(d.config_json, nullptr, false);
  if (j["config"].is_discarded()) j["config"] = nlohmann::json::object();
  j["release_id"] = d.release_id ? nlohmann::json(*d.release_id) : nlohmann::json();
  j["rollback_from"] = d.rollback_from ? nlohmann::json(*d.rollback_from) : nlohmann::json();
  return j;
}

nlohmann::json ToJson(const Event& e) {
  return {{"deployment_id", e.deployment_id},
          {"seq", e.seq},
          {"ts_ms", e.ts_ms},
          {"stage", e.stage},
          {"state", e.state},
          {"stream", e.stream},
          {"text", e.text}};
}

nlohmann::json ToJson(const Release& r, std::optional<std::int64_t> current) {
  return {{"id", r.id},
          {"number", r.number},
          {"commit", r.commit},
          {"path", r.path},
          {"nodes", r.nodes},
          {"deployment_id", r.deployment_id},
          {"created_ms", r.created_ms},
          {"current", current && *current == r.id}};
}

nlohmann::json ToJson(const AuditEvent& a) {
  nlohmann::json detail = nlohmann::json::parse(a.detail_json, nullptr, false);
  return {{"id", a.id},
          {"ts_ms", a.ts_ms},
          {"actor", a.actor},
          {"action", a.action},
          {"target", a.target},
          {"app", a.app},
          {"source", a.source},
          {"outcome", a.outcome},
          {"detail", detail.is_discarded() ? nlohmann::json::object() : detail}};
}

}  // namespace slipway
