#include <chrono>

#include "agent/agent.h"
#include "git/git.h"
#include "net/http_client.h"

namespace slipway {
namespace {

class LocalAgent final : public Agent {
 public:
  explicit LocalAgent(std::string askpass) : askpass_(std::move(askpass)) {}

  std::string name() const override { return "local"; }

  Status Fetch(const std::string& repo_url, const std::string& cache_dir,
               const std::atomic<bool>* cancel, const os::LineSink& sink) override {
    git::Remote remote = git::ParseRemote(repo_url);
    if (!remote.username.empty()) {
      if (auto s = git::WriteAskpass(askpass_); !s.ok()) return s;
    }
    git::FetchOptions options;
    options.cache_dir = cache_dir;
    options.askpass_path = askpass_;
    options.cancel = cancel;
    return git::Fetch(remote, options, sink);
  }

  Result<std::string> Resolve(const std::string& cache_dir, const std::string& ref) override {
    return git::Resolve(cache_dir, ref);
  }

  Status Export(const std::string& cache_dir, const std::string& commit, const std::string& dest,
                const os::LineSink& sink) override {
    return git::Export(cache_dir, commit, dest, sink);
  }

  Result<os::RunResult> RunStep(const StepRequest& step, const os::LineSink& sink) override {
    os::CommandSpec spec;
    spec.argv = {"/bin/sh", "-c", step.command};
    spec.cwd = step.cwd;
    spec.env = step.env;
    return os::Run(spec, sink, {step.timeout, step.cancel});
  }

  Result<int> AllocatePort() override { return slipway::AllocatePort(); }
  Result<InstanceHandle> StartInstance(const InstanceSpec& spec) override { return runtime_.Start(spec); }
  bool IsRunning(const InstanceHandle& h) override { return runtime_.IsRunning(h); }
  long long MemoryBytes(const InstanceHandle& h) override { return runtime_.MemoryBytes(h); }
  void StopInstance(const InstanceHandle& h, std::chrono::milliseconds grace) override {
    runtime_.Stop(h, grace);
  }

  ProbeResult Probe(int port, const std::string& path, std::chrono::milliseconds timeout) override {
    net::Endpoint ep;
    ep.port = port;
    net::ClientRequest req;
    req.target = path;
    req.timeout = timeout;
    req.max_body = 1 << 20;
    auto started = std::chrono::steady_clock::now();
    auto res = net::HttpCall(ep, req);
    ProbeResult out;
    out.latency = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    if (!res.ok()) {
      out.error = res.status().message();
      return out;
    }
    out.status = res->status;
    return out;
  }

 private:
  std::string askpass_;
  ProcessRuntime runtime_;
};

}  // namespace

std::unique_ptr<Agent> MakeLocalAgent(std::string askpass_path) {
  return std::make_unique<LocalAgent>(std::move(askpass_path));
}

}  // namespace slipway
