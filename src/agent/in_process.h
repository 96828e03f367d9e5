#pragma once
// The server's own node: a local Agent behind an OpExecutor, joined to the NodeHub by a pipe
// that carries the same encoded frames a WebSocket would. Every call the control plane makes
// to the local node therefore goes through the protocol, its codec and its op tracking.
#include <memory>
#include <string>
#include <vector>

#include "agent/hub.h"

namespace slipway {

struct InProcessNodeOptions {
  std::string name = "local";
  std::vector<std::string> labels;
  std::string data_dir;     // the control plane's own (absolute)
  std::string askpass;      // where git's credential helper is written
  Agent* worker = nullptr;  // runs the ops; null = a local agent on data_dir (tests pass fakes)
  RepoTable repos;          // the node's repos.yaml (`slipway server --repos`); listed in hello
};

class InProcessNode {
 public:
  // Connects at once (hello, welcome) and keeps heartbeating until destroyed. `hub` must
  // outlive the node; destroy the node before stopping the hub.
  static std::unique_ptr<InProcessNode> Start(NodeHub& hub, InProcessNodeOptions options);
  virtual ~InProcessNode() = default;
  // Waits until the hub has welcomed the node; false after `timeout`.
  virtual bool WaitWelcomed(std::chrono::milliseconds timeout) = 0;
};

}  // namespace slipway
