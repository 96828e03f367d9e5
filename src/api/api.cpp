#include "api/api.h"

#include <fmt/format.h>

#include <chrono>
#include <set>

#include "api/api_internal.h"
#include "crypto/crypto.h"
#include "gateway/proxy.h"
#include "git/git.h"
#include "obs/metrics.h"

namespace slipway::api {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  for (std::size_t i = 1, j; i <= path.size(); i = j + 1) {
    j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
  }
  return parts;
}

// Whether `parts` fit `pattern`; collects the {placeholder} values.
bool MatchPattern(const char* pattern, const std::vector<std::string>& parts,
                  std::vector<std::string>& params) {
  auto want = Split(pattern);
  if (want.size() != parts.size()) return false;
  params.clear();
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i].front() == '{') {
      params.push_back(parts[i]);
    } else if (want[i] != parts[i]) {
      return false;
    }
  }
  return true;
}

bool IsWrite(const std::string& method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

// Metric labels only from known values: an attacker must not be able to mint series.
std::string MethodLabel(const std::string& m) {
  static const std::set<std::string> kKnown = {"GET",    "HEAD",  "POST",   "PUT",
                                               "DELETE", "PATCH", "OPTIONS"};
  return kKnown.count(m) ? m : "other";
}

}  // namespace

std::string Bearer(const HttpRequest& req) {
  std::string h = req.Header("authorization");
  if (h.size() > 7 && (h.rfind("Bearer ", 0) == 0 || h.rfind("bearer ", 0) == 0))
    return h.substr(7);
  return "";
}

std::string SessionCookie(const HttpRequest& req) {
  std::string cookies = req.Header("cookie");
  const std::string key = "slipway_session=";
  for (std::size_t pos = 0; pos < cookies.size();) {
    while (pos < cookies.size() && (cookies[pos] == ' ' || cookies[pos] == ';')) ++pos;
    auto end = cookies.find(';', pos);
    if (end == std::string::npos) end = cookies.size();
    if (cookies.compare(pos, key.size(), key) == 0)
      return cookies.substr(pos + key.size(), end - pos - key.size());
    pos = end;
  }
  return "";
}

namespace {

// A browser page on another origin (or a DNS-rebound name) must not drive the API.
bool CrossOrigin(const HttpRequest& req) {
  std::string origin = req.Header("origin");
  if (origin.empty()) return false;
  auto scheme = origin.find("://");
  std::string host = scheme == std::string::npos ? origin : origin.substr(scheme + 3);
  return host != req.Header("host");
}

bool JsonContentType(const HttpRequest& req) {
  std::string ct = req.Header("content-type");
  auto semi = ct.find(';');
  ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  for (auto& c : ct) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ct == "application/json";
}

}  // namespace

HttpResponse Json(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

HttpResponse Error(int status, const std::string& error, const std::string& detail) {
  return Json(status, {{"error", error}, {"detail", git::RedactSecrets(detail)}});
}

HttpResponse Error(const Status& s) {
  static const std::map<Code, int> kHttp = {
      {Code::kInvalid, 400},     {Code::kUnauthorized, 401}, {Code::kForbidden, 403},
      {Code::kNotFound, 404},    {Code::kConflict, 409},     {Code::kTooLarge, 413},
      {Code::kRateLimited, 429}, {Code::kUnavailable, 503},  {Code::kTimeout, 504}};
  auto it = kHttp.find(s.code());
  return Error(it == kHttp.end() ? 500 : it->second, ToString(s.code()), s.message());
}

Result<json> Body(const HttpRequest& req) {
  if (req.body.empty()) return json::object();
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return Invalid("request body is not valid JSON");
  if (!j.is_object()) return Invalid("request body must be a JSON object");
  return j;
}

Result<std::string> StringField(const json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Invalid(std::string("'") + key + "' is required");
    return std::string();
  }
  if (!it->is_string()) return Invalid(std::string("'") + key + "' must be a string");
  return it->get<std::string>();
}

bool ParseInt(const std::string& s, std::int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  out = std::stoll(s);
  return true;
}

bool ParseTtl(const std::string& text, std::chrono::milliseconds& out) {
  if (text.size() < 2) return false;
  std::int64_t n = 0;
  if (!ParseInt(text.substr(0, text.size() - 1), n) || n <= 0) return false;
  static const std::map<char, std::int64_t> kUnit = {
      {'s', 1000}, {'m', 60'000}, {'h', 3'600'000}, {'d', 86'400'000}};
  auto unit = kUnit.find(text.back());
  if (unit == kUnit.end() || n > 3650LL * 86'400'000 / unit->second) return false;
  out = std::chrono::milliseconds(n * unit->second);
  return true;
}

Actor Call::actor() const {
  return Actor{principal.name, req.remote, std::nullopt};
}

Api::Api(ApiDeps deps, Listener listener)
    : ctx_(deps.ctx),
      controller_(deps.controller),
      auth_(deps.auth),
      nodes_(deps.nodes),
      sandboxes_(deps.sandboxes),
      environments_(deps.environments),
      listener_(listener) {
  obs::Metrics::Global().Describe("slipway_api_request_duration_seconds", "histogram",
                                  "API request duration by route and status.");
}

HttpResponse Api::Handle(HttpRequest& req) {
  auto started = std::chrono::steady_clock::now();
  std::string route = "other";
  HttpResponse res = Dispatch(req, route);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  obs::Metrics::Global().Observe("slipway_api_request_duration_seconds",
                                 {{"method", MethodLabel(req.method)},
                                  {"route", route},
                                  {"status", std::to_string(res.status)}},
                                 seconds);
  return res;
}

HttpResponse Api::Dispatch(HttpRequest& req, std::string& route) {
  auto parts = Split(req.path);
  if (parts.size() == 1 && parts[0] == "health") return route = "/health", Health();
  bool hooks = parts.size() == 3 && parts[0] == "hooks";
  if (hooks && listener_ != Listener::kMetrics) {
    route = "/hooks";
    if (req.method != "POST") return Error(405, "method_not_allowed", "webhooks are POSTed");
    return Hook(req, parts[1], parts[2]);
  }
  if (parts.size() == 2 && parts[0] == "ws" && parts[1] == "agent" &&
      listener_ == Listener::kFull) {
    route = "/ws/agent";
    return AgentSocket(req);
  }
  if (parts.size() == 1 && parts[0] == "metrics" && listener_ != Listener::kHooks) {
    route = "/metrics";
    if (listener_ == Listener::kMetrics) return Metrics();
    auto who = auth_.Authenticate(Bearer(req), SessionCookie(req));
    if (!who.ok()) return Error(who.status());
    return Metrics();
  }
  if (listener_ != Listener::kFull || parts.size() < 2 || parts[0] != "api" || parts[1] != "v1")
    return Error(404, "not_found", "no such endpoint: " + req.path);
  return DispatchApi(req, route);
}

HttpResponse Api::DispatchApi(HttpRequest& req, std::string& route) {
  auto parts = Split(req.path);
  std::vector<std::string> params;
  const Route* path_match = nullptr;
  for (const auto& r : Routes()) {
    if (!MatchPattern(r.pattern, parts, params)) continue;
    path_match = &r;
    bool head = req.method == "HEAD" && std::string(r.method) == "GET";
    if (req.method != r.method && !head) continue;
    route = r.pattern + 7;  // without "/api/v1"
    Call call{req, {}, params};
    if (auto refused = Refuse(req, r, call)) {
      AuditRefusal(req, call.principal.name, r.pattern, *refused);
      return *refused;
    }
    HttpResponse res = (this->*r.handler)(call);
    if (head && (res.deferred || res.streamed)) {
      res = Json(200, json::object());  // HEAD of a stream: its head, never the stream
    }
    if (IsWrite(req.method) && res.status >= 400 && r.permission)
      AuditRefusal(req, call.principal.name, r.pattern, res);
    return res;
  }
  // Anonymous callers learn nothing about which routes exist.
  if (!auth_.Authenticate(Bearer(req), SessionCookie(req)).ok())
    return Error(401, "unauthorized",
                 "authentication required: send Authorization: Bearer <token>");
  if (path_match)
    return Error(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
  return Error(404, "not_found", "no such endpoint: " + req.path);
}

// The checks every route passes before its handler: same origin, a valid credential, CSRF
// for cookie-authenticated writes, the route's permission, and JSON bodies on writes.
std::optional<HttpResponse> Api::Refuse(HttpRequest& req, const Route& r, Call& call) {
  if (CrossOrigin(req))
    return Error(403, "forbidden", "cross-origin requests are refused (no CORS)");
  bool json_body =
      !IsWrite(req.method) || (req.method == "DELETE" && req.body.empty()) || JsonContentType(req);
  if (!r.permission) {
    if (!json_body)
      return Error(415, "unsupported_media_type", "send the request body as application/json");
    return std::nullopt;
  }
  auto who = auth_.Authenticate(Bearer(req), SessionCookie(req));
  if (!who.ok()) {
    HttpResponse res = Error(who.status());
    res.headers.push_back({"WWW-Authenticate", "Bearer realm=\"slipway\""});
    return res;
  }
  call.principal = *who;
  if (who->via_cookie && IsWrite(req.method) &&
      !crypto::ConstantTimeEquals(req.Header("x-csrf-token"),
                                  AuthService::CsrfFor(who->session_token))) {
    return Error(403, "forbidden",
                 "missing or wrong X-CSRF-Token for a cookie-authenticated write");
  }
  if (!Allows(who->role, *r.permission)) {
    return Error(403, "forbidden",
                 fmt::format("role '{}' lacks the '{}' permission", ToString(who->role),
                             ToString(*r.permission)));
  }
  // After the permission: a caller who may not use the route learns only that (403).
  if (!json_body)
    return Error(415, "unsupported_media_type", "send the request body as application/json");
  return std::nullopt;
}

// Refused and failed changes are audited here; a change that happened is audited by the
// code that made it, with its details.
void Api::AuditRefusal(const HttpRequest& req, const std::string& actor, const std::string& route,
                       const HttpResponse& res) {
  if (!IsWrite(req.method)) return;
  auto body = json::parse(res.body, nullptr, false);
  std::string detail = body.is_object() ? body.value("detail", "") : "";
  AuditEvent e;
  e.actor = actor.empty() ? "anonymous" : actor;
  e.action = req.method + " " + route;
  e.target = req.path.substr(0, 256);
  e.detail_json = json{{"status", res.status}, {"detail", detail}}.dump();
  e.source = req.remote;
  e.outcome = (res.status == 401 || res.status == 403 ? "denied: " : "failed: ") +
              (body.is_object() ? body.value("error", "") : std::to_string(res.status));
  (void)ctx_.store.AppendAudit(e);
}

HttpResponse Api::Health() {
  json j = {{"status", "ok"}};
  auto apps = ctx_.store.ListApps();
  j["store"] = apps.ok() ? "ok" : "unavailable";
  j["agent"] = {{"name", ctx_.agent.name()}, {"status", "ok"}};
  if (!apps.ok()) j["status"] = "degraded";
  return Json(apps.ok() ? 200 : 503, j);
}

HttpResponse Api::Metrics() {
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4";
  r.body = obs::Metrics::Global().Render();
  gateway::RenderTargetMetrics(ctx_.router, r.body);
  return r;
}

HttpResponse Api::Hook(HttpRequest& req, const std::string& provider, const std::string& app) {
  auto out = controller_.ReceiveWebhook(provider, app, req.headers, req.body, req.remote);
  if (out.http_status >= 400) return Error(out.http_status, out.outcome, out.detail);
  json j = {{"outcome", out.outcome}, {"detail", out.detail}};
  if (out.deployment_id) j["deployment_id"] = *out.deployment_id;
  return Json(out.http_status, j);
}

HttpResponse Api::ListRoutes(Call&) {
  json arr = json::array();
  for (const auto& r : ApiRouteTable())
    arr.push_back({{"method", r.method}, {"pattern", r.pattern}, {"permission", r.permission}});
  return Json(200, {{"routes", arr}});
}

}  // namespace slipway::api

namespace slipway {

net::HttpHandler MakeApiHandler(ApiDeps deps, Listener listener) {
  auto api = std::make_shared<api::Api>(deps, listener);
  return [api](net::HttpRequest& req) { return api->Handle(req); };
}

std::vector<RouteInfo> ApiRouteTable() {
  std::vector<RouteInfo> out;
  for (const auto& r : api::Routes())
    out.push_back({r.method, r.pattern, r.permission ? ToString(*r.permission) : "none"});
  return out;
}

}  // namespace slipway
