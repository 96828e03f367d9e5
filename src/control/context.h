#pragma once
// The parts a deployment runs against, wired once by the server. Every reference must
// outlive the Controller and every Deployer.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/hub.h"
#include "control/event_log.h"
#include "core/clock.h"
#include "gateway/router.h"
#include "store/store.h"

namespace slipway {

class Notifier;  // notify/notifier.h

struct Paths {
  std::string data;  // absolute
  std::string cache(const std::string& app) const { return data + "/cache/" + app + ".git"; }
  std::string builds(const std::string& app) const { return data + "/builds/" + app; }
  std::string releases(const std::string& app) const { return data + "/releases/" + app; }
  std::string logs(const std::string& app) const { return data + "/logs/" + app; }
  std::string db() const { return data + "/slipway.db"; }
  std::string askpass() const { return data + "/askpass.sh"; }
};

// What serves an app right now: one instance per node of its release and, for processes and
// containers, the gateway target of each (in the same order). A swarm app has one instance
// record (its service) and no targets: its pool follows the service's tasks.
struct Serving {
  std::vector<Instance> instances;  // never empty
  std::vector<std::shared_ptr<gateway::Target>> targets;

  const Instance& first() const { return instances.front(); }
  const std::string& runtime() const { return first().runtime; }
};

// Points the app's main route at `targets`: none = nothing serves (503), one = that target,
// several = a round-robin pool across them (across nodes).
inline void RouteTo(gateway::Router& router, const std::string& app,
                    const std::vector<std::shared_ptr<gateway::Target>>& targets) {
  if (targets.size() > 1)
    router.SetPool(app, targets);
  else
    router.Switch(app, targets.empty() ? nullptr : targets.front());
}

// In-memory view of serving instances, rebuilt from the store at start. Thread-safe.
class ServingState {
 public:
  std::optional<Serving> Get(std::int64_t app_id) const {
    std::lock_guard lock(mu_);
    auto it = serving_.find(app_id);
    if (it == serving_.end()) return std::nullopt;
    return it->second;
  }
  void Set(std::int64_t app_id, std::optional<Serving> s) {
    std::lock_guard lock(mu_);
    if (s)
      serving_[app_id] = *s;
    else
      serving_.erase(app_id);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::int64_t, Serving> serving_;
};

class RolloutBoard;

// What an app's instances (and build steps) get beyond their manifest: its environment's
// variables, secrets and files, and, for a sandbox's app, the sandbox's <SERVICE>_URL map,
// network and limits.
struct Injection {
  std::map<std::string, std::string> env;    // overrides the manifest's env
  std::map<std::string, std::string> files;  // relative path in the release → content
  std::vector<std::string> secrets;          // values to redact from events and errors
  std::string network;                       // container runtime: a Docker network to join
  std::vector<std::string> aliases;          // the container's names on that network
  // Overrides of `env` for a container instance, which cannot reach the gateway's loopback
  // ports: a sandbox's services address each other by name on the sandbox's network.
  std::map<std::string, std::string> container_env;
  long long memory_bytes = 0;  // limits (0 = the manifest's)
  double cpus = 0;
};

// Answers the Injection of an app. Thread-safe. Errors: kNotFound when the app's
// environment is gone, kUnavailable when it cannot be read (the deployment fails with it).
class InjectionSource {
 public:
  virtual ~InjectionSource() = default;
  virtual Result<Injection> For(const App& app) = 0;
};

// Replaces every occurrence of each secret (of 4 bytes or more) in `text` by "***".
std::string Redact(std::string text, const std::vector<std::string>& secrets);

// The name of the server's own (in-process) node.
constexpr const char* kLocalNode = "local";

struct Context {
  Store& store;
  Agent& agent;  // the local node
  gateway::Router& router;
  Clock& clock;
  EventLog& events;
  ServingState& serving;
  Paths paths;
  NodeHub* hub = nullptr;            // null when only the local node exists (unit tests)
  RolloutBoard* rollouts = nullptr;  // running rollouts' status and commands; null in tests

  // The Agent of `node` ("" and "local" are the local node).
  Agent& On(const std::string& node) const {
    if (!hub || node.empty() || node == kLocalNode) return agent;
    return hub->AgentFor(node);
  }
  // Where the gateway reaches `node`'s instances: its address while connected, else the one
  // recorded when it last was; "" when unknown.
  std::string AddressOf(const std::string& node) const {
    if (!hub || node.empty() || node == kLocalNode) return "127.0.0.1";
    if (auto v = hub->Get(node); v && !v->address.empty()) return v->address;
    auto rec = store.GetNode(node);
    return rec.ok() ? rec->address : "";
  }
  // Whether `node` can be asked right now (the local node always can).
  bool Reachable(const std::string& node) const {
    if (!hub || node.empty() || node == kLocalNode) return true;
    auto v = hub->Get(node);
    return v && v->connected;
  }

  // Tells deployment outcomes to the apps' and the server's notification targets; never
  // blocks. Null when there is none (unit tests).
  Notifier* notifier = nullptr;

  // Environments and sandboxes' injections; null = none (unit tests).
  InjectionSource* injection = nullptr;
};

}  // namespace slipway
