#include "api/api.h"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>

#include "api/json.h"
#include "gateway/proxy.h"
#include "obs/metrics.h"

namespace slipway {
namespace {

using json = nlohmann::json;
using net::HttpRequest;
using net::HttpResponse;

HttpResponse Json(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  r.body += '\n';
  return r;
}

HttpResponse Error(int status, const std::string& error, const std::string& detail) {
  return Json(status, {{"error", error}, {"detail", detail}});
}

int HttpStatusOf(Code code) {
  switch (code) {
    case Code::kInvalid:
      return 400;
    case Code::kUnauthorized:
      return 401;
    case Code::kForbidden:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kConflict:
      return 409;
    case Code::kTooLarge:
      return 413;
    case Code::kUnavailable:
      return 503;
    case Code::kTimeout:
      return 504;
    default:
      return 500;
  }
}

HttpResponse Error(const Status& s) {
  return Error(HttpStatusOf(s.code()), ToString(s.code()), s.message());
}

// Parses a JSON object body; kInvalid with a clear message otherwise.
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

class Api {
 public:
  explicit Api(ApiDeps deps) : ctx_(deps.ctx), controller_(deps.controller) {
    obs::Metrics::Global().Describe("slipway_api_request_duration_seconds", "histogram",
                                    "API request duration by route and status.");
  }

  HttpResponse Handle(HttpRequest& req) {
    auto started = std::chrono::steady_clock::now();
    std::string route = "other";
    HttpResponse res = Dispatch(req, route);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (!res.stream) {
      obs::Metrics::Global().Observe(
          "slipway_api_request_duration_seconds",
          {{"method", req.method}, {"route", route}, {"status", std::to_string(res.status)}},
          seconds);
    }
    return res;
  }

 private:
  HttpResponse Dispatch(HttpRequest& req, std::string& route) {
    std::vector<std::string> parts;
    for (std::size_t i = 1, j; i <= req.path.size(); i = j + 1) {
      j = req.path.find('/', i);
      if (j == std::string::npos) j = req.path.size();
      if (j > i) parts.push_back(req.path.substr(i, j - i));
    }
    const std::string& m = req.method;
    auto is = [&](std::initializer_list<const char*> pattern) {
      if (parts.size() != pattern.size()) return false;
      std::size_t i = 0;
      for (const char* p : pattern) {
        if (std::string(p) != "*" && parts[i] != p) return false;
        ++i;
      }
      return true;
    };
    if (is({"health"})) return route = "/health", Health();
    if (is({"metrics"})) return route = "/metrics", Metrics();
    if (is({"hooks", "*", "*"})) {
      route = "/hooks";
      if (m != "POST") return Error(405, "method_not_allowed", "webhooks are POSTed");
      return Hook(req, parts[1], parts[2]);
    }
    if (parts.size() < 2 || parts[0] != "api" || parts[1] != "v1") {
      return Error(404, "not_found", "no such endpoint: " + req.path);
    }
    parts.erase(parts.begin(), parts.begin() + 2);
    if (is({"apps"})) {
      route = "/apps";
      if (m == "GET") return ListApps();
      if (m == "POST") return CreateApp(req);
    } else if (is({"apps", "*"})) {
      route = "/apps/{app}";
      if (m == "GET") return ShowApp(parts[1]);
      if (m == "DELETE") return DeleteApp(parts[1]);
    } else if (is({"apps", "*", "deployments"})) {
      route = "/apps/{app}/deployments";
      if (m == "POST") return CreateDeployment(req, parts[1]);
      if (m == "GET") return ListDeployments(req, parts[1]);
    } else if (is({"apps", "*", "releases"})) {
      route = "/apps/{app}/releases";
      if (m == "GET") return ListReleases(parts[1]);
    } else if (is({"apps", "*", "rollback"})) {
      route = "/apps/{app}/rollback";
      if (m == "POST") return RollbackApp(req, parts[1]);
    } else if (is({"apps", "*", "stop"}) || is({"apps", "*", "start"}) ||
               is({"apps", "*", "restart"})) {
      route = "/apps/{app}/" + parts[2];
      if (m == "POST") return Lifecycle(parts[1], parts[2]);
    } else if (is({"deployments"})) {
      route = "/deployments";
      if (m == "GET") return ListDeployments(req, req.Query("app"));
    } else if (is({"deployments", "*"})) {
      route = "/deployments/{id}";
      if (m == "GET") return ShowDeployment(parts[1]);
    } else if (is({"deployments", "*", "events"})) {
      route = "/deployments/{id}/events";
      if (m == "GET") return Events(req, parts[1]);
    } else if (is({"deployments", "*", "stream"})) {
      route = "/deployments/{id}/stream";
      if (m == "GET") return Stream(req, parts[1]);
    } else if (is({"deployments", "*", "cancel"})) {
      route = "/deployments/{id}/cancel";
      if (m == "POST") return CancelDeployment(parts[1]);
    } else if (is({"audit"})) {
      route = "/audit";
      if (m == "GET") return Audit(req);
    } else {
      return Error(404, "not_found", "no such endpoint: " + req.path);
    }
    return Error(405, "method_not_allowed", m + " is not allowed on " + req.path);
  }

  HttpResponse Health() {
    json j = {{"status", "ok"}};
    auto apps = ctx_.store.ListApps();
    j["store"] = apps.ok() ? "ok" : apps.status().message();
    j["agent"] = {{"name", ctx_.agent.name()}, {"status", "ok"}};
    if (!apps.ok()) j["status"] = "degraded";
    return Json(apps.ok() ? 200 : 503, j);
  }

  HttpResponse Metrics() {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = obs::Metrics::Global().Render();
    gateway::RenderTargetMetrics(ctx_.router, r.body);
    return r;
  }

  HttpResponse Hook(HttpRequest& req, const std::string& provider, const std::string& app) {
    auto out = controller_.ReceiveWebhook(provider, app, req.headers, req.body);
    if (out.http_status >= 400) return Error(out.http_status, out.outcome, out.detail);
    json j = {{"outcome", out.outcome}, {"detail", out.detail}};
    if (out.deployment_id) j["deployment_id"] = *out.deployment_id;
    return Json(out.http_status, j);
  }

  HttpResponse ListApps() {
    auto apps = ctx_.store.ListApps();
    if (!apps.ok()) return Error(apps.status());
    json arr = json::array();
    for (const auto& a : *apps) arr.push_back(AppView(a));
    return Json(200, {{"apps", arr}});
  }

  json AppView(const App& a) {
    json j = ToJson(a);
    auto serving = ctx_.serving.Get(a.id);
    if (serving) {
      j["serving"] = {{"instance_id", serving->instance.id},
                      {"pid", serving->instance.pid},
                      {"port", serving->instance.port},
                      {"release_id", serving->instance.release_id}};
    } else {
      j["serving"] = nullptr;
    }
    if (a.current_release_id) {
      if (auto r = ctx_.store.GetRelease(*a.current_release_id); r.ok()) {
        j["release"] = {{"number", r->number}, {"commit", r->commit}};
      }
    }
    return j;
  }

  HttpResponse CreateApp(HttpRequest& req) {
    auto body = Body(req);
    if (!body.ok()) return Error(body.status());
    App app;
    auto name = StringField(*body, "name", true);
    auto repo = StringField(*body, "repo", true);
    auto branch = StringField(*body, "branch", false);
    auto secret = StringField(*body, "secret", true);
    auto prefix = StringField(*body, "path_prefix", false);
    for (auto* f : {&name, &repo, &branch, &secret, &prefix})
      if (!f->ok()) return Error(f->status());
    app.name = *name;
    app.repo = *repo;
    app.branch = *branch;
    app.secret = *secret;
    app.path_prefix = *prefix;
    if (body->contains("hosts")) {
      const auto& h = (*body)["hosts"];
      if (!h.is_array()) return Error(400, "invalid", "'hosts' must be a list of host names");
      for (const auto& x : h) {
        if (!x.is_string() || x.get<std::string>().empty())
          return Error(400, "invalid", "'hosts' must be a list of host names");
        app.hosts.push_back(x.get<std::string>());
      }
    }
    auto created = controller_.CreateApp(app, "api");
    if (!created.ok()) return Error(created.status());
    return Json(201, AppView(*created));
  }

  HttpResponse ShowApp(const std::string& name) {
    auto app = ctx_.store.GetApp(name);
    if (!app.ok()) return Error(app.status());
    return Json(200, AppView(*app));
  }

  HttpResponse DeleteApp(const std::string& name) {
    if (auto s = controller_.DeleteApp(name, "api"); !s.ok()) return Error(s);
    return Json(200, {{"deleted", name}});
  }

  HttpResponse CreateDeployment(HttpRequest& req, const std::string& app) {
    auto body = Body(req);
    if (!body.ok()) return Error(body.status());
    auto ref = StringField(*body, "ref", false);
    if (!ref.ok()) return Error(ref.status());
    auto d = controller_.Deploy(app, *ref, "api");
    if (!d.ok()) return Error(d.status());
    return Json(201, ToJson(*d));
  }

  HttpResponse ListDeployments(HttpRequest& req, const std::string& app_name) {
    DeploymentFilter f;
    if (!app_name.empty()) {
      auto app = ctx_.store.GetApp(app_name);
      if (!app.ok()) return Error(app.status());
      f.app_id = app->id;
    }
    if (auto s = req.Query("status"); !s.empty()) {
      f.status = DeployStatusFromString(s);
      if (!f.status) return Error(400, "invalid", "unknown status '" + s + "'");
    }
    if (auto l = req.Query("limit"); !l.empty()) {
      std::int64_t limit;
      if (!ParseInt(l, limit) || limit < 1 || limit > 1000)
        return Error(400, "invalid", "limit must be 1..1000");
      f.limit = static_cast<int>(limit);
    }
    auto list = ctx_.store.ListDeployments(f);
    if (!list.ok()) return Error(list.status());
    json arr = json::array();
    for (const auto& d : *list) arr.push_back(ToJson(d));
    return Json(200, {{"deployments", arr}});
  }

  Result<Deployment> FindDeployment(const std::string& id_text) {
    std::int64_t id;
    if (!ParseInt(id_text, id)) return Invalid("deployment id must be a number");
    return ctx_.store.GetDeployment(id);
  }

  HttpResponse ShowDeployment(const std::string& id) {
    auto d = FindDeployment(id);
    if (!d.ok()) return Error(d.status());
    return Json(200, ToJson(*d));
  }

  HttpResponse CancelDeployment(const std::string& id_text) {
    auto d = FindDeployment(id_text);
    if (!d.ok()) return Error(d.status());
    if (auto s = controller_.Cancel(d->id, "api"); !s.ok()) return Error(s);
    return Json(202, {{"cancelling", d->id}});
  }

  // Long poll: events after `after`; with `wait` (seconds, max 30) blocks until at least
  // one arrives or the deployment has ended.
  HttpResponse Events(HttpRequest& req, const std::string& id_text) {
    auto d = FindDeployment(id_text);
    if (!d.ok()) return Error(d.status());
    std::int64_t after = 0, wait = 0, limit = 500;
    if (!req.Query("after").empty() && !ParseInt(req.Query("after"), after))
      return Error(400, "invalid", "after must be a number");
    if (!req.Query("wait").empty() && (!ParseInt(req.Query("wait"), wait) || wait > 30))
      return Error(400, "invalid", "wait must be 0..30 seconds");
    if (!req.Query("limit").empty() &&
        (!ParseInt(req.Query("limit"), limit) || limit < 1 || limit > 5000))
      return Error(400, "invalid", "limit must be 1..5000");
    if (IsTerminal(d->status)) wait = 0;
    auto events =
        ctx_.events.Read(d->id, after, static_cast<int>(limit), std::chrono::seconds(wait));
    if (!events.ok()) return Error(events.status());
    auto now = ctx_.store.GetDeployment(d->id);
    json arr = json::array();
    std::int64_t last = after;
    for (const auto& e : *events) {
      arr.push_back(ToJson(e));
      last = e.seq;
    }
    bool ended = now.ok() && IsTerminal(now->status);
    // "done" only once the reader has everything: the deployment ended and no event is left.
    bool done = ended && static_cast<std::int64_t>(events->size()) < limit;
    return Json(200, {{"events", arr},
                      {"next", last},
                      {"status", now.ok() ? ToString(now->status) : "unknown"},
                      {"done", done}});
  }

  // Server-sent events; resumes after `after` or the Last-Event-ID header.
  HttpResponse Stream(HttpRequest& req, const std::string& id_text) {
    auto d = FindDeployment(id_text);
    if (!d.ok()) return Error(d.status());
    std::int64_t after = 0;
    std::string from = req.Header("last-event-id");
    if (from.empty()) from = req.Query("after");
    if (!from.empty() && !ParseInt(from, after))
      return Error(400, "invalid", "after must be a number");
    HttpResponse r;
    r.content_type = "text/event-stream";
    std::int64_t id = d->id;
    r.stream = [this, id, after](const net::StreamWriter& write) mutable {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(2);
      while (std::chrono::steady_clock::now() < deadline && !ctx_.events.closed()) {
        auto events = ctx_.events.Read(id, after, 500, std::chrono::seconds(15));
        if (!events.ok()) return;
        for (const auto& e : *events) {
          if (!write(
                  fmt::format("id: {}\nevent: deployment\ndata: {}\n\n", e.seq, ToJson(e).dump())))
            return;
          after = e.seq;
        }
        auto d = ctx_.store.GetDeployment(id);
        if (events->empty()) {
          if (d.ok() && IsTerminal(d->status)) {
            write(fmt::format("event: end\ndata: {}\n\n",
                              json{{"status", ToString(d->status)}}.dump()));
            return;
          }
          if (!write(": keep-alive\n\n")) return;
        }
      }
    };
    return r;
  }

  HttpResponse ListReleases(const std::string& name) {
    auto app = ctx_.store.GetApp(name);
    if (!app.ok()) return Error(app.status());
    auto releases = ctx_.store.ListReleases(app->id, false);
    if (!releases.ok()) return Error(releases.status());
    json arr = json::array();
    for (const auto& r : *releases) arr.push_back(ToJson(r, app->current_release_id));
    return Json(200, {{"releases", arr}});
  }

  HttpResponse RollbackApp(HttpRequest& req, const std::string& name) {
    auto body = Body(req);
    if (!body.ok()) return Error(body.status());
    std::optional<std::int64_t> number;
    if (body->contains("release") && !(*body)["release"].is_null()) {
      if (!(*body)["release"].is_number_integer())
        return Error(400, "invalid", "'release' must be a release number");
      number = (*body)["release"].get<std::int64_t>();
    }
    auto d = controller_.Rollback(name, number, "api");
    if (!d.ok()) return Error(d.status());
    return Json(201, ToJson(*d));
  }

  HttpResponse Lifecycle(const std::string& app, const std::string& verb) {
    if (verb == "stop") {
      if (auto s = controller_.StopApp(app, "api"); !s.ok()) return Error(s);
      return Json(200, {{"stopped", app}});
    }
    auto d = controller_.StartApp(app, verb == "restart", "api");
    if (!d.ok()) return Error(d.status());
    return Json(201, ToJson(*d));
  }

  HttpResponse Audit(HttpRequest& req) {
    std::int64_t limit = 100;
    if (!req.Query("limit").empty() &&
        (!ParseInt(req.Query("limit"), limit) || limit < 1 || limit > 1000)) {
      return Error(400, "invalid", "limit must be 1..1000");
    }
    auto list = ctx_.store.ListAudit(static_cast<int>(limit));
    if (!list.ok()) return Error(list.status());
    json arr = json::array();
    for (const auto& a : *list) arr.push_back(ToJson(a));
    return Json(200, {{"audit", arr}});
  }

  Context& ctx_;
  Controller& controller_;
};

}  // namespace

net::HttpHandler MakeApiHandler(ApiDeps deps) {
  auto api = std::make_shared<Api>(deps);
  return [api](net::HttpRequest& req) { return api->Handle(req); };
}

}  // namespace slipway
