// The Sandboxes service: records, lifecycle and templates (see sandboxes.h). Ports and
// routes live in sandbox_gateway.cpp, statuses and expiry in sandbox_janitor.cpp.
#include "control/sandboxes.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "control/sandbox_impl.h"
#include "control/validation.h"
#include "crypto/crypto.h"
#include "git/git.h"

namespace slipway {

using nlohmann::json;

std::string SandboxAppName(const std::string& sandbox, const std::string& service) {
  return "sandbox-" + sandbox + "-" + service;
}
std::string SandboxOwner(const std::string& sandbox) {
  return "sandbox/" + sandbox;
}
std::string SandboxNetwork(const std::string& sandbox) {
  return "sandbox-" + sandbox;
}
std::string SandboxSet(const std::string& sandbox) {
  return "sandbox/" + sandbox;
}
std::string ServiceSet(const std::string& sandbox, const std::string& service) {
  return "sandbox/" + sandbox + "/" + service;
}

namespace {

constexpr std::size_t kMaxServices = 32;
constexpr long long kMaxExpiryMs = 10LL * 365 * 24 * 3600 * 1000;

const SandboxService* FindService(const Sandbox& s, const std::string& name) {
  for (const auto& svc : s.services)
    if (svc.name == name) return &svc;
  return nullptr;
}

Status CheckLimits(const SandboxSpec& spec) {
  if (spec.memory_bytes < 0 || spec.cpus < 0 || spec.cpus > 1024)
    return Invalid("limits: memory must be positive and cpus between 0 and 1024");
  long long memory = 0;
  double cpus = 0;
  for (const auto& svc : spec.services) {
    if (svc.memory_bytes < 0 || svc.cpus < 0 || svc.cpus > 1024)
      return Invalid("service " + svc.name + ": memory must be positive, cpus 0..1024");
    memory += svc.memory_bytes;
    cpus += svc.cpus;
  }
  if (spec.memory_bytes > 0 && memory > spec.memory_bytes)
    return Invalid("limits: the services' memory adds up to more than the sandbox's");
  if (spec.cpus > 0 && cpus > spec.cpus + 1e-9)
    return Invalid("limits: the services' cpus add up to more than the sandbox's");
  return Status::Ok();
}

// One service of a create request: its app must be a shared app, a branch service needs a
// valid branch, an upstream service an app with an upstream URL.
Status CheckService(Store& store, const std::string& sandbox, const SandboxService& svc) {
  auto app = store.GetApp(svc.name);
  if (!app.ok()) return NotFound("service " + svc.name + ": no such app");
  if (!app->sandbox.empty()) return Invalid("service " + svc.name + ": an app of a sandbox");
  if (auto s = ValidateAppName(SandboxAppName(sandbox, svc.name)); !s.ok())
    return Invalid("sandbox and service names together are too long (" +
                   SandboxAppName(sandbox, svc.name) + ")");
  if (svc.branch.empty()) {
    if (app->upstream.empty())
      return Invalid("service " + svc.name +
                     ": the app has no upstream URL (give it a branch, or set one with "
                     "`slipway apps set " +
                     svc.name + " --upstream URL`)");
    return Status::Ok();
  }
  if (auto s = git::ValidateRef(svc.branch); !s.ok())
    return Invalid("service " + svc.name + ": branch: " + s.message());
  if (!svc.commit.empty()) {
    if (auto s = git::ValidateRef(svc.commit); !s.ok())
      return Invalid("service " + svc.name + ": commit: " + s.message());
  }
  return Status::Ok();
}

}  // namespace

Sandboxes::Sandboxes(Context& ctx, Controller& controller, Environments& environments,
                     PortHost& ports, SandboxOptions options)
    : impl_(std::make_unique<Impl>(ctx, controller, environments, ports, std::move(options))) {}

Sandboxes::~Sandboxes() {
  Stop();
}

void Sandboxes::Start() {
  auto all = impl_->ctx.store.ListSandboxes();
  if (!all.ok()) spdlog::error("sandboxes: cannot list them: {}", all.status().ToString());
  if (all.ok()) {
    std::lock_guard lock(impl_->mu);
    for (const auto& s : *all) {
      impl_->ReopenPorts(s);
      if (auto st = impl_->Publish(s); !st.ok())
        spdlog::error("sandbox {}: routes: {}", s.name, st.ToString());
    }
  }
  impl_->janitor = std::thread([this] { impl_->JanitorLoop(); });
}

void Sandboxes::Stop() {
  {
    std::lock_guard lock(impl_->stop_mu);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  if (impl_->janitor.joinable()) impl_->janitor.join();
}

Status Sandboxes::Impl::Save(Sandbox& s) {
  s.updated_ms = Now();
  return ctx.store.UpdateSandbox(s);
}

void Sandboxes::Impl::Audit(const Actor& actor, const std::string& action, const Sandbox& s,
                            const json& detail, const std::string& outcome) {
  json d = detail;
  d["sandbox"] = s.name;
  d["environment"] = s.environment;
  json services = json::array();
  for (const auto& svc : s.services) {
    json one = {{"service", svc.name}, {"route", svc.route}};
    if (!svc.branch.empty()) {
      one["branch"] = svc.branch;
      if (auto app = ctx.store.GetApp(svc.name); app.ok())
        one["repository"] = git::RedactUrl(app->repo);
    }
    services.push_back(one);
  }
  d["services"] = services;
  AuditEvent e;
  e.ts_ms = Now();
  e.actor = actor.name;
  e.action = action;
  e.target = "sandbox/" + s.name;
  e.detail_json = d.dump(-1, ' ', false, json::error_handler_t::replace);
  e.source = actor.source;
  e.outcome = outcome;
  if (auto st = ctx.store.AppendAudit(e); !st.ok())
    spdlog::error("audit {}: {}", action, st.ToString());
}

Result<Sandbox> Sandboxes::Impl::Build(SandboxSpec spec) {
  if (auto st = ValidateSandboxName(spec.name); !st.ok()) return st;
  if (spec.services.empty()) return Invalid("services: at least one (--service SVC=branch:BR)");
  if (spec.services.size() > kMaxServices) return Invalid("services: at most 32");
  std::set<std::string> names;
  for (const auto& svc : spec.services) {
    if (!names.insert(svc.name).second) return Invalid("service " + svc.name + ": given twice");
    if (auto st = CheckService(ctx.store, spec.name, svc); !st.ok()) return st;
  }
  if (auto st = CheckLimits(spec); !st.ok()) return st;
  if (spec.entry.empty()) spec.entry = spec.services.front().name;
  if (!names.count(spec.entry))
    return Invalid("entry: " + spec.entry + " is not one of the services");
  if (spec.expire_after_ms < 0 || spec.expire_after_ms > kMaxExpiryMs)
    return Invalid("expire_after: at most ten years");
  if (!spec.environment.empty()) {
    if (auto env = envs.Get(spec.environment); !env.ok()) return env.status();
  }
  Sandbox s;
  s.name = spec.name;
  s.template_name = spec.template_name;
  s.environment = spec.environment;
  s.entry = spec.entry;
  s.services = spec.services;
  for (auto& svc : s.services) {
    svc.port = 0;
    svc.route = svc.branch.empty() ? "upstream" : "sandbox";
  }
  s.memory_bytes = spec.memory_bytes;
  s.cpus = spec.cpus;
  s.expire_after_ms = spec.expire_after_ms > 0 ? spec.expire_after_ms : opt.default_expiry_ms;
  s.created_ms = s.updated_ms = s.last_active_ms = Now();
  return s;
}

Status Sandboxes::Impl::CreateApps(const Sandbox& s, const Actor& actor) {
  // Checked before any is made: `qa` with service `login-account` and `qa-login` with
  // `account` name the same app, which stays the other sandbox's.
  for (const auto& svc : s.services)
    if (!svc.branch.empty() && ctx.store.GetApp(SandboxAppName(s.name, svc.name)).ok())
      return Conflict("app '" + SandboxAppName(s.name, svc.name) +
                      "' already exists (another sandbox's): choose another sandbox name");
  for (const auto& svc : s.services) {
    if (svc.branch.empty()) continue;
    auto base = ctx.store.GetApp(svc.name);
    if (!base.ok()) return base.status();
    App app;
    app.name = SandboxAppName(s.name, svc.name);
    app.repo = base->repo;
    app.branch = svc.branch;
    app.secret = crypto::RandomToken("whsec_");
    app.sandbox = s.name;
    app.environment = s.environment.empty() ? base->environment : s.environment;
    if (auto created = controller.CreateApp(app, actor); !created.ok()) return created.status();
  }
  return Status::Ok();
}

Status Sandboxes::Impl::QueueDeployments(Sandbox& s, const std::string& only, const Actor& actor) {
  for (auto& svc : s.services) {
    if (svc.branch.empty() || (!only.empty() && svc.name != only)) continue;
    const std::string ref = svc.commit.empty() ? svc.branch : svc.commit;
    auto d = controller.Deploy(SandboxAppName(s.name, svc.name), ref, actor, "sandbox");
    if (!d.ok()) return d.status();
  }
  return Status::Ok();
}

Result<Sandbox> Sandboxes::Impl::CreateLocked(SandboxSpec spec, const Actor& actor,
                                              const std::map<std::string, std::string>& routes) {
  auto built = Build(std::move(spec));
  if (!built.ok()) return built.status();
  Sandbox s = *built;
  s.created_by = actor.name;
  for (auto& svc : s.services)
    if (auto it = routes.find(svc.name); it != routes.end() && !svc.branch.empty())
      svc.route = it->second;
  auto created = ctx.store.CreateSandbox(s);
  if (!created.ok()) {
    if (created.status().code() == Code::kConflict)
      return Conflict("sandbox '" + s.name + "' already exists");
    return created.status();
  }
  s = *created;
  Status st = OpenPorts(s);
  if (st.ok()) st = CreateApps(s, actor);
  if (st.ok()) st = Publish(s);
  bool builds = std::any_of(s.services.begin(), s.services.end(),
                            [](const SandboxService& v) { return !v.branch.empty(); });
  s.status = builds ? "deploying" : "running";
  if (st.ok()) st = Save(s);
  if (st.ok()) st = QueueDeployments(s, "", actor);
  if (!st.ok()) {
    (void)RemoveLocked(s, actor);
    Audit(actor, "sandbox.create", s, json::object(), "failed: " + st.ToString());
    return st;
  }
  Audit(actor, "sandbox.create", s, {{"template", s.template_name}, {"port", s.port}});
  return s;
}

// The sandbox's own apps (an app of that name that is not the sandbox's is never touched).
std::vector<App> Sandboxes::Impl::OwnApps(const Sandbox& s) {
  std::vector<App> apps;
  for (const auto& svc : s.services) {
    if (svc.branch.empty()) continue;
    auto rec = ctx.store.GetApp(SandboxAppName(s.name, svc.name));
    if (rec.ok() && rec->sandbox == s.name) apps.push_back(*rec);
  }
  return apps;
}

// Cancels every unfinished deployment of the sandbox's apps and waits (up to 60 s) until none
// runs. One that has switched already runs to its end (watch, drain), which takes seconds.
// kConflict when one still runs then: nothing has been removed.
Status Sandboxes::Impl::SettleDeployments(const std::vector<App>& apps, const Actor& actor) {
  for (int attempt = 0; attempt < 120; ++attempt) {
    bool running = false;
    for (const auto& app : apps) {
      DeploymentFilter f;
      f.app_id = app.id;
      f.limit = 20;
      auto ds = ctx.store.ListDeployments(f);
      if (!ds.ok()) return ds.status();
      for (const auto& d : *ds) {
        if (IsTerminal(d.status)) continue;
        running = true;
        if (attempt == 0) (void)controller.Cancel(d.id, actor);
      }
    }
    if (!running) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return Conflict("a deployment of the sandbox still runs: try again when it ends");
}

// Everything a sandbox holds, in an order that leaves no route to a stopped instance: routes
// first, then apps (instances, containers, networks, files), ports, the record. Deployments
// are settled before anything goes, so a refused delete leaves the sandbox whole; if an app
// cannot be removed, the ports stay reserved and the record stays, for a retry.
Status Sandboxes::Impl::RemoveLocked(const Sandbox& s, const Actor& actor) {
  const std::vector<App> apps = OwnApps(s);
  if (auto st = SettleDeployments(apps, actor); !st.ok()) return st;
  Unpublish(s.name);
  Status result = Status::Ok();
  for (const auto& app : apps) {
    Status st = Status::Ok();
    for (int attempt = 0; attempt < 3; ++attempt) {  // a deployment queued meanwhile
      st = controller.DeleteApp(app.name, actor);
      if (st.code() != Code::kConflict) break;
      (void)SettleDeployments({app}, actor);
    }
    if (!st.ok() && st.code() != Code::kNotFound) result = st;
  }
  if (!result.ok()) return result;
  ClosePorts(s);
  (void)ctx.store.ReleasePorts(SandboxOwner(s.name));
  {
    auto it = rendered.lower_bound(s.name + "/");
    while (it != rendered.end() && it->first.rfind(s.name + "/", 0) == 0) it = rendered.erase(it);
  }
  if (auto st = ctx.store.DeleteSandbox(s.name); !st.ok() && st.code() != Code::kNotFound)
    return st;
  return Status::Ok();
}

namespace {

// Fills what `spec` leaves unset from a template's body: the services when none are given,
// the environment, entry and limits. kInvalid when a field has the wrong type.
Status FillFromTemplate(const json& body, SandboxSpec& spec) {
  try {
    if (!body.is_object()) return Invalid("the template's body is not an object");
    if (spec.services.empty() && body.contains("services"))
      for (const auto& j : body.at("services"))
        spec.services.push_back({j.value("name", ""), j.value("branch", ""), "sandbox", 0, "",
                                 j.value("memory_bytes", 0LL), j.value("cpus", 0.0)});
    if (spec.environment.empty()) spec.environment = body.value("environment", "");
    if (spec.entry.empty()) spec.entry = body.value("entry", "");
    if (spec.memory_bytes == 0) spec.memory_bytes = body.value("memory_bytes", 0LL);
    if (spec.cpus == 0) spec.cpus = body.value("cpus", 0.0);
  } catch (const json::exception&) {
    return Invalid(
        "template: a field has the wrong type (names and branches are strings, "
        "memory_bytes an integer, cpus a number)");
  }
  return Status::Ok();
}

}  // namespace

Result<Sandbox> Sandboxes::Create(SandboxSpec spec, const Actor& actor) {
  if (!spec.template_name.empty()) {
    auto t = impl_->ctx.store.GetTemplate(spec.template_name);
    if (!t.ok()) return NotFound("template '" + spec.template_name + "' does not exist");
    json body = json::parse(t->body_json, nullptr, false);
    if (auto st = FillFromTemplate(body, spec); !st.ok()) return st;
  }
  std::lock_guard lock(impl_->mu);
  return impl_->CreateLocked(std::move(spec), actor, {});
}

Result<Sandbox> Sandboxes::Get(const std::string& name) {
  if (auto st = ValidateSandboxName(name); !st.ok()) return st;
  auto s = impl_->ctx.store.GetSandbox(name);
  if (!s.ok() && s.status().code() == Code::kNotFound)
    return NotFound("sandbox '" + name + "' does not exist");
  return s;
}

Result<std::vector<Sandbox>> Sandboxes::List(const SandboxFilter& filter) {
  auto all = impl_->ctx.store.ListSandboxes();
  if (!all.ok()) return all.status();
  std::vector<Sandbox> out;
  for (auto& s : *all) {
    if (!filter.status.empty() && s.status != filter.status) continue;
    if (!filter.template_name.empty() && s.template_name != filter.template_name) continue;
    if (!filter.environment.empty() && s.environment != filter.environment) continue;
    if (!filter.service.empty() && !FindService(s, filter.service)) continue;
    out.push_back(std::move(s));
  }
  return out;
}

Status Sandboxes::Delete(const std::string& name, const Actor& actor) {
  std::lock_guard lock(impl_->mu);
  auto s = Get(name);
  if (!s.ok()) return s.status();
  Status st = impl_->RemoveLocked(*s, actor);
  impl_->Audit(actor, "sandbox.delete", *s, json::object(),
               st.ok() ? "ok" : "failed: " + st.ToString());
  return st;
}

Status Sandboxes::Impl::StopApps(const Sandbox& s, const Actor& actor) {
  for (const auto& svc : s.services) {
    if (svc.branch.empty()) continue;
    Status st = controller.StopApp(SandboxAppName(s.name, svc.name), actor);
    // kConflict "nothing runs" is fine; a deployment in progress is not.
    if (!st.ok() && st.message().find("deployment running") != std::string::npos) return st;
  }
  return Status::Ok();
}

Result<Sandbox> Sandboxes::Suspend(const std::string& name, const Actor& actor) {
  std::lock_guard lock(impl_->mu);
  auto s = Get(name);
  if (!s.ok()) return s.status();
  if (s->status == "suspended" || s->status == "expired")
    return Conflict("sandbox '" + name + "' is already " + s->status);
  if (auto st = impl_->StopApps(*s, actor); !st.ok()) {
    impl_->Audit(actor, "sandbox.suspend", *s, json::object(), "failed: " + st.ToString());
    return Conflict("sandbox '" + name + "': " + st.message() + "; try again when it ends");
  }
  s->status = "suspended";
  if (auto st = impl_->Save(*s); !st.ok()) return st;
  impl_->Audit(actor, "sandbox.suspend", *s, json::object());
  return *s;
}

Result<Sandbox> Sandboxes::Resume(const std::string& name, const Actor& actor) {
  std::lock_guard lock(impl_->mu);
  auto s = Get(name);
  if (!s.ok()) return s.status();
  if (s->status != "suspended" && s->status != "expired")
    return Conflict("sandbox '" + name + "' is " + s->status + ", not suspended");
  for (auto& svc : s->services) {
    if (svc.branch.empty()) continue;
    const std::string app = SandboxAppName(name, svc.name);
    auto started = impl_->controller.StartApp(app, false, actor);
    // Never deployed (suspended before its first release): deploy it now.
    if (!started.ok() && started.status().code() == Code::kNotFound)
      (void)impl_->QueueDeployments(*s, svc.name, actor);
  }
  bool builds = std::any_of(s->services.begin(), s->services.end(),
                            [](const SandboxService& v) { return !v.branch.empty(); });
  s->status = builds ? "deploying" : "running";
  s->expired_ms = 0;
  s->last_active_ms = impl_->Now();
  if (auto st = impl_->Save(*s); !st.ok()) return st;
  impl_->Audit(actor, "sandbox.resume", *s, json::object());
  return *s;
}

Result<Sandbox> Sandboxes::Deploy(const std::string& name, const std::string& service,
                                  const Actor& actor) {
  std::lock_guard lock(impl_->mu);
  auto s = Get(name);
  if (!s.ok()) return s.status();
  if (!service.empty()) {
    const SandboxService* svc = FindService(*s, service);
    if (!svc) return NotFound("sandbox '" + name + "' has no service " + service);
    if (svc->branch.empty()) return Invalid("service " + service + " is served by its upstream");
  }
  if (s->status == "suspended" || s->status == "expired")
    return Conflict("sandbox '" + name + "' is " + s->status + ": resume it first");
  for (auto& svc : s->services)
    if (service.empty() || svc.name == service) svc.commit.clear();  // the branch's tip now
  s->status = "deploying";
  s->last_active_ms = impl_->Now();
  if (auto st = impl_->QueueDeployments(*s, service, actor); !st.ok()) return st;
  if (auto st = impl_->Save(*s); !st.ok()) return st;
  impl_->Audit(actor, "sandbox.deploy", *s, {{"service", service}});
  return *s;
}

Result<Sandbox> Sandboxes::Impl::Flip(Sandbox s, const std::string& service, const std::string& to,
                                      const Actor& actor) {
  SandboxService* svc = nullptr;
  for (auto& v : s.services)
    if (v.name == service) svc = &v;
  if (!svc) return NotFound("sandbox '" + s.name + "' has no service " + service);
  if (to != "sandbox" && to != "upstream") return Invalid("to: sandbox or upstream");
  if (to == "sandbox" && svc->branch.empty())
    return Invalid("service " + service + " has no branch in this sandbox: nothing to route to");
  if (to == "upstream") {
    auto app = ctx.store.GetApp(service);
    if (!app.ok() || app->upstream.empty())
      return Invalid("service " + service + ": the app has no upstream URL");
  }
  const std::string before = svc->route;
  svc->route = to;
  if (auto st = Publish(s); !st.ok()) return st;
  s.last_active_ms = Now();
  RenderConfig(s, false);
  if (auto st = Save(s); !st.ok()) return st;
  Audit(actor, "sandbox.route", s, {{"service", service}, {"from", before}, {"to", to}});
  return s;
}

Result<Sandbox> Sandboxes::Route(const std::string& name, const std::string& service,
                                 const std::string& to, const Actor& actor) {
  std::lock_guard lock(impl_->mu);
  auto s = Get(name);
  if (!s.ok()) return s.status();
  return impl_->Flip(*s, service, to, actor);
}

Result<Sandbox> Sandboxes::Clone(const std::string& name, const std::string& new_name,
                                 const Actor& actor) {
  std::lock_guard lock(impl_->mu);
  auto s = Get(name);
  if (!s.ok()) return s.status();
  SandboxSpec spec;
  spec.name = new_name;
  spec.template_name = s->template_name;
  spec.environment = s->environment;
  spec.entry = s->entry;
  spec.services = s->services;
  spec.memory_bytes = s->memory_bytes;
  spec.cpus = s->cpus;
  spec.expire_after_ms = s->expire_after_ms;
  std::map<std::string, std::string> routes;
  for (const auto& svc : s->services) routes[svc.name] = svc.route;
  auto made = impl_->CreateLocked(std::move(spec), actor, routes);
  if (made.ok()) impl_->Audit(actor, "sandbox.clone", *made, {{"from", name}});
  return made;
}

Result<SandboxSnapshot> Sandboxes::Snapshot(const std::string& name, const Actor& actor) {
  std::lock_guard lock(impl_->mu);
  auto s = Get(name);
  if (!s.ok()) return s.status();
  json services = json::array();
  for (const auto& svc : s->services) {
    json one = {{"name", svc.name},   {"branch", svc.branch},
                {"route", svc.route}, {"memory_bytes", svc.memory_bytes},
                {"cpus", svc.cpus},   {"commit", ""}};
    if (!svc.branch.empty()) {
      auto app = impl_->ctx.store.GetApp(SandboxAppName(name, svc.name));
      if (app.ok() && app->current_release_id)
        if (auto r = impl_->ctx.store.GetRelease(*app->current_release_id); r.ok())
          one["commit"] = r->commit;
      if (one["commit"] == "")
        return Conflict("service " + svc.name +
                        " has no release yet: snapshot once it is deployed");
    }
    services.push_back(one);
  }
  json body = {{"services", services},
               {"entry", s->entry},
               {"environment", s->environment},
               {"memory_bytes", s->memory_bytes},
               {"cpus", s->cpus},
               {"expire_after_ms", s->expire_after_ms}};
  if (!s->environment.empty())
    if (auto env = impl_->envs.Get(s->environment); env.ok())
      body["environment_content"] = {
          {"vars", env->vars}, {"secrets", env->secrets}, {"files", env->files}};
  SandboxSnapshot snap;
  snap.sandbox = name;
  snap.body_json = body.dump(-1, ' ', false, json::error_handler_t::replace);
  snap.created_by = actor.name;
  snap.created_ms = impl_->Now();
  auto made = impl_->ctx.store.CreateSnapshot(snap);
  if (made.ok()) impl_->Audit(actor, "sandbox.snapshot", *s, {{"snapshot", made->id}});
  return made;
}

Result<std::vector<SandboxSnapshot>> Sandboxes::Snapshots(const std::string& name) {
  if (!name.empty()) {
    if (auto st = ValidateSandboxName(name); !st.ok()) return st;
  }
  return impl_->ctx.store.ListSnapshots(name);
}

Result<Sandbox> Sandboxes::Restore(std::int64_t snapshot_id, const std::string& new_name,
                                   const Actor& actor) {
  auto snap = impl_->ctx.store.GetSnapshot(snapshot_id);
  if (!snap.ok()) return NotFound("snapshot " + std::to_string(snapshot_id) + " does not exist");
  json body = json::parse(snap->body_json, nullptr, false);
  if (!body.is_object()) return Internal("snapshot " + std::to_string(snapshot_id) + " is damaged");
  SandboxSpec spec;
  spec.name = new_name.empty() ? snap->sandbox : new_name;
  spec.entry = body.value("entry", "");
  spec.environment = body.value("environment", "");
  spec.memory_bytes = body.value("memory_bytes", 0LL);
  spec.cpus = body.value("cpus", 0.0);
  spec.expire_after_ms = body.value("expire_after_ms", 0LL);
  std::map<std::string, std::string> routes;
  for (const auto& j : body.value("services", json::array())) {
    spec.services.push_back({j.value("name", ""), j.value("branch", ""), "sandbox", 0,
                             j.value("commit", ""), j.value("memory_bytes", 0LL),
                             j.value("cpus", 0.0)});
    routes[j.value("name", "")] = j.value("route", "sandbox");
  }
  // The environment as it was, when it has gone since: recreated under the snapshot's name.
  if (!spec.environment.empty() && !impl_->envs.Get(spec.environment).ok()) spec.environment = "";
  std::lock_guard lock(impl_->mu);
  auto made = impl_->CreateLocked(std::move(spec), actor, routes);
  if (made.ok()) impl_->Audit(actor, "sandbox.restore", *made, {{"snapshot", snapshot_id}});
  return made;
}

json Sandboxes::View(const Sandbox& s) {
  json services = json::array();
  for (const auto& svc : s.services)
    services.push_back({{"name", svc.name},
                        {"branch", svc.branch},
                        {"mode", svc.branch.empty() ? "upstream" : "branch"},
                        {"route", svc.route},
                        {"port", svc.port},
                        {"commit", svc.commit},
                        {"memory_bytes", svc.memory_bytes},
                        {"cpus", svc.cpus}});
  json config = json::parse(s.config_json, nullptr, false);
  return {{"name", s.name},
          {"template", s.template_name},
          {"environment", s.environment},
          {"entry", s.entry},
          {"port", s.port},
          {"status", s.status},
          {"services", services},
          {"memory_bytes", s.memory_bytes},
          {"cpus", s.cpus},
          {"expire_after_ms", s.expire_after_ms},
          {"expires_ms", s.status == "expired" ? 0 : s.last_active_ms + s.expire_after_ms},
          {"created_by", s.created_by},
          {"config", config.is_object() ? config : json::object()},
          {"created_ms", s.created_ms},
          {"updated_ms", s.updated_ms},
          {"last_active_ms", s.last_active_ms},
          {"expired_ms", s.expired_ms}};
}

Result<Injection> Sandboxes::For(const App& app) {
  Injection out;
  if (!app.environment.empty()) {
    auto env = impl_->envs.InjectionOf(app.environment);
    if (!env.ok()) return env.status();
    out = *env;
  }
  if (app.sandbox.empty()) return out;
  auto s = impl_->ctx.store.GetSandbox(app.sandbox);
  if (!s.ok()) return s.status();
  int branches = 0;
  for (const auto& svc : s->services) {
    if (svc.port > 0) out.env[ServiceUrlVar(svc.name)] = impl_->ServiceUrl(svc.port);
    branches += svc.branch.empty() ? 0 : 1;
  }
  out.env["SLIPWAY_SANDBOX"] = s->name;
  for (const auto& svc : s->services) {
    if (svc.branch.empty() || svc.route != "sandbox") continue;
    const std::string peer = SandboxAppName(s->name, svc.name);
    out.container_env[ServiceUrlVar(svc.name)] =
        fmt::format("http://{}:{}", peer, impl_->ContainerPort(peer));
  }
  out.network = SandboxNetwork(s->name);
  for (const auto& svc : s->services) {
    if (SandboxAppName(s->name, svc.name) != app.name) continue;
    out.aliases = {app.name};
    out.memory_bytes = svc.memory_bytes > 0  ? svc.memory_bytes
                       : s->memory_bytes > 0 ? s->memory_bytes / std::max(branches, 1)
                                             : 0;
    out.cpus = svc.cpus > 0 ? svc.cpus : s->cpus > 0 ? s->cpus / std::max(branches, 1) : 0;
  }
  return out;
}

// --- templates ---

Result<SandboxTemplate> Sandboxes::SaveTemplate(const std::string& name, const json& body,
                                                bool create, const Actor& actor) {
  if (auto st = ValidateSandboxName(name); !st.ok())
    return Invalid("template name: " + st.message().substr(st.message().find(':') + 2));
  if (!body.is_object() || !body.contains("services") || !body["services"].is_array() ||
      body["services"].empty() || body["services"].size() > kMaxServices)
    return Invalid("services: 1 to 32 entries of {name, branch}");
  for (const auto& j : body["services"]) {
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string())
      return Invalid("services: each needs a name");
    if (auto app = impl_->ctx.store.GetApp(j["name"].get<std::string>()); !app.ok())
      return NotFound("service " + j["name"].get<std::string>() + ": no such app");
    if (j.contains("branch") &&
        (!j["branch"].is_string() || (!j["branch"].get<std::string>().empty() &&
                                      !git::ValidateRef(j["branch"].get<std::string>()).ok())))
      return Invalid("service " + j["name"].get<std::string>() + ": branch is not a valid ref");
  }
  // What a sandbox made from it would be refused for is refused now (environment, limits,
  // entry, duplicates), not at its first use.
  SandboxSpec probe;
  probe.name = "t";
  if (auto st = FillFromTemplate(body, probe); !st.ok()) return st;
  if (auto built = impl_->Build(probe); !built.ok()) return built.status();
  SandboxTemplate t;
  t.name = name;
  t.body_json = body.dump(-1, ' ', false, json::error_handler_t::replace);
  t.created_by = actor.name;
  t.created_ms = t.updated_ms = impl_->Now();
  AuditEvent e;
  e.ts_ms = t.created_ms;
  e.actor = actor.name;
  e.action = create ? "template.create" : "template.update";
  e.target = "template/" + name;
  e.source = actor.source;
  if (create) {
    auto made = impl_->ctx.store.CreateTemplate(t);
    if (!made.ok() && made.status().code() == Code::kConflict)
      return Conflict("template '" + name + "' already exists");
    if (made.ok()) (void)impl_->ctx.store.AppendAudit(e);
    return made;
  }
  auto old = impl_->ctx.store.GetTemplate(name);
  if (!old.ok()) return NotFound("template '" + name + "' does not exist");
  t.id = old->id;
  t.created_ms = old->created_ms;
  t.created_by = old->created_by;
  if (auto st = impl_->ctx.store.UpdateTemplate(t); !st.ok()) return st;
  (void)impl_->ctx.store.AppendAudit(e);
  return t;
}

Result<SandboxTemplate> Sandboxes::GetTemplate(const std::string& name) {
  auto t = impl_->ctx.store.GetTemplate(name);
  if (!t.ok() && t.status().code() == Code::kNotFound)
    return NotFound("template '" + name + "' does not exist");
  return t;
}

Result<std::vector<SandboxTemplate>> Sandboxes::ListTemplates() {
  return impl_->ctx.store.ListTemplates();
}

Status Sandboxes::DeleteTemplate(const std::string& name, const Actor& actor) {
  auto st = impl_->ctx.store.DeleteTemplate(name);
  if (st.code() == Code::kNotFound) return NotFound("template '" + name + "' does not exist");
  if (!st.ok()) return st;
  AuditEvent e;
  e.ts_ms = impl_->Now();
  e.actor = actor.name;
  e.action = "template.delete";
  e.target = "template/" + name;
  e.source = actor.source;
  (void)impl_->ctx.store.AppendAudit(e);
  return Status::Ok();
}

}  // namespace slipway
