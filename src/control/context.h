#pragma once
// The parts a deployment runs against, wired once by the server. Every reference must
// outlive the Controller and every Deployer.
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "agent/agent.h"
#include "control/event_log.h"
#include "core/clock.h"
#include "gateway/router.h"
#include "store/store.h"

namespace slipway {

struct Paths {
  std::string data;  // absolute
  std::string cache(const std::string& app) const { return data + "/cache/" + app + ".git"; }
  std::string builds(const std::string& app) const { return data + "/builds/" + app; }
  std::string releases(const std::string& app) const { return data + "/releases/" + app; }
  std::string logs(const std::string& app) const { return data + "/logs/" + app; }
  std::string db() const { return data + "/slipway.db"; }
  std::string askpass() const { return data + "/askpass.sh"; }
};

// What serves an app right now: its instance record and the gateway target for it.
struct Serving {
  Instance instance;
  std::shared_ptr<gateway::Target> target;
};

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

struct Context {
  Store& store;
  Agent& agent;
  gateway::Router& router;
  Clock& clock;
  EventLog& events;
  ServingState& serving;
  Paths paths;
};

}  // namespace slipway
