// Nodes: list, show, drain, remove, and the enrollment tokens agents connect with.
#include <fmt/format.h>

#include "api/api_internal.h"
#include "crypto/crypto.h"

namespace slipway::api {
namespace {

constexpr std::chrono::milliseconds kDefaultEnrollmentTtl = std::chrono::hours(24);
constexpr std::chrono::milliseconds kMaxEnrollmentTtl = std::chrono::hours(24 * 30);

json OpsJson(const std::vector<OpView>& ops) {
  json out = json::array();
  for (const auto& o : ops)
    out.push_back(
        {{"op_id", o.op_id}, {"kind", o.kind}, {"state", o.state}, {"events", o.last_seq}});
  return out;
}

json NodeJson(const NodeRow& n) {
  return {{"name", n.name},
          {"state", n.state()},
          {"connected", n.connected},
          {"drained", n.drained},
          {"labels", n.labels},
          {"address", n.address},
          {"agent_version", n.agent_version},
          {"capabilities", n.capabilities},
          {"token_id", n.token_id},
          {"first_seen_ms", n.first_seen_ms},
          {"last_seen_ms", n.last_seen_ms},
          {"last_heard_ms", n.last_heard_ms},
          {"connected_ms", n.connected_ms},
          {"clock_skew_ms", n.clock_skew_ms},
          {"ops_in_flight", n.ops_in_flight},
          {"ops", OpsJson(n.ops)}};
}

// A successful change, for the audit trail. `detail` never holds a secret.
void AuditNodeChange(Store& store, const Call& c, const std::string& action,
                     const std::string& target, const json& detail) {
  AuditEvent e;
  e.actor = c.principal.name;
  e.action = action;
  e.target = target;
  e.detail_json = detail.dump();
  e.source = c.req.remote;
  (void)store.AppendAudit(e);
}

// The body's optional "expires": a lifetime of 1s..30d, 24h when absent. Enrollment tokens
// always expire: "0" and "never" are refused.
Result<std::chrono::milliseconds> EnrollmentTtl(const json& body) {
  auto it = body.find("expires");
  if (it == body.end() || it->is_null()) return kDefaultEnrollmentTtl;
  if (!it->is_string()) return Invalid("'expires' must be a string like 24h");
  const auto text = it->get<std::string>();
  if (text == "0" || text == "never")
    return Invalid(
        "enrollment tokens always expire: give 'expires' a lifetime like 24h (at most 30d)");
  std::chrono::milliseconds ttl{0};
  if (!ParseTtl(text, ttl))
    return Invalid("'expires' must be a positive lifetime like 90m, 24h or 7d (at most 30d)");
  if (ttl > kMaxEnrollmentTtl) return Invalid("enrollment tokens live at most 30d");
  return ttl;
}

// "node-" and 8 random hex digits.
std::string EnrollmentName() {
  std::string name = "node-";
  for (unsigned char b : crypto::RandomBytes(4)) name += fmt::format("{:02x}", b);
  return name;
}

}  // namespace

HttpResponse Api::ListNodes(Call&) {
  auto rows = nodes_.List();
  if (!rows.ok()) return Error(rows.status());
  json arr = json::array();
  for (const auto& n : *rows) arr.push_back(NodeJson(n));
  return Json(200, {{"nodes", arr}});
}

HttpResponse Api::ShowNode(Call& c) {
  auto row = nodes_.Show(c.params[0]);
  if (!row.ok()) return Error(row.status());
  return Json(200, NodeJson(*row));
}

// Body {"drained": false} undrains; no body (or true) drains.
HttpResponse Api::DrainNode(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  bool drained = true;
  if (auto it = body->find("drained"); it != body->end() && !it->is_null()) {
    if (!it->is_boolean()) return Error(400, "invalid", "'drained' must be true or false");
    drained = it->get<bool>();
  }
  auto row = nodes_.Drain(c.params[0], drained);
  if (!row.ok()) return Error(row.status());
  AuditNodeChange(ctx_.store, c, drained ? "node.drain" : "node.undrain", "node/" + row->name,
                  json::object());
  return Json(200, NodeJson(*row));
}

HttpResponse Api::RemoveNode(Call& c) {
  if (auto body = Body(c.req); !body.ok()) return Error(body.status());
  if (auto s = nodes_.Remove(c.params[0]); !s.ok()) return Error(s);
  AuditNodeChange(ctx_.store, c, "node.remove", "node/" + c.params[0], json::object());
  return Json(200, {{"removed", c.params[0]}});
}

// Body {"expires": "24h"}, optional. The token is in this answer only: never stored (only its
// hash), logged or audited.
HttpResponse Api::CreateNodeToken(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto ttl = EnrollmentTtl(*body);
  if (!ttl.ok()) return Error(ttl.status());
  auto created = auth_.CreateToken(EnrollmentName(), "viewer", *ttl, c.principal.name, "node");
  for (int tries = 0; !created.ok() && created.status().code() == Code::kConflict && tries < 3;
       ++tries)
    created = auth_.CreateToken(EnrollmentName(), "viewer", *ttl, c.principal.name, "node");
  if (!created.ok()) return Error(created.status());
  const ApiToken& t = created->record;
  AuditNodeChange(ctx_.store, c, "node.token.create", "token/" + t.name,
                  {{"kind", t.kind}, {"expires_ms", t.expires_ms}});
  HttpResponse res =
      Json(201, {{"token", created->token}, {"name", t.name}, {"expires_ms", t.expires_ms}});
  res.headers.push_back({"Cache-Control", "no-store"});
  return res;
}

}  // namespace slipway::api
