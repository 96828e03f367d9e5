#pragma once
// The Runtime interface: start, watch and stop one instance of a release. Implementations:
// ProcessRuntime (here); containers and swarm services later. The control plane sees only
// this interface, through the agent.
#include <chrono>
#include <map>
#include <string>

#include "core/status.h"

namespace slipway {

struct InstanceSpec {
  std::string app;
  std::int64_t release_id = 0;
  std::string release_dir;  // working directory
  std::string command;
  std::map<std::string, std::string> env;  // PORT is added by the runtime
  int port = 0;
  std::string log_path;  // where the instance's stdout/stderr go
};

struct InstanceHandle {
  int pid = 0;
  long long start_ticks = 0;
  int port = 0;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  // Starts the instance and returns at once (health is the caller's business).
  // kUnavailable when it cannot be started at all.
  virtual Result<InstanceHandle> Start(const InstanceSpec& spec) = 0;
  virtual bool IsRunning(const InstanceHandle& h) = 0;
  virtual long long MemoryBytes(const InstanceHandle& h) = 0;
  // Graceful stop: SIGTERM, then SIGKILL after `grace`. Safe on an instance already gone.
  virtual void Stop(const InstanceHandle& h, std::chrono::milliseconds grace) = 0;
};

// Native processes: /bin/sh -c command in the release dir, own session, survives the server.
class ProcessRuntime final : public Runtime {
 public:
  Result<InstanceHandle> Start(const InstanceSpec& spec) override;
  bool IsRunning(const InstanceHandle& h) override;
  long long MemoryBytes(const InstanceHandle& h) override;
  void Stop(const InstanceHandle& h, std::chrono::milliseconds grace) override;
};

// A TCP port on 127.0.0.1 that nothing listens on right now, not handed out by this
// process in the last while. kUnavailable when none could be found.
Result<int> AllocatePort();

}  // namespace slipway
