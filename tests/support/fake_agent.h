#pragma once
// FakeAgent: an Agent that does nothing on a node: every operation fails with kUnavailable
// unless a test sets a behaviour. CheckCredentials answers from `git_users` and counts its
// calls.
//
// ScriptedAgent: a node's worker on which a deployment succeeds unless the test scripts a
// failure, recording every call it gets.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"

namespace slipway::testing {

class FakeAgent : public Agent {
 public:
  std::map<std::string, std::string> git_users;  // username → password the git host accepts
  int credential_checks = 0;
  bool git_host_down = false;
  bool anonymous_read = false;  // the repository lets anyone read it

  std::string name() const override { return "fake"; }
  Status Fetch(const std::string&, const std::string&, const std::atomic<bool>*,
               const os::LineSink&) override {
    return Down();
  }
  Result<std::string> Resolve(const std::string&, const std::string&) override { return Down(); }
  Status CheckCredentials(const std::string&, const std::string& user,
                          const std::string& password) override {
    ++credential_checks;
    if (git_host_down) return Unavailable("git host unreachable");
    if (anonymous_read) return Status::Ok();
    auto it = git_users.find(user);
    if (it == git_users.end() || it->second != password)
      return Status(Code::kUnauthorized, "invalid username or password");
    return Status::Ok();
  }
  Status Export(const std::string&, const std::string&, const std::string&,
                const os::LineSink&) override {
    return Down();
  }
  Result<os::RunResult> RunStep(const StepRequest&, const os::LineSink&) override { return Down(); }
  Status PrepareImage(const ImageRequest&, const os::LineSink&) override { return Down(); }
  Status RemoveImage(const std::string&) override { return Down(); }
  Result<std::string> DeployService(const ServiceSpec&) override { return Down(); }
  Result<ServiceView> InspectService(const std::string&) override { return Down(); }
  Result<std::vector<TaskView>> ServiceTasks(const std::string&) override { return Down(); }
  bool TaskHealthy(const std::string&) override { return false; }
  Status RollbackService(const std::string&) override { return Down(); }
  Result<int> AllocatePort() override { return Down(); }
  Result<InstanceHandle> StartInstance(const InstanceSpec&) override { return Down(); }
  bool IsRunning(const InstanceHandle&) override { return false; }
  long long MemoryBytes(const InstanceHandle&) override { return 0; }
  void StopInstance(const InstanceHandle&, std::chrono::milliseconds) override {}
  std::vector<std::string> RecentOutput(const InstanceHandle&, const std::string&, int) override {
    return {};
  }
  Result<int> ReapStrays(const std::vector<int>&, const std::vector<std::string>&) override {
    return Down();
  }
  Result<std::string> ReadFile(const std::string&, std::size_t) override { return Down(); }
  Status MovePath(const std::string&, const std::string&) override { return Down(); }
  Status WriteFile(const std::string&, const std::string&, int) override { return Down(); }
  Status RemovePath(const std::string&) override { return Down(); }
  Result<bool> PathExists(const std::string&) override { return Down(); }
  ProbeResult Probe(int, const std::string&, std::chrono::milliseconds) override { return {}; }

 private:
  static Status Down() { return Unavailable("fake agent"); }
};

// A worker that succeeds by default and records every call, for tests of what the control
// plane asks of its nodes. Fetch, Export, PrepareImage, MovePath, WriteFile and RemovePath
// succeed; Resolve answers `kSha`; ReadFile answers what WriteFile wrote there, else the
// manifest text for ".../slipway.yaml" (kNotFound otherwise); RunStep exits 0; AllocatePort
// hands out first_port, first_port + 1, ...; a started instance runs (and probes healthy)
// until it is stopped or crashed; PathExists says yes.
//
// Thread-safety: every method may be called from any thread (a node runs each op on a thread
// of its own, and a deployment calls several nodes at once). Hooks run without the agent's
// lock held.
class ScriptedAgent : public FakeAgent {
 public:
  static constexpr const char* kSha = "0123456789abcdef0123456789abcdef01234567";

  // What a step does when it runs (by its command).
  enum class Step {
    kSucceed,
    kFail,                // exits 3
    kThrow,               // throws std::runtime_error("boom")
    kBlockUntilCancelled  // waits (up to 10 s) for the step's cancel flag
  };

  struct Call {
    std::string op;   // the Agent method, e.g. "RunStep"
    std::string arg;  // what identifies the call: a command, a path, a port
  };

  explicit ScriptedAgent(std::string node, int first_port = 20000)
      : node_(std::move(node)), next_port_(first_port) {}

  // --- scripting ---------------------------------------------------------------------------
  void SetManifest(std::string text) {
    std::lock_guard lock(mu_);
    manifest_ = std::move(text);
  }
  void ScriptStep(const std::string& command, Step outcome) {
    std::lock_guard lock(mu_);
    steps_[command] = outcome;
  }
  // Called on the worker's thread when a step starts, before it does what it was scripted to.
  void OnStep(std::function<void(const StepRequest&)> hook) {
    std::lock_guard lock(mu_);
    on_step_ = std::move(hook);
  }
  // Whether a probe of a running instance on `port` answers 2xx (default: always).
  void SetHealth(std::function<bool(int port)> healthy) {
    std::lock_guard lock(mu_);
    healthy_ = std::move(healthy);
  }
  void SetHealthy(bool healthy) {
    SetHealth([healthy](int) { return healthy; });
  }
  // The instance on `port` died: not running, probes fail.
  void Crash(int port) {
    std::lock_guard lock(mu_);
    running_.erase(port);
  }

  // --- what happened -----------------------------------------------------------------------
  const std::string& node() const { return node_; }
  std::vector<Call> Calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  int Count(const std::string& op) const {
    std::lock_guard lock(mu_);
    return CountLocked(op, nullptr);
  }
  int Count(const std::string& op, const std::string& arg) const {
    std::lock_guard lock(mu_);
    return CountLocked(op, &arg);
  }
  // The ports of the instances started / stopped, in call order.
  std::vector<int> Started() const { return Ports("StartInstance"); }
  std::vector<int> Stopped() const { return Ports("StopInstance"); }
  struct WrittenFile {
    std::string content;
    int mode = 0;
  };
  // The files WriteFile wrote (and RemovePath did not remove), by path.
  std::map<std::string, WrittenFile> Files() const {
    std::lock_guard lock(mu_);
    return files_;
  }
  std::vector<InstanceSpec> Specs() const {
    std::lock_guard lock(mu_);
    return specs_;
  }
  bool IsRunningPort(int port) const {
    std::lock_guard lock(mu_);
    return running_.count(port) > 0;
  }
  // Waits until `op` (with `arg`, when given) has been called at least `n` times; false after
  // `timeout`. For tests that wait on a background loop.
  bool WaitForCount(const std::string& op, const std::string* arg, int n,
                    std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return CountLocked(op, arg) >= n; });
  }

  // --- Agent -------------------------------------------------------------------------------
  std::string name() const override { return node_; }
  Status Fetch(const std::string&, const std::string& cache_dir, const std::atomic<bool>*,
               const os::LineSink&) override {
    Record("Fetch", cache_dir);
    return Status::Ok();
  }
  Result<std::string> Resolve(const std::string&, const std::string& ref) override {
    Record("Resolve", ref);
    return std::string(kSha);
  }
  Status Export(const std::string&, const std::string&, const std::string& dest,
                const os::LineSink&) override {
    Record("Export", dest);
    return Status::Ok();
  }
  Result<std::string> ReadFile(const std::string& path, std::size_t) override {
    Record("ReadFile", path);
    std::lock_guard lock(mu_);
    if (auto it = files_.find(path); it != files_.end()) return it->second.content;
    const std::string name = "/slipway.yaml";
    bool manifest = path.size() >= name.size() && path.ends_with(name);
    if (!manifest || manifest_.empty()) return NotFound(path + ": no such file");
    return manifest_;
  }
  Status PrepareImage(const ImageRequest& request, const os::LineSink&) override {
    Record("PrepareImage", request.tag);
    return Status::Ok();
  }
  Result<os::RunResult> RunStep(const StepRequest& step, const os::LineSink& sink) override {
    Record("RunStep", step.command);
    Step outcome = Step::kSucceed;
    std::function<void(const StepRequest&)> hook;
    {
      std::lock_guard lock(mu_);
      if (auto it = steps_.find(step.command); it != steps_.end()) outcome = it->second;
      hook = on_step_;
    }
    if (hook) hook(step);
    if (sink) sink(os::OutputStream::kStdout, node_ + ": " + step.command);
    os::RunResult r;
    r.exit_code = 0;
    switch (outcome) {
      case Step::kSucceed:
        break;
      case Step::kFail:
        r.exit_code = 3;
        break;
      case Step::kThrow:
        throw std::runtime_error("boom");
      case Step::kBlockUntilCancelled:
        r.cancelled = WaitCancelled(step.cancel);
        if (r.cancelled) Record("Cancelled", step.command);
        break;
    }
    return r;
  }
  Result<int> AllocatePort() override {
    int port = 0;
    {
      std::lock_guard lock(mu_);
      port = next_port_++;
    }
    Record("AllocatePort", std::to_string(port));
    return port;
  }
  Result<InstanceHandle> StartInstance(const InstanceSpec& spec) override {
    {
      std::lock_guard lock(mu_);
      specs_.push_back(spec);
      running_.insert(spec.port);
    }
    Record("StartInstance", std::to_string(spec.port));
    InstanceHandle h;
    h.pid = 100000 + spec.port;
    h.start_ticks = 1;
    h.port = spec.port;
    h.runtime = spec.runtime;
    return h;
  }
  bool IsRunning(const InstanceHandle& h) override {
    bool running = IsRunningPort(h.port);
    Record("IsRunning", std::to_string(h.port));
    return running;
  }
  void StopInstance(const InstanceHandle& h, std::chrono::milliseconds) override {
    Crash(h.port);
    Record("StopInstance", std::to_string(h.port));
  }
  Result<int> ReapStrays(const std::vector<int>&, const std::vector<std::string>&) override {
    Record("ReapStrays", "");
    return 0;
  }
  Status MovePath(const std::string& from, const std::string& to) override {
    Record("MovePath", from + " -> " + to);
    return Status::Ok();
  }
  Status WriteFile(const std::string& path, const std::string& content, int mode) override {
    {
      std::lock_guard lock(mu_);
      files_[path] = {content, mode};
    }
    Record("WriteFile", path);
    return Status::Ok();
  }
  Status RemovePath(const std::string& path) override {
    {
      std::lock_guard lock(mu_);
      files_.erase(path);
    }
    Record("RemovePath", path);
    return Status::Ok();
  }
  Result<bool> PathExists(const std::string& path) override {
    Record("PathExists", path);
    return true;
  }
  ProbeResult Probe(int port, const std::string&, std::chrono::milliseconds) override {
    std::function<bool(int)> healthy;
    bool running = false;
    {
      std::lock_guard lock(mu_);
      healthy = healthy_;
      running = running_.count(port) > 0;
    }
    Record("Probe", std::to_string(port));
    ProbeResult p;
    if (!running) {
      p.error = "connection refused";
    } else {
      p.status = !healthy || healthy(port) ? 200 : 503;
      p.latency = std::chrono::microseconds(1000);
    }
    return p;
  }

 private:
  void Record(std::string op, std::string arg) {
    {
      std::lock_guard lock(mu_);
      calls_.push_back({std::move(op), std::move(arg)});
    }
    changed_.notify_all();
  }
  int CountLocked(const std::string& op, const std::string* arg) const {
    int n = 0;
    for (const auto& c : calls_) n += c.op == op && (!arg || c.arg == *arg);
    return n;
  }
  std::vector<int> Ports(const std::string& op) const {
    std::lock_guard lock(mu_);
    std::vector<int> out;
    for (const auto& c : calls_)
      if (c.op == op) out.push_back(std::stoi(c.arg));
    return out;
  }
  // A cancel arrives as a flag the node sets from another thread; polled, as a real step's
  // runner does.
  static bool WaitCancelled(const std::atomic<bool>* cancel) {
    for (int i = 0; i < 10000; ++i) {
      if (cancel && cancel->load()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

  const std::string node_;
  mutable std::mutex mu_;  // guards everything below
  mutable std::condition_variable changed_;
  int next_port_;
  std::string manifest_;
  std::map<std::string, Step> steps_;
  std::function<void(const StepRequest&)> on_step_;
  std::function<bool(int)> healthy_;
  std::set<int> running_;
  std::vector<InstanceSpec> specs_;
  std::map<std::string, WrittenFile> files_;
  std::vector<Call> calls_;
};

}  // namespace slipway::testing
