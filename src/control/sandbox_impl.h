#pragma once
// The parts of the Sandboxes service shared by sandboxes.cpp (records and lifecycle),
// sandbox_gateway.cpp (ports, routes, config rendering, the propagation check) and
// sandbox_janitor.cpp (statuses, activity, expiry, health). Internal to control/.
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "control/controller.h"
#include "control/environments.h"
#include "control/sandboxes.h"

namespace slipway {

struct Sandboxes::Impl {
  Impl(Context& c, Controller& ctl, Environments& e, PortHost& p, SandboxOptions o)
      : ctx(c), controller(ctl), envs(e), ports(p), opt(std::move(o)) {}

  Context& ctx;
  Controller& controller;
  Environments& envs;
  PortHost& ports;
  SandboxOptions opt;

  // Serialises every change to sandboxes (records, ports, routes, renderings). Never held
  // while waiting for a deployment. Injection (For) does not take it: deployments ask for
  // their injection from the controller's workers.
  std::mutex mu;
  std::mutex check_mu;  // one propagation check at a time (the router has one tap)

  std::thread janitor;
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;                               // guarded by stop_mu
  std::map<std::string, std::uint64_t> seen_requests;  // janitor thread only
  std::map<std::string, std::string> rendered;         // "<sandbox>/<service>" → key; under mu

  // --- records (sandboxes.cpp) ---
  long long Now() const { return ctx.clock.WallMillis(); }
  Status Save(Sandbox& s);  // stamps updated_ms
  void Audit(const Actor& actor, const std::string& action, const Sandbox& s,
             const nlohmann::json& detail, const std::string& outcome = "ok");
  Result<Sandbox> Build(SandboxSpec spec);  // validated record, nothing stored
  Result<Sandbox> CreateLocked(SandboxSpec spec, const Actor& actor,
                               const std::map<std::string, std::string>& routes);
  Status CreateApps(const Sandbox& s, const Actor& actor);
  Status QueueDeployments(Sandbox& s, const std::string& only, const Actor& actor);
  std::vector<App> OwnApps(const Sandbox& s);
  Status SettleDeployments(const std::vector<App>& apps, const Actor& actor);
  Status RemoveLocked(const Sandbox& s, const Actor& actor);
  Status StopApps(const Sandbox& s, const Actor& actor);
  Result<Sandbox> Flip(Sandbox s, const std::string& service, const std::string& to,
                       const Actor& actor);

  // --- gateway (sandbox_gateway.cpp) ---
  // Reserves a port of `kind` for the sandbox and opens it on the gateway serving `set`;
  // a port the node cannot bind is skipped. kUnavailable when the range is exhausted.
  Result<int> TakePort(const std::string& kind, const std::string& owner, const std::string& set);
  Status OpenPorts(Sandbox& s);  // reserves and opens what is missing (port 0)
  void ReopenPorts(const Sandbox& s);
  void ClosePorts(const Sandbox& s);
  Status Publish(const Sandbox& s);  // the sandbox's routes on every listener
  void Unpublish(const std::string& name);
  std::string ServiceUrl(int port) const;
  // The port a sandbox app's container listens on (its current release's manifest; 8080).
  int ContainerPort(const std::string& app);
  // service → where its requests go now: the sandbox's instance or the upstream. A branch
  // service routed to the sandbox with no instance serving yet is left out.
  std::map<std::string, std::string> EffectiveMap(const Sandbox& s);
  // Renders sandbox.config for every service that has one and changed since the last
  // rendering (or always when `force`); records the outcome in s.config_json.
  void RenderConfig(Sandbox& s, bool force);
  Result<nlohmann::json> Check(const Sandbox& s);

  // --- janitor (sandbox_janitor.cpp) ---
  void JanitorLoop();
  void Tick();  // statuses, renderings, activity
  // Brings a sandbox's status up to its deployments (as the next tick would), so a reader
  // sees the outcome at once. Skipped when mu is busy.
  void Settle(const std::string& name);
  void Expire(const std::string& name);
  nlohmann::json ServiceState(const Sandbox& s, const SandboxService& svc, ServiceHealth& h);
};

std::string SandboxOwner(const std::string& sandbox);    // "sandbox/<name>"
std::string SandboxNetwork(const std::string& sandbox);  // "sandbox-<name>"
// The route set of a sandbox's own port, and of one of its service ports.
std::string SandboxSet(const std::string& sandbox);
std::string ServiceSet(const std::string& sandbox, const std::string& service);

}  // namespace slipway
