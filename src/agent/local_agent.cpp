#include <chrono>

#include <fstream>

#include "agent/agent.h"
#include "docker/client.h"
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

  Status CheckCredentials(const std::string& repo_url, const std::string& username,
                          const std::string& password) override {
    return git::CheckCredentials(repo_url, username, password, askpass_, std::chrono::seconds(20));
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

  Status PrepareImage(const ImageRequest& r, const os::LineSink& sink) override {
    auto client = docker::Client::Connect();
    if (!client.ok()) return client.status();
    auto lines = [&sink](const std::string& l) { sink(os::OutputStream::kStdout, l); };
    if (!r.dockerfile.empty()) return client->BuildImage(r.release_dir, r.dockerfile, r.tag, lines);
    std::string source = r.image;
    if (!r.image_tar.empty()) {
      auto loaded = client->LoadImage(r.release_dir + "/" + r.image_tar, lines);
      if (!loaded.ok()) return loaded.status();
      source = *loaded;
    } else if (!client->ImageExists(source)) {
      return NotFound("image '" + source +
                      "' is not on this node (no registry is assumed: ship it as image_tar)");
    }
    auto colon = r.tag.rfind(':');
    return client->TagImage(source, r.tag.substr(0, colon), r.tag.substr(colon + 1));
  }

  Status RemoveImage(const std::string& tag) override {
    auto client = docker::Client::Connect();
    return client.ok() ? client->RemoveImage(tag) : client.status();
  }

  Result<std::string> DeployService(const ServiceSpec& spec) override {
    return swarm_.Deploy(spec);
  }
  Result<ServiceView> InspectService(const std::string& service) override {
    return swarm_.Inspect(service);
  }
  Result<std::vector<TaskView>> ServiceTasks(const std::string& service) override {
    return swarm_.Tasks(service);
  }
  bool TaskHealthy(const std::string& container_id) override {
    return swarm_.Healthy(container_id);
  }
  Status RollbackService(const std::string& service) override { return swarm_.Rollback(service); }

  Result<int> AllocatePort() override { return slipway::AllocatePort(); }
  Result<InstanceHandle> StartInstance(const InstanceSpec& spec) override {
    return For(spec.runtime).Start(spec);
  }
  bool IsRunning(const InstanceHandle& h) override {
    if (h.runtime == "swarm") return swarm_.Inspect(h.container_id).ok();
    return For(h).IsRunning(h);
  }
  long long MemoryBytes(const InstanceHandle& h) override {
    return h.runtime == "swarm" ? 0 : For(h).MemoryBytes(h);
  }
  void StopInstance(const InstanceHandle& h, std::chrono::milliseconds grace) override {
    if (h.runtime == "swarm") {
      (void)swarm_.Remove(h.container_id);
      return;
    }
    For(h).Stop(h, grace);
  }

  std::vector<std::string> RecentOutput(const InstanceHandle& h, const std::string& log_path,
                                        int lines) override {
    std::vector<std::string> out;
    if (!h.container_id.empty()) {
      auto client = docker::Client::Connect();
      if (!client.ok()) return out;
      auto logs = client->Logs(h.container_id, lines);
      return logs.ok() ? *logs : out;
    }
    std::ifstream in(log_path);
    for (std::string line; std::getline(in, line);) {
      out.push_back(line);
      if (static_cast<int>(out.size()) > lines) out.erase(out.begin());
    }
    return out;
  }

  Result<std::vector<std::string>> ManagedContainers(const std::string& home) override {
    auto client = docker::Client::Connect();
    if (!client.ok()) return client.status();
    auto list = client->ListContainers("slipway.home=" + home);
    if (!list.ok()) return list.status();
    std::vector<std::string> ids;
    for (const auto& c : *list) ids.push_back(c.id);
    return ids;
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
  Runtime& For(const std::string& runtime) {
    return runtime == "container" ? static_cast<Runtime&>(containers_) : processes_;
  }
  Runtime& For(const InstanceHandle& h) {
    return h.container_id.empty() ? static_cast<Runtime&>(processes_) : containers_;
  }

  std::string askpass_;
  ProcessRuntime processes_;
  ContainerRuntime containers_;
  SwarmRuntime swarm_;
};

}  // namespace

std::unique_ptr<Agent> MakeLocalAgent(std::string askpass_path) {
  return std::make_unique<LocalAgent>(std::move(askpass_path));
}

}  // namespace slipway
