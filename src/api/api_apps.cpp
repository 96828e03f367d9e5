// Apps, deployments, releases and deployment events.
#include <fmt/format.h>

#include "api/api_internal.h"
#include "api/json.h"
#include "control/sandboxes.h"

namespace slipway::api {
namespace {

constexpr auto kStreamLifetime = std::chrono::hours(2);
constexpr std::size_t kMaxPageBytes = 1 << 20;

Result<std::vector<std::string>> Hosts(const json& body) {
  std::vector<std::string> hosts;
  if (!body.contains("hosts") || body["hosts"].is_null()) return hosts;
  const auto& h = body["hosts"];
  if (!h.is_array() || h.size() > 32)
    return Invalid("'hosts' must be a list of at most 32 host names");
  for (const auto& x : h) {
    if (!x.is_string()) return Invalid("'hosts' must be a list of host names");
    hosts.push_back(x.get<std::string>());
  }
  return hosts;
}

}  // namespace

json Api::AppView(const App& a) {
  json j = ToJson(a);
  j["upstream"] = a.upstream;
  j["environment"] = a.environment;
  auto serving = ctx_.serving.Get(a.id);
  if (serving) {
    // The first instance's fields at the top (one node is the common case), every node's
    // under "instances".
    const Instance& first = serving->first();
    json all = json::array();
    for (const auto& i : serving->instances)
      all.push_back({{"instance_id", i.id}, {"node", i.node}, {"pid", i.pid}, {"port", i.port}});
    j["serving"] = {{"instance_id", first.id},        {"pid", first.pid},   {"port", first.port},
                    {"release_id", first.release_id}, {"node", first.node}, {"instances", all}};
  } else {
    j["serving"] = nullptr;
  }
  if (a.current_release_id) {
    if (auto r = ctx_.store.GetRelease(*a.current_release_id); r.ok())
      j["release"] = {{"number", r->number}, {"commit", r->commit}};
  }
  return j;
}

HttpResponse Api::ListApps(Call&) {
  auto apps = ctx_.store.ListApps();
  if (!apps.ok()) return Error(apps.status());
  json arr = json::array();
  for (const auto& a : *apps) arr.push_back(AppView(a));
  return Json(200, {{"apps", arr}});
}

HttpResponse Api::CreateApp(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  App app;
  auto name = StringField(*body, "name", true);
  auto repo = StringField(*body, "repo", true);
  auto branch = StringField(*body, "branch", false);
  auto secret = StringField(*body, "secret", true);
  auto prefix = StringField(*body, "path_prefix", false);
  auto upstream = StringField(*body, "upstream", false);
  auto environment = StringField(*body, "environment", false);
  auto hosts = Hosts(*body);
  for (auto* f : {&name, &repo, &branch, &secret, &prefix, &upstream, &environment})
    if (!f->ok()) return Error(f->status());
  if (!hosts.ok()) return Error(hosts.status());
  // The sandboxes' own apps are named sandbox-<sandbox>-<service>: a user's app there
  // would take a future sandbox's name.
  if (name->rfind("sandbox-", 0) == 0)
    return Error(Invalid("app names starting with 'sandbox-' are kept for sandboxes' apps"));
  app.name = *name;
  app.repo = *repo;
  app.branch = *branch;
  app.secret = *secret;
  app.path_prefix = *prefix;
  app.hosts = *hosts;
  app.upstream = *upstream;
  app.environment = *environment;
  auto created = controller_.CreateApp(app, c.actor());
  if (!created.ok()) return Error(created.status());
  return Json(201, AppView(*created));
}

// PATCH {upstream?, environment?}: "" or null clears one; a field left out stays.
HttpResponse Api::ChangeApp(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  std::optional<std::string> upstream, environment;
  for (const auto& [key, value] : body->items()) {
    if (key != "upstream" && key != "environment")
      return Error(400, "invalid",
                   "unknown field '" + key.substr(0, 64) + "' (expected upstream, environment)");
    if (!value.is_null() && !value.is_string())
      return Error(400, "invalid", "'" + key + "' must be a string (or null to clear it)");
    (key == "upstream" ? upstream : environment) = value.is_null() ? "" : value.get<std::string>();
  }
  if (!upstream && !environment)
    return Error(400, "invalid", "nothing to change: give upstream and/or environment");
  auto app = controller_.ChangeAppSettings(c.params[0], upstream, environment, c.actor());
  if (!app.ok()) return Error(app.status());
  return Json(200, AppView(*app));
}

HttpResponse Api::ShowApp(Call& c) {
  auto app = ctx_.store.GetApp(c.params[0]);
  if (!app.ok()) return Error(app.status());
  return Json(200, AppView(*app));
}

// kConflict while a sandbox owns the app (it goes with its sandbox) or names it as a service
// (the sandbox would lose its upstream and its branch's repository). Ok otherwise.
Status Api::AppInUse(const std::string& name) {
  if (!sandboxes_) return Status::Ok();
  auto app = ctx_.store.GetApp(name);
  if (!app.ok()) return app.status();
  if (!app->sandbox.empty() && sandboxes_->Get(app->sandbox).ok())
    return Conflict("app '" + name + "' belongs to sandbox '" + app->sandbox +
                    "': slipway sandbox delete " + app->sandbox);
  SandboxFilter with_service;
  with_service.service = name;
  auto users_of = sandboxes_->List(with_service);
  if (!users_of.ok()) return users_of.status();
  std::string users;
  for (const auto& s : *users_of) users += (users.empty() ? "" : ", ") + s.name;
  if (!users.empty())
    return Conflict("app '" + name + "' is a service of sandbox(es) " + users +
                    ": delete them first");
  return Status::Ok();
}

HttpResponse Api::DeleteApp(Call& c) {
  if (auto s = AppInUse(c.params[0]); !s.ok()) return Error(s);
  if (auto s = controller_.DeleteApp(c.params[0], c.actor()); !s.ok()) return Error(s);
  return Json(200, {{"deleted", c.params[0]}});
}

HttpResponse Api::CreateDeployment(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto ref = StringField(*body, "ref", false);
  if (!ref.ok()) return Error(ref.status());
  std::vector<std::string> nodes;
  if (body->contains("nodes")) {
    const json& n = (*body)["nodes"];
    if (!n.is_array() || n.size() > 32)
      return Error(400, "invalid", "nodes: expected a list of at most 32 node labels");
    for (const auto& l : n) {
      if (!l.is_string()) return Error(400, "invalid", "nodes: each label must be a string");
      nodes.push_back(l.get<std::string>());
    }
  }
  Actor actor = c.actor();
  actor.git = auth_.GitCredentialsFor(c.principal);
  auto d = controller_.Deploy(c.params[0], *ref, actor, "manual", "", nullptr, nodes);
  if (!d.ok()) return Error(d.status());
  return Json(201, ToJson(*d));
}

HttpResponse Api::ListAppDeployments(Call& c) {
  return ListDeploymentsOf(c.req, c.params[0]);
}

HttpResponse Api::ListDeployments(Call& c) {
  return ListDeploymentsOf(c.req, c.req.Query("app"));
}

HttpResponse Api::ListDeploymentsOf(HttpRequest& req, const std::string& app_name) {
  DeploymentFilter f;
  if (!app_name.empty()) {
    auto app = ctx_.store.GetApp(app_name);
    if (!app.ok()) return Error(app.status());
    f.app_id = app->id;
  }
  if (auto s = req.Query("status"); !s.empty()) {
    f.status = DeployStatusFromString(s);
    if (!f.status) return Error(400, "invalid", "unknown status '" + s.substr(0, 32) + "'");
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

HttpResponse Api::ListReleases(Call& c) {
  auto app = ctx_.store.GetApp(c.params[0]);
  if (!app.ok()) return Error(app.status());
  auto releases = ctx_.store.ListReleases(app->id, false);
  if (!releases.ok()) return Error(releases.status());
  json arr = json::array();
  for (const auto& r : *releases) arr.push_back(ToJson(r, app->current_release_id));
  return Json(200, {{"releases", arr}});
}

HttpResponse Api::RollbackApp(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  std::optional<std::int64_t> number;
  if (body->contains("release") && !(*body)["release"].is_null()) {
    if (!(*body)["release"].is_number_integer())
      return Error(400, "invalid", "'release' must be a release number");
    number = (*body)["release"].get<std::int64_t>();
  }
  auto d = controller_.Rollback(c.params[0], number, c.actor());
  if (!d.ok()) return Error(d.status());
  return Json(201, ToJson(*d));
}

HttpResponse Api::StopApp(Call& c) {
  if (auto s = controller_.StopApp(c.params[0], c.actor()); !s.ok()) return Error(s);
  return Json(200, {{"stopped", c.params[0]}});
}

HttpResponse Api::StartApp(Call& c) {
  return Lifecycle(c, "start");
}

HttpResponse Api::RestartApp(Call& c) {
  return Lifecycle(c, "restart");
}

HttpResponse Api::Lifecycle(Call& c, const std::string& verb) {
  auto d = controller_.StartApp(c.params[0], verb == "restart", c.actor());
  if (!d.ok()) return Error(d.status());
  return Json(201, ToJson(*d));
}

Result<Deployment> Api::FindDeployment(const std::string& id_text) {
  std::int64_t id;
  if (!ParseInt(id_text, id)) return Invalid("deployment id must be a number");
  return ctx_.store.GetDeployment(id);
}

HttpResponse Api::ShowDeployment(Call& c) {
  auto d = FindDeployment(c.params[0]);
  if (!d.ok()) return Error(d.status());
  return Json(200, ToJson(*d));
}

HttpResponse Api::CancelDeployment(Call& c) {
  auto d = FindDeployment(c.params[0]);
  if (!d.ok()) return Error(d.status());
  if (auto s = controller_.Cancel(d->id, c.actor()); !s.ok()) return Error(s);
  return Json(202, {{"cancelling", d->id}});
}

// One page of events. "done" only once the reader has everything: the status is read first
// (a deployment writes its last event before its terminal status), then the events.
// `*ready` says whether a long poll should answer with it now (events, done, or an error).
HttpResponse Api::EventsPage(std::int64_t id, std::int64_t after, std::int64_t limit, bool* ready) {
  auto now = ctx_.store.GetDeployment(id);
  auto events = ctx_.store.ListEvents(id, after, static_cast<int>(limit));
  *ready = true;
  if (!events.ok()) return Error(events.status());
  json arr = json::array();
  std::int64_t last = after;
  std::size_t bytes = 0;
  bool cut = false;  // a page holds at most ~1 MiB of text, whatever `limit` says
  for (const auto& e : *events) {
    if (bytes > kMaxPageBytes) {
      cut = true;
      break;
    }
    bytes += e.text.size();
    arr.push_back(ToJson(e));
    last = e.seq;
  }
  bool ended = now.ok() && IsTerminal(now->status);
  bool done = ended && !cut && static_cast<std::int64_t>(events->size()) < limit;
  *ready = !arr.empty() || done;
  return Json(200, {{"events", arr},
                    {"next", last},
                    {"status", now.ok() ? ToString(now->status) : "unknown"},
                    {"done", done}});
}

// Long poll: events after `after`; with `wait` (seconds, max 30) the answer waits, on the
// server's event loop and not on a worker, until one arrives or the deployment has ended.
HttpResponse Api::Events(Call& c) {
  auto d = FindDeployment(c.params[0]);
  if (!d.ok()) return Error(d.status());
  std::int64_t after = 0, wait = 0, limit = 500;
  const auto& q = c.req;
  if (!q.Query("after").empty() && !ParseInt(q.Query("after"), after))
    return Error(400, "invalid", "after must be a number");
  if (!q.Query("wait").empty() && (!ParseInt(q.Query("wait"), wait) || wait > 30))
    return Error(400, "invalid", "wait must be 0..30 seconds");
  if (!q.Query("limit").empty() &&
      (!ParseInt(q.Query("limit"), limit) || limit < 1 || limit > 5000))
    return Error(400, "invalid", "limit must be 1..5000");
  std::int64_t id = d->id;
  bool ready = false;
  HttpResponse first = EventsPage(id, after, limit, &ready);
  if (wait == 0 || ready || IsTerminal(d->status)) return first;
  HttpResponse r;
  r.deferred = std::make_shared<net::DeferredResponse>();
  r.deferred->notifier = &ctx_.events;
  r.deferred->topic = id;
  r.deferred->wait = std::chrono::seconds(wait);
  r.deferred->poll = [this, id, after, limit](bool deadline) -> std::optional<HttpResponse> {
    bool page_ready = false;
    HttpResponse res = EventsPage(id, after, limit, &page_ready);
    if (deadline || page_ready || ctx_.events.closed()) return res;
    return std::nullopt;
  };
  return r;
}

// Server-sent events; resumes after `after` or the Last-Event-ID header, ends as soon as a
// finished deployment has sent its last event.
HttpResponse Api::Stream(Call& c) {
  auto d = FindDeployment(c.params[0]);
  if (!d.ok()) return Error(d.status());
  std::int64_t after = 0;
  std::string from = c.req.Header("last-event-id");
  if (from.empty()) from = c.req.Query("after");
  if (!from.empty() && !ParseInt(from, after))
    return Error(400, "invalid", "after must be a number");
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.streamed = std::make_shared<net::StreamedResponse>();
  r.streamed->notifier = &ctx_.events;
  r.streamed->topic = d->id;
  auto cursor = std::make_shared<std::int64_t>(after);
  auto until = std::chrono::steady_clock::now() + kStreamLifetime;
  std::int64_t id = d->id;
  std::string bearer = Bearer(c.req), cookie = SessionCookie(c.req);
  r.streamed->next = [this, id, cursor, until, bearer, cookie](bool idle) {
    net::StreamChunk chunk;
    // A token revoked (or a session ended) while the stream is open ends the stream.
    if (!auth_.Authenticate(bearer, cookie).ok()) return net::StreamChunk{"", true};
    auto now = ctx_.store.GetDeployment(id);  // status first: see EventsPage
    auto events = ctx_.store.ListEvents(id, *cursor, 500);
    if (!events.ok() || !now.ok()) return net::StreamChunk{"", true};
    bool cut = false;
    for (const auto& e : *events) {
      if (chunk.data.size() > kMaxPageBytes) {
        cut = true;  // the rest comes with the next call, which a wake or the writer triggers
        break;
      }
      chunk.data += fmt::format("id: {}\nevent: deployment\ndata: {}\n\n", e.seq,
                                ToJson(e).dump(-1, ' ', false, json::error_handler_t::replace));
      *cursor = e.seq;
    }
    if (cut || events->size() == 500) ctx_.events.Poke(id);  // more to send: come back at once
    if (IsTerminal(now->status) && events->size() < 500 && !cut) {
      chunk.data +=
          fmt::format("event: end\ndata: {}\n\n", json{{"status", ToString(now->status)}}.dump());
      chunk.done = true;
    } else if (ctx_.events.closed() || std::chrono::steady_clock::now() > until) {
      chunk.done = true;
    } else if (chunk.data.empty() && idle) {
      chunk.data = ": keep-alive\n\n";
    }
    return chunk;
  };
  return r;
}

}  // namespace slipway::api
