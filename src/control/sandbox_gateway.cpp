// A sandbox on the gateway: its ports, its routes, the config file rendered for its
// services, and the propagation check (see sandboxes.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "control/instances.h"
#include "control/sandbox_impl.h"
#include "control/validation.h"
#include "crypto/crypto.h"
#include "gateway/tap.h"
#include "manifest/manifest.h"
#include "net/http_client.h"

namespace slipway {

using nlohmann::json;

namespace {

constexpr int kPortAttempts = 64;  // ports skipped because the node cannot bind them

const SandboxService* Entry(const Sandbox& s) {
  for (const auto& svc : s.services)
    if (svc.name == s.entry) return &svc;
  return nullptr;
}

// A route on `listener` for any host leading to `svc`: the sandbox's app (followed, so a
// redeploy moves it) or the upstream URL.
Result<gateway::Route> ServiceRoute(Store& store, const Sandbox& s, const SandboxService& svc,
                                    const std::string& listener) {
  gateway::Route r;
  r.owner = SandboxOwner(s.name);
  r.listener = listener;
  r.hosts = {"*"};
  r.app = SandboxAppName(s.name, svc.name);
  r.name = listener;
  if (svc.route == "sandbox" && !svc.branch.empty()) {
    r.follow = r.app;
    return r;
  }
  auto app = store.GetApp(svc.name);
  if (!app.ok()) return app.status();
  if (app->upstream.empty()) return Invalid("service " + svc.name + ": no upstream URL");
  auto target = gateway::TargetFromUrl(r.app + "@upstream", app->upstream);
  if (!target.ok()) return target.status();
  r.target = *target;
  return r;
}

// On the shared gateway: requests for the shared app carrying the sandbox's name (header or
// baggage) go to the sandbox's app.
std::vector<gateway::Route> HeaderRoutes(const Sandbox& s, const SandboxService& svc,
                                         const App& shared) {
  std::vector<gateway::Route> out;
  for (auto kind : {gateway::Predicate::Kind::kHeader, gateway::Predicate::Kind::kBaggage}) {
    gateway::Route r;
    r.owner = SandboxOwner(s.name);
    r.app = SandboxAppName(s.name, svc.name);
    r.name = r.app + (kind == gateway::Predicate::Kind::kHeader ? "@header" : "@baggage");
    r.hosts = EffectiveHosts(shared);
    r.path_prefix = shared.path_prefix;
    r.priority = 100;
    r.follow = r.app;
    r.when.push_back(
        {kind, kind == gateway::Predicate::Kind::kHeader ? "X-Slipway-Sandbox" : "slipway-sandbox",
         s.name});
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

std::string Sandboxes::Impl::ServiceUrl(int port) const {
  std::string host = opt.address == "0.0.0.0" || opt.address.empty() ? "127.0.0.1" : opt.address;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return fmt::format("http://{}:{}", host, port);
}

int Sandboxes::Impl::ContainerPort(const std::string& app) {
  auto rec = ctx.store.GetApp(app);
  if (!rec.ok() || !rec->current_release_id) return 8080;
  auto release = ctx.store.GetRelease(*rec->current_release_id);
  if (!release.ok()) return 8080;
  auto m = Manifest::FromJson(release->manifest_json);
  return m.ok() ? m->container_port : 8080;
}

Result<int> Sandboxes::Impl::TakePort(const std::string& kind, const std::string& owner,
                                      const std::string& set) {
  const bool gw = kind == "gateway";
  std::vector<int> skip;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    auto port = ctx.store.ReservePort(kind, owner, gw ? opt.gateway_lo : opt.service_lo,
                                      gw ? opt.gateway_hi : opt.service_hi, skip);
    if (!port.ok()) return port.status();
    auto opened = ports.Open(opt.address, *port, set);
    if (opened.ok()) return *port;
    // Taken on this machine by something else: keep it out of this search, hand it back.
    spdlog::info("sandbox port {} is busy on this node: {}", *port, opened.status().message());
    (void)ctx.store.ReleasePort(*port);
    skip.push_back(*port);
  }
  return Unavailable(fmt::format("no free {} port: {} in a row were busy", kind, kPortAttempts));
}

Status Sandboxes::Impl::OpenPorts(Sandbox& s) {
  const std::string owner = SandboxOwner(s.name);
  if (s.port == 0) {
    auto port = TakePort("gateway", owner, SandboxSet(s.name));
    if (!port.ok()) return port.status();
    s.port = *port;
  }
  for (auto& svc : s.services) {
    if (svc.port != 0) continue;
    auto port = TakePort("service", owner, ServiceSet(s.name, svc.name));
    if (!port.ok()) return port.status();
    svc.port = *port;
  }
  return Status::Ok();
}

void Sandboxes::Impl::ReopenPorts(const Sandbox& s) {
  auto open = [&](int port, const std::string& set) {
    if (port == 0) return;
    if (auto r = ports.Open(opt.address, port, set); !r.ok())
      spdlog::error("sandbox {}: cannot reopen port {}: {}", s.name, port, r.status().message());
  };
  open(s.port, SandboxSet(s.name));
  for (const auto& svc : s.services) open(svc.port, ServiceSet(s.name, svc.name));
}

void Sandboxes::Impl::ClosePorts(const Sandbox& s) {
  if (s.port) ports.Close(s.port);
  for (const auto& svc : s.services)
    if (svc.port) ports.Close(svc.port);
}

Status Sandboxes::Impl::Publish(const Sandbox& s) {
  std::vector<gateway::Route> routes;
  for (const auto& svc : s.services) {
    auto r = ServiceRoute(ctx.store, s, svc, ServiceSet(s.name, svc.name));
    if (!r.ok()) return r.status();
    routes.push_back(*r);
    if (svc.route == "sandbox" && !svc.branch.empty()) {
      auto shared = ctx.store.GetApp(svc.name);
      if (!shared.ok()) return shared.status();
      for (auto& h : HeaderRoutes(s, svc, *shared)) routes.push_back(std::move(h));
    }
  }
  if (const SandboxService* entry = Entry(s)) {
    auto r = ServiceRoute(ctx.store, s, *entry, SandboxSet(s.name));
    if (!r.ok()) return r.status();
    routes.push_back(*r);
  }
  ctx.router.SetRoutesOf(SandboxOwner(s.name), std::move(routes));
  return Status::Ok();
}

void Sandboxes::Impl::Unpublish(const std::string& name) {
  ctx.router.SetRoutesOf(SandboxOwner(name), {});
}

std::map<std::string, std::string> Sandboxes::Impl::EffectiveMap(const Sandbox& s) {
  std::map<std::string, std::string> out;
  for (const auto& svc : s.services) {
    if (svc.route == "sandbox" && !svc.branch.empty()) {
      auto app = ctx.store.GetApp(SandboxAppName(s.name, svc.name));
      if (!app.ok()) continue;
      auto serving = ctx.serving.Get(app->id);
      if (!serving || serving->targets.empty()) continue;
      const auto& t = serving->targets.front();
      out[svc.name] = fmt::format("http://{}:{}", t->host(), t->port());
    } else if (auto app = ctx.store.GetApp(svc.name); app.ok()) {
      out[svc.name] = app->upstream;
    }
  }
  return out;
}

namespace {

// {{ACCOUNT_URL}} for each service, {{routes_json}} for the whole map; other text is kept.
std::string Render(const std::string& text, const std::map<std::string, std::string>& map) {
  std::map<std::string, std::string> values;
  for (const auto& [service, url] : map) values[ServiceUrlVar(service)] = url;
  values["routes_json"] = json(map).dump();
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t open = text.find("{{", pos);
    std::size_t close = open == std::string::npos ? open : text.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string key = text.substr(open + 2, close - open - 2);
    key.erase(0, key.find_first_not_of(' '));
    key.erase(key.find_last_not_of(' ') + 1);
    out += text.substr(pos, open - pos);
    auto it = values.find(key);
    out += it != values.end() ? it->second : text.substr(open, close + 2 - open);
    pos = close + 2;
  }
  return out + text.substr(std::min(pos, text.size()));
}

struct Rendering {
  bool rendered = false, reloaded = false, read_back_matches = false;
  std::string error;
  json read_back;
};

// Asks the instance for its effective map. A reload is often asynchronous (a signal the
// service handles when it next wakes), so a differing answer is asked again for up to 2 s.
void ReadBack(Context& ctx, const Instance& inst, const std::string& target,
              const std::map<std::string, std::string>& map, Rendering& r) {
  net::ClientRequest req;
  req.target = target;
  req.timeout = std::chrono::seconds(5);
  req.max_body = 1 << 20;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    auto res = net::HttpCall({ctx.AddressOf(inst.node), inst.port, "", false}, req);
    if (res.ok()) r.read_back = json::parse(res->body, nullptr, false);
    r.read_back_matches = res.ok() && res->status == 200 && r.read_back == json(map);
    if (r.read_back_matches || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!r.read_back_matches && r.error.empty()) r.error = "read-back differs from the map";
}

// Names the innermost hop that answered 5xx (started last among them): where a failing
// request went wrong, e.g. an upstream that is down.
std::string FailingHopText(const json& hops, int status) {
  const json* failing = nullptr;
  for (const auto& h : hops)
    if (h.value("status", 0) >= 500) failing = &h;
  if (!failing)
    return fmt::format("the sandbox answered HTTP {} and no hop recorded a failure", status);
  return fmt::format("the sandbox answered HTTP {}: {} ({}) answered HTTP {}", status,
                     failing->value("service", "?"), failing->value("target", "?"),
                     failing->value("status", 0));
}

// Renders, reloads and reads back the config of one serving instance.
Rendering RenderOn(Context& ctx, const Instance& inst, const Release& release,
                   const SandboxConfigSpec& spec, const std::map<std::string, std::string>& map) {
  Rendering r;
  Agent& agent = ctx.On(inst.node);
  auto text = agent.ReadFile(release.path + "/" + spec.template_path, 1 << 20);
  if (!text.ok()) {
    r.error = "template: " + text.status().message();
    return r;
  }
  if (auto st = agent.WriteFile(release.path + "/" + spec.path, Render(*text, map), 0644);
      !st.ok()) {
    r.error = "write: " + st.message();
    return r;
  }
  r.rendered = true;
  if (!spec.reload.empty()) {
    StepRequest step{spec.reload, release.path, {}, std::chrono::seconds(30), nullptr};
    auto run = agent.RunStep(step, [](os::OutputStream, std::string_view) {});
    r.reloaded = run.ok() && run->exit_code == 0;
    if (!r.reloaded) r.error = "reload failed";
  } else {
    r.reloaded = true;
  }
  if (!spec.read_back.empty()) ReadBack(ctx, inst, spec.read_back, map, r);
  return r;
}

}  // namespace

void Sandboxes::Impl::RenderConfig(Sandbox& s, bool force) {
  const auto map = EffectiveMap(s);
  for (const auto& svc : s.services) {
    if (svc.branch.empty()) continue;
    auto app = ctx.store.GetApp(SandboxAppName(s.name, svc.name));
    if (!app.ok() || !app->current_release_id) continue;
    auto serving = ctx.serving.Get(app->id);
    auto release = ctx.store.GetRelease(*app->current_release_id);
    if (!serving || !release.ok()) continue;
    auto manifest = Manifest::FromJson(release->manifest_json);
    if (!manifest.ok() || manifest->sandbox_config.empty()) continue;
    const std::string key =
        fmt::format("{}/{}/{}", serving->first().id, release->id, json(map).dump());
    std::string& last = rendered[s.name + "/" + svc.name];
    if (!force && last == key) continue;
    last = key;
    Rendering r = RenderOn(ctx, serving->first(), *release, manifest->sandbox_config, map);
    json c = {{"service", svc.name},
              {"rendered", r.rendered},
              {"reloaded", r.reloaded},
              {"read_back_matches", r.read_back_matches},
              {"map", map},
              {"read_back", r.read_back.is_discarded() ? json() : r.read_back},
              {"error", r.error},
              {"release", release->number},
              {"ts_ms", Now()}};
    s.config_json = c.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

namespace {

// Collects the entries of one check: those on the sandbox's listeners, or carrying its trace.
class CheckTap final : public gateway::RequestTap {
 public:
  CheckTap(std::string prefix, std::string trace)
      : prefix_(std::move(prefix)), trace_(std::move(trace)) {}
  void Record(const gateway::TapEntry& e) override {
    bool mine =
        e.trace == trace_ || e.listener == prefix_ || e.listener.rfind(prefix_ + "/", 0) == 0;
    if (!mine) return;
    std::lock_guard lock(mu_);
    if (entries_.size() < 256) entries_.push_back(e);
  }
  std::vector<gateway::TapEntry> Take() {
    std::lock_guard lock(mu_);
    return entries_;
  }

 private:
  const std::string prefix_, trace_;
  std::mutex mu_;
  std::vector<gateway::TapEntry> entries_;
};

// The service a hop reached, from its listener set or its route.
std::string HopService(const Sandbox& s, const gateway::TapEntry& e) {
  const std::string set = SandboxSet(s.name);
  if (e.listener == set) return s.entry;
  if (e.listener.rfind(set + "/", 0) == 0) return e.listener.substr(set.size() + 1);
  const std::string app_prefix = "sandbox-" + s.name + "-";
  std::string route = e.route.substr(0, e.route.find('@'));
  if (route.rfind(app_prefix, 0) == 0) return route.substr(app_prefix.size());
  return route;
}

}  // namespace

Result<json> Sandboxes::Impl::Check(const Sandbox& s) {
  std::lock_guard lock(check_mu);
  const std::string trace = crypto::RandomToken("chk_");
  auto tap = std::make_shared<CheckTap>(SandboxSet(s.name), trace);
  ctx.router.SetTap(tap);
  net::ClientRequest req;
  req.headers = {{"X-Slipway-Sandbox", s.name}, {"X-Slipway-Trace", trace}};
  req.timeout = std::chrono::seconds(10);
  req.max_body = 1 << 20;
  const std::string host = opt.address == "0.0.0.0" ? "127.0.0.1" : opt.address;
  auto res = net::HttpCall({host, s.port, "", false}, req);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // inner hops' last records
  ctx.router.SetTap(nullptr);
  auto entries = tap->Take();
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.ts_ms - a.seconds * 1000 < b.ts_ms - b.seconds * 1000;
  });
  json hops = json::array();
  std::string dropped_by, previous = "client";
  for (const auto& e : entries) {
    const std::string service = HopService(s, e);
    bool carried = e.sandbox == s.name;
    hops.push_back({{"service", service},
                    {"listener", e.listener.empty() ? "shared gateway" : e.listener},
                    {"target", e.target},
                    {"status", e.status},
                    {"sandbox_header", carried},
                    {"trace", e.trace == trace},
                    {"ms", static_cast<long long>(e.seconds * 1000)}});
    if (!carried && dropped_by.empty()) dropped_by = previous;
    previous = service;
  }
  json out = {{"sandbox", s.name},
              {"trace", trace},
              {"status", res.ok() ? res->status : 0},
              {"hops", hops},
              {"ok", res.ok() && res->status < 500 && dropped_by.empty()}};
  if (!res.ok()) out["error"] = res.status().message();
  if (!dropped_by.empty())
    out["dropped_by"] = dropped_by,
    out["detail"] = "the routing header was dropped by " + dropped_by + " on its outgoing call";
  else if (res.ok() && res->status >= 500)
    out["detail"] = FailingHopText(hops, res->status);
  return out;
}

Result<json> Sandboxes::Check(const std::string& name) {
  auto s = Get(name);
  if (!s.ok()) return s.status();
  if (s->port == 0) return Conflict("sandbox '" + name + "' has no port");
  return impl_->Check(*s);
}

}  // namespace slipway
