// Logging in and out, API tokens, users and the audit trail.
#include <fmt/format.h>

#include "agent/hub.h"
#include "api/api_internal.h"
#include "api/json.h"

namespace slipway::api {
namespace {

constexpr int kSessionCookieMaxAge = 12 * 3600;

json TokenView(const ApiToken& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"role", t.role},
          {"kind", t.kind},
          {"created_ms", t.created_ms},
          {"expires_ms", t.expires_ms},
          {"revoked", t.revoked_ms != 0},
          {"last_used_ms", t.last_used_ms},
          {"created_by", t.created_by}};
}

json UserView(const User& u) {
  return {{"name", u.name}, {"role", u.role}, {"source", u.source}, {"created_ms", u.created_ms}};
}

// Secure only behind TLS: a reverse proxy that terminates it says so.
std::string SessionCookie(const HttpRequest& req, const std::string& value, int max_age) {
  bool tls = req.Header("x-forwarded-proto") == "https";
  return fmt::format("slipway_session={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}", value,
                     max_age, tls ? "; Secure" : "");
}

void AuditChange(Store& store, const Call& c, const std::string& action, const std::string& target,
                 const json& detail) {
  AuditEvent e;
  e.actor = c.principal.name;
  e.action = action;
  e.target = target;
  e.detail_json = detail.dump();
  e.source = c.req.remote;
  (void)store.AppendAudit(e);
}

}  // namespace

HttpResponse Api::Login(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto user = StringField(*body, "username", true);
  auto password = StringField(*body, "password", true);
  auto mode = StringField(*body, "mode", false);
  for (auto* f : {&user, &password, &mode})
    if (!f->ok()) return Error(f->status());
  auto login = auth_.Login(*user, *password, c.req.remote);
  if (!login.ok()) return Error(login.status());
  json out = {{"user", login->user},
              {"role", ToString(login->role)},
              {"expires_ms", login->expires_ms},
              {"csrf_token", login->csrf_token}};
  if (*mode == "token")
    out["token"] = login->session_token;  // for the CLI; browsers use the cookie
  HttpResponse res = Json(200, out);
  res.headers.push_back({"Cache-Control", "no-store"});
  res.headers.push_back(
      {"Set-Cookie", SessionCookie(c.req, login->session_token, kSessionCookieMaxAge)});
  return res;
}

HttpResponse Api::Logout(Call& c) {
  if (auto s = auth_.Logout(c.principal); !s.ok()) return Error(s);
  AuditChange(ctx_.store, c, "auth.logout", "user/" + c.principal.name, json::object());
  HttpResponse res = Json(200, {{"logged_out", c.principal.name}});
  res.headers.push_back({"Set-Cookie", SessionCookie(c.req, "", 0)});
  return res;
}

HttpResponse Api::WhoAmI(Call& c) {
  json perms = json::array();
  for (Permission p : AllPermissions())
    if (Allows(c.principal.role, p)) perms.push_back(ToString(p));
  json out = {{"name", c.principal.name},
              {"role", ToString(c.principal.role)},
              {"kind", c.principal.kind},
              {"permissions", perms}};
  if (c.principal.kind == "session")
    out["csrf_token"] = AuthService::CsrfFor(c.principal.session_token);
  return Json(200, out);
}

HttpResponse Api::ListTokens(Call&) {
  auto tokens = ctx_.store.ListTokens();
  if (!tokens.ok()) return Error(tokens.status());
  json arr = json::array();
  for (const auto& t : *tokens) arr.push_back(TokenView(t));
  return Json(200, {{"tokens", arr}});
}

HttpResponse Api::CreateToken(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto name = StringField(*body, "name", false);
  auto role = StringField(*body, "role", true);
  auto expires = StringField(*body, "expires", false);
  for (auto* f : {&name, &role, &expires})
    if (!f->ok()) return Error(f->status());
  std::chrono::milliseconds ttl{0};
  if (!expires->empty() && !ParseTtl(*expires, ttl))
    return Error(400, "invalid", "expires must be like 30d, 12h or 90m (at most ten years)");
  std::string token_name =
      name->empty() ? fmt::format("{}-{}", *role, ctx_.clock.WallMillis()) : *name;
  auto created = auth_.CreateToken(token_name, *role, ttl, c.principal.name);
  if (!created.ok()) return Error(created.status());
  AuditChange(ctx_.store, c, "token.create", "token/" + token_name,
              {{"role", *role}, {"expires_ms", created->record.expires_ms}});
  json out = TokenView(created->record);
  out["token"] = created->token;  // shown this once
  HttpResponse res = Json(201, out);
  res.headers.push_back({"Cache-Control", "no-store"});
  return res;
}

HttpResponse Api::RevokeToken(Call& c) {
  if (auto s = ctx_.store.RevokeToken(c.params[0], ctx_.clock.WallMillis()); !s.ok())
    return Error(s);
  // An agent connected with a revoked enrollment token is cut off at once.
  if (auto tokens = ctx_.store.ListTokens(); tokens.ok() && ctx_.hub) {
    for (const auto& t : *tokens) {
      if (t.kind == "node" && (t.name == c.params[0] || std::to_string(t.id) == c.params[0]))
        ctx_.hub->DisconnectToken(t.id);
    }
  }
  AuditChange(ctx_.store, c, "token.revoke", "token/" + c.params[0], json::object());
  return Json(200, {{"revoked", c.params[0]}});
}

HttpResponse Api::ListUsers(Call&) {
  auto users = ctx_.store.ListUsers();
  if (!users.ok()) return Error(users.status());
  json arr = json::array();
  for (const auto& u : *users) arr.push_back(UserView(u));
  return Json(200, {{"users", arr}});
}

HttpResponse Api::CreateUser(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto name = StringField(*body, "name", true);
  auto role = StringField(*body, "role", true);
  auto password = StringField(*body, "password", false);
  auto source = StringField(*body, "source", false);
  for (auto* f : {&name, &role, &password, &source})
    if (!f->ok()) return Error(f->status());
  auto user = auth_.CreateUser(*name, *role, *password, source->empty() ? "local" : *source);
  if (!user.ok()) return Error(user.status());
  AuditChange(ctx_.store, c, "user.create", "user/" + *name,
              {{"role", *role}, {"source", user->source}});
  return Json(201, UserView(*user));
}

HttpResponse Api::DeleteUser(Call& c) {
  if (auto s = ctx_.store.DeleteUser(c.params[0]); !s.ok()) return Error(s);
  AuditChange(ctx_.store, c, "user.delete", "user/" + c.params[0], json::object());
  return Json(200, {{"deleted", c.params[0]}});
}

HttpResponse Api::Audit(Call& c) {
  AuditFilter f;
  f.app = c.req.Query("app");
  f.actor = c.req.Query("actor");
  std::int64_t limit = 100, since = 0;
  if (!c.req.Query("limit").empty() &&
      (!ParseInt(c.req.Query("limit"), limit) || limit < 1 || limit > 1000))
    return Error(400, "invalid", "limit must be 1..1000");
  if (!c.req.Query("since").empty() && !ParseInt(c.req.Query("since"), since))
    return Error(400, "invalid", "since must be a time in milliseconds since the epoch");
  f.limit = static_cast<int>(limit);
  f.since_ms = since;
  auto list = ctx_.store.ListAudit(f);
  if (!list.ok()) return Error(list.status());
  json arr = json::array();
  for (const auto& a : *list) arr.push_back(ToJson(a));
  return Json(200, {{"audit", arr}});
}

}  // namespace slipway::api
