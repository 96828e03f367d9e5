#pragma once
// Docker Swarm services through the Engine API: one service per app, updated in place with
// Swarm's own rolling update (start-first, rollback on failure). Every task publishes its
// port in host mode on its own ephemeral port, so the gateway reaches each task on
// 127.0.0.1 (the routing mesh is not assumed) and follows the task set as it changes.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace slipway {

struct ServiceSpec {
  std::string name;  // slipway-<app>
  std::string image;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> labels;
  int container_port = 8080;
  int replicas = 2;
  std::vector<std::string> constraints;
  long long memory_bytes = 0;
  double cpus = 0;
  std::vector<std::string> healthcheck;  // CMD argv run inside the task; empty = none
  int parallelism = 1;
  std::chrono::milliseconds update_delay{0};
  std::chrono::milliseconds monitor{std::chrono::seconds(2)};
  std::string order = "start-first";
};

struct TaskView {
  std::string id;
  int slot = 0;
  std::string state;    // new | pending | … | starting | running | shutdown | failed | rejected
  std::string desired;  // running | shutdown
  std::string image;
  std::string container_id;
  std::string message;  // Status.Err or Status.Message
  int port = 0;         // published host port, 0 until assigned
};

struct ServiceView {
  std::string id;
  std::string image;
  std::string update_state;  // "" (never updated) | updating | completed | paused |
                             // rollback_started | rollback_completed | rollback_paused
  std::string update_message;
};

class SwarmRuntime {
 public:
  // Creates the service or updates it to `spec`. Returns the service id.
  // kUnavailable when Docker is down or not a swarm manager.
  Result<std::string> Deploy(const ServiceSpec& spec);
  Result<ServiceView> Inspect(const std::string& service);
  Result<std::vector<TaskView>> Tasks(const std::string& service);
  // True when the task's container reports healthy, or has no health check.
  bool Healthy(const std::string& container_id);
  // Asks Swarm to return the service to its previous spec.
  Status Rollback(const std::string& service);
  Status Remove(const std::string& service);
};

}  // namespace slipway
