#pragma once
// An Agent that does nothing on a node: every operation fails with kUnavailable unless a
// test sets a behaviour. CheckCredentials answers from `git_users` and counts its calls.
#include <map>

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
  Status RemovePath(const std::string&) override { return Down(); }
  Result<bool> PathExists(const std::string&) override { return Down(); }
  ProbeResult Probe(int, const std::string&, std::chrono::milliseconds) override { return {}; }

 private:
  static Status Down() { return Unavailable("fake agent"); }
};

}  // namespace slipway::testing
