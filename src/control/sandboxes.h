#pragma once
// Sandboxes: a feature branch of one or a few services deployed next to the shared
// environment (docs/SANDBOXES.md).
//
// A sandbox's branch service is an app of its own (sandbox-<sandbox>-<service>, App::sandbox
// set) deployed by the Controller through the normal pipeline; an upstream service is the
// shared app's App::upstream URL. Every service gets a service port on the gateway (a
// listener whose route leads to the sandbox's instance or to the upstream, flipped by
// Route()), and every instance of the sandbox gets <SERVICE>_URL pointing at those ports, so
// a flip needs no restart. The sandbox's own port serves its entry service; on the shared
// gateway a request with X-Slipway-Sandbox: <name> (or the baggage member slipway-sandbox)
// reaches the sandbox's version of a service routed to the sandbox.
//
// Thread-safety: every public method may be called from any thread; changes to one sandbox
// are serialised (a per-service mutex), reads see the stored record.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/actor.h"
#include "control/context.h"
#include "core/sandbox.h"
#include "gateway/proxy.h"

namespace slipway {

class Controller;
class Environments;

struct SandboxOptions {
  int gateway_lo = 8081, gateway_hi = 8999;               // sandboxes' own ports
  int service_lo = 9001, service_hi = 9999;               // service ports (<SERVICE>_URL)
  std::string address = "127.0.0.1";                      // where those ports listen
  long long default_expiry_ms = 14LL * 24 * 3600 * 1000;  // of inactivity
  long long retention_ms = 7LL * 24 * 3600 * 1000;        // expired → deleted
  std::chrono::milliseconds janitor_every{60000};
};

// What `sandbox create` asks for. Services: name and branch ("" = upstream), limits.
struct SandboxSpec {
  std::string name;
  std::string template_name;
  std::string environment;
  std::string entry;  // "" = the first service
  std::vector<SandboxService> services;
  long long memory_bytes = 0;
  double cpus = 0;
  long long expire_after_ms = 0;  // 0 = the server's default
};

struct SandboxFilter {
  std::string status;
  std::string template_name;
  std::string service;  // sandboxes with this service
  std::string environment;
};

// The gateway's run-time ports (gateway::Proxy implements it through an adapter).
class PortHost {
 public:
  virtual ~PortHost() = default;
  // Opens `port` serving route set `set`; kUnavailable when it cannot be bound.
  virtual Result<int> Open(const std::string& address, int port, const std::string& set) = 0;
  virtual void Close(int port) = 0;
  // Requests received on the port since it was opened.
  virtual std::uint64_t Requests(int port) const = 0;
};

class Sandboxes final : public InjectionSource {
 public:
  // Every reference must outlive the service.
  Sandboxes(Context& ctx, Controller& controller, Environments& environments, PortHost& ports,
            SandboxOptions options);
  ~Sandboxes() override;

  // Re-opens the ports and routes of every stored sandbox (after a restart), then starts
  // the janitor thread. Stop ends the janitor; ports stay open until the proxy stops.
  void Start();
  void Stop();

  // Errors: kInvalid (names, services, limits; nothing stored), kNotFound (template,
  // environment, app, sandbox), kConflict (name taken, state forbids), kUnavailable (ports).
  Result<Sandbox> Create(SandboxSpec spec, const Actor& actor);
  Result<Sandbox> Get(const std::string& name);
  Result<std::vector<Sandbox>> List(const SandboxFilter& filter);
  // The record with live health per service and for the sandbox (docs/SANDBOXES.md).
  Result<nlohmann::json> Show(const std::string& name);
  // Redeploys the branch services (one, or all when `service` is "").
  Result<Sandbox> Deploy(const std::string& name, const std::string& service, const Actor& actor);
  // Points `service` at the sandbox's instance ("sandbox") or the upstream ("upstream").
  Result<Sandbox> Route(const std::string& name, const std::string& service, const std::string& to,
                        const Actor& actor);
  Result<Sandbox> Clone(const std::string& name, const std::string& new_name, const Actor& actor);
  Result<SandboxSnapshot> Snapshot(const std::string& name, const Actor& actor);
  Result<std::vector<SandboxSnapshot>> Snapshots(const std::string& name);
  // Recreates a snapshot's sandbox (its name, or `new_name`) at the recorded commits.
  Result<Sandbox> Restore(std::int64_t snapshot_id, const std::string& new_name,
                          const Actor& actor);
  Result<Sandbox> Suspend(const std::string& name, const Actor& actor);
  Result<Sandbox> Resume(const std::string& name, const Actor& actor);
  // Removes instances, containers, networks, apps, ports, routes and files.
  Status Delete(const std::string& name, const Actor& actor);
  // Sends a traced request through the sandbox's port and reports each hop.
  Result<nlohmann::json> Check(const std::string& name);

  // Templates: body {services:[{name, branch}], environment, entry, memory_bytes, cpus}.
  Result<SandboxTemplate> SaveTemplate(const std::string& name, const nlohmann::json& body,
                                       bool create, const Actor& actor);
  Result<SandboxTemplate> GetTemplate(const std::string& name);
  Result<std::vector<SandboxTemplate>> ListTemplates();
  Status DeleteTemplate(const std::string& name, const Actor& actor);

  // One janitor pass at ctx.clock's time: expiry after inactivity, deletion after retention,
  // status of sandboxes whose deployments finished. Public for tests (a fake clock).
  void JanitorOnce();

  // InjectionSource: a sandbox app gets its sandbox's environment, <SERVICE>_URL map,
  // network and limits; a shared app its own environment.
  Result<Injection> For(const App& app) override;

  static nlohmann::json View(const Sandbox& s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// sandbox-<sandbox>-<service>
std::string SandboxAppName(const std::string& sandbox, const std::string& service);

}  // namespace slipway
