// The sandboxes' janitor (statuses after deployments, config renderings, activity, expiry)
// and their live health (see sandboxes.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "control/instances.h"
#include "control/sandbox_impl.h"
#include "manifest/manifest.h"
#include "net/http_client.h"

namespace slipway {

using nlohmann::json;

namespace {

constexpr auto kTick = std::chrono::seconds(1);

// The status a deploying sandbox reaches once its apps' last deployments are done:
// running when each succeeded, failed when one did not, "" while one is still going.
std::string SettledStatus(Store& store, const Sandbox& s) {
  bool failed = false;
  for (const auto& svc : s.services) {
    if (svc.branch.empty()) continue;
    auto app = store.GetApp(SandboxAppName(s.name, svc.name));
    if (!app.ok()) return "failed";
    DeploymentFilter f;
    f.app_id = app->id;
    f.limit = 1;
    auto last = store.ListDeployments(f);
    if (!last.ok() || last->empty()) return "";
    const Deployment& d = last->front();
    if (!IsTerminal(d.status)) return "";
    if (d.status != DeployStatus::kSucceeded) failed = true;
  }
  return failed ? "failed" : "running";
}

// The status the deployments of a sandbox's apps give it now: deploying while one is queued
// or running (a push to its branch, `sandbox deploy`), then running or failed. Suspended and
// expired sandboxes keep theirs.
std::string LiveStatus(Store& store, const Sandbox& s) {
  if (s.status != "deploying" && s.status != "creating" && s.status != "running" &&
      s.status != "failed")
    return s.status;
  std::string settled = SettledStatus(store, s);
  if (!settled.empty()) return settled;
  return s.status == "creating" ? s.status : "deploying";
}

// User and system CPU seconds of a local process, from /proc; -1 when unknown.
double CpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::atoll(f.c_str());
    if (i == 15) stime = std::atoll(f.c_str());
  }
  return static_cast<double>(utime + stime) / 100.0;  // USER_HZ is 100 on Linux
}

}  // namespace

void Sandboxes::Impl::JanitorLoop() {
  auto next_expiry = ctx.clock.Now();
  for (;;) {
    {
      std::unique_lock lock(stop_mu);
      if (stop_cv.wait_for(lock, kTick, [this] { return stopping; })) return;
    }
    try {
      Tick();
      if (ctx.clock.Now() >= next_expiry) {
        next_expiry = ctx.clock.Now() + opt.janitor_every;
        // JanitorOnce is public on the service; the loop runs the same pass.
        auto all = ctx.store.ListSandboxes();
        if (all.ok())
          for (const auto& s : *all) {
            auto step = DecideExpiry(s, Now(), opt.retention_ms);
            if (step != ExpiryStep::kNone) Expire(s.name);
          }
      }
    } catch (const std::exception& e) {
      spdlog::error("sandbox janitor: {}", e.what());
    } catch (...) {
      spdlog::error("sandbox janitor: unknown exception");
    }
  }
}

void Sandboxes::Impl::Tick() {
  auto all = ctx.store.ListSandboxes();
  if (!all.ok()) return;
  for (auto s : *all) {
    std::lock_guard lock(mu);
    auto fresh = ctx.store.GetSandbox(s.name);  // may have changed or gone meanwhile
    if (!fresh.ok()) continue;
    s = *fresh;
    const std::string before_status = s.status, before_config = s.config_json;
    const long long before_active = s.last_active_ms;
    s.status = LiveStatus(ctx.store, s);
    if (s.status == "running") RenderConfig(s, false);
    std::uint64_t requests = ports.Requests(s.port);
    for (const auto& svc : s.services) requests += ports.Requests(svc.port);
    auto& seen = seen_requests[s.name];
    // Activity is recorded at most once a minute: enough for an expiry counted in days.
    if (requests != seen) {
      seen = requests;
      if (Now() - s.last_active_ms >= 60000) s.last_active_ms = Now();
    }
    if (s.status != before_status || s.config_json != before_config ||
        s.last_active_ms != before_active)
      (void)Save(s);
  }
}

void Sandboxes::Impl::Settle(const std::string& name) {
  // A reader never waits behind a long change (a delete waits for cancelled deployments):
  // when another holds mu, the janitor's next tick settles the sandbox instead.
  std::unique_lock lock(mu, std::try_to_lock);
  if (!lock.owns_lock()) return;
  auto s = ctx.store.GetSandbox(name);
  if (!s.ok()) return;
  std::string settled = LiveStatus(ctx.store, *s);
  if (settled == s->status) return;
  s->status = settled;
  if (settled == "running") RenderConfig(*s, false);  // as the tick does, in the same step
  (void)Save(*s);
}

void Sandboxes::Impl::Expire(const std::string& name) {
  std::lock_guard lock(mu);
  auto s = ctx.store.GetSandbox(name);
  if (!s.ok()) return;
  const Actor janitor = SystemActor("janitor");
  switch (DecideExpiry(*s, Now(), opt.retention_ms)) {
    case ExpiryStep::kNone:
      return;
    case ExpiryStep::kExpire:
      if (auto st = StopApps(*s, janitor); !st.ok()) return;  // a deployment runs: next pass
      s->status = "expired";
      s->expired_ms = Now();
      (void)Save(*s);
      Audit(janitor, "sandbox.expire", *s, {{"idle_ms", Now() - s->last_active_ms}});
      spdlog::info("sandbox {} expired after inactivity", name);
      return;
    case ExpiryStep::kDelete: {
      Status st = RemoveLocked(*s, janitor);
      Audit(janitor, "sandbox.delete", *s, {{"reason", "expired"}},
            st.ok() ? "ok" : "failed: " + st.ToString());
      return;
    }
  }
}

void Sandboxes::JanitorOnce() {
  auto all = impl_->ctx.store.ListSandboxes();
  if (!all.ok()) return;
  for (const auto& s : *all) impl_->Expire(s.name);
}

json Sandboxes::Impl::ServiceState(const Sandbox& s, const SandboxService& svc, ServiceHealth& h) {
  h.name = svc.name;
  h.upstream = svc.route == "upstream";
  json out = {{"name", svc.name},
              {"branch", svc.branch},
              {"route", svc.route},
              {"port", svc.port},
              {"url", ServiceUrl(svc.port)}};
  if (svc.route == "upstream" || svc.branch.empty()) {
    auto app = ctx.store.GetApp(svc.name);
    std::string upstream = app.ok() ? app->upstream : "";
    out["upstream"] = upstream;
    // Probed through the service port: the same path the sandbox's requests take.
    net::ClientRequest req;
    req.target = "/health";
    req.timeout = std::chrono::seconds(2);
    req.max_body = 64 << 10;
    auto res = net::HttpCall({"127.0.0.1", svc.port, "", false}, req);
    h.running = res.ok() && res->status < 500;
    h.healthy = res.ok() && res->status >= 200 && res->status < 300;
    out["state"] = h.running ? "upstream" : "unreachable";
  }
  if (svc.branch.empty()) {
    out["health"] = {{"running", h.running}, {"healthy", h.healthy}};
    return out;
  }
  auto app = ctx.store.GetApp(SandboxAppName(s.name, svc.name));
  if (!app.ok()) return out;
  DeploymentFilter f;
  f.app_id = app->id;
  f.limit = 50;
  int restarts = 0;
  std::string last_status;
  if (auto ds = ctx.store.ListDeployments(f); ds.ok()) {
    for (const auto& d : *ds) restarts += d.type == "restart" || d.type == "recover" ? 1 : 0;
    if (!ds->empty()) {
      last_status = ToString(ds->front().status);
      out["deployment"] = {
          {"id", ds->front().id}, {"status", last_status}, {"error", ds->front().error}};
    }
  }
  if (app->current_release_id)
    if (auto r = ctx.store.GetRelease(*app->current_release_id); r.ok()) out["commit"] = r->commit;
  auto serving = ctx.serving.Get(app->id);
  json health = {{"restarts", restarts}};
  bool instance_ok = false, probe_ok = false;
  if (serving) {
    const Instance& inst = serving->first();
    Agent& agent = ctx.On(inst.node);
    instance_ok = ctx.Reachable(inst.node) && agent.IsRunning(HandleOf(inst));
    std::string path = "/health";
    if (auto r = ctx.store.GetRelease(inst.release_id); r.ok())
      if (auto m = Manifest::FromJson(r->manifest_json); m.ok()) path = m->health_path;
    auto probe =
        instance_ok ? agent.Probe(inst.port, path, std::chrono::seconds(2)) : ProbeResult{};
    probe_ok = probe.healthy();
    health["memory_bytes"] = instance_ok ? agent.MemoryBytes(HandleOf(inst)) : 0;
    if (inst.runtime == "process" && (inst.node.empty() || inst.node == kLocalNode))
      health["cpu_seconds"] = CpuSeconds(inst.pid);
    health["health_status"] = probe.status;
    health["node"] = inst.node;
    health["instance"] = inst.id;
  }
  if (svc.route == "sandbox") {
    h.running = instance_ok;
    h.healthy = probe_ok;
  }
  health["running"] = instance_ok;
  health["healthy"] = probe_ok;
  out["health"] = health;
  if (svc.route == "sandbox")
    out["state"] = instance_ok ? (probe_ok ? "running" : "unhealthy")
                   : last_status == "running" || last_status == "queued" ? "deploying"
                                                                         : "stopped";
  return out;
}

Result<json> Sandboxes::Show(const std::string& name) {
  if (ValidateSandboxName(name).ok()) impl_->Settle(name);
  auto s = Get(name);
  if (!s.ok()) return s.status();
  json view = View(*s);
  json services = json::array();
  std::vector<ServiceHealth> healths;
  for (const auto& svc : s->services) {
    ServiceHealth h;
    json one = impl_->ServiceState(*s, svc, h);
    one["commit"] = one.value("commit", svc.commit);
    services.push_back(one);
    healths.push_back(h);
  }
  view["services"] = services;
  view["health"] = SandboxHealth(*s, healths);
  view["url"] = impl_->ServiceUrl(s->port);
  return view;
}

}  // namespace slipway
