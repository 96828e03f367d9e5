#pragma once
// The Runtime interface: start, watch and stop one instance of a release. Implementations:
// ProcessRuntime (here); containers and swarm services later. The control plane sees only
// this interface, through the agent.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace slipway {

// How a container instance is run (runtime "container").
struct ContainerSpec {
  std::string image;          // the release's image tag
  std::string name;           // container name, slipway-<app>-<release>
  int container_port = 8080;  // where the app listens inside; published on host_ip:port
  std::string host_ip = "127.0.0.1";
  long long memory_bytes = 0;
  double cpus = 0;
  std::vector<std::string> volumes;  // "host:container[:ro]"
  std::string restart = "no";
  std::map<std::string, std::string> labels;
  // A user-defined bridge network to join ("" = Docker's default bridge), created when
  // missing (labelled slipway.sandbox=<network>) and removed with its last container; the
  // container answers to `aliases` on it. The published port works either way.
  std::string network;
  std::vector<std::string> aliases;
};

// A Docker network name or alias: [a-z0-9][a-z0-9_.-]{0,62}.
bool ValidNetworkName(const std::string& name);
// At most this many aliases per container.
constexpr std::size_t kMaxNetworkAliases = 16;

struct InstanceSpec {
  std::string runtime = "process";  // process | container
  ContainerSpec container;
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
  std::string container_id;  // set for container instances (the service id for swarm)
  std::string runtime = "process";
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

// Docker containers through the Engine API. One container per instance, labelled, with
// its port published on 127.0.0.1 unless the spec asks for another address. Start refuses
// (kInvalid) a malformed network name or alias. Containers of one network are created and
// started, and the network removed after its last one, under one lock of this process, so
// that a stop never removes the network that a start is about to join.
class ContainerRuntime final : public Runtime {
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
