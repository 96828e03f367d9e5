#pragma once
// Runs one deployment through the pipeline: the PipelineMachine decides, the Deployer does
// the I/O (through the Agent) and records every transition and output line as an event.
#include <atomic>

#include "control/actor.h"
#include "control/context.h"
#include "core/pipeline.h"
#include "manifest/manifest.h"

namespace slipway {

class Deployer {
 public:
  // `cancel` is set by the scheduler to stop the deployment; must outlive Run().
  // `credentials` (a git-credential login's) fetch an app whose repository URL has none.
  // `placement` (deploy --nodes) overrides the manifest's nodes: labels.
  Deployer(Context& ctx, Deployment deployment, const std::atomic<bool>& cancel,
           std::optional<GitCredential> credentials = std::nullopt,
           std::vector<std::string> placement = {});

  // Runs to a terminal status and stores it. Never throws.
  Deployment Run();

 private:
  Status RunStage(Stage stage);
  Result<std::string> NodeFor(const std::vector<std::string>& labels) const;
  Status Place();
  Status FollowManifestPlacement();
  // The agent of the node this deployment runs on.
  Agent& agent() { return ctx_.On(node_); }
  Status Fetch();
  Status Checkout();
  Status CheckPushIsTip(const std::string& sha);
  Status Steps(Stage stage, const std::vector<std::string>& steps);
  Status MakeRelease();
  Status PrepareImage();
  Status StartInstance();
  Status StartService();
  Status Verify();
  Status VerifyService();
  Status ProbeAll(const std::vector<TaskView>& tasks);
  Status Switch();
  Status WatchOnce();
  Status Drain();
  void SwitchBack();
  void DiscardNew();
  void PruneReleases();

  void Emit(Stage stage, const std::string& state, const std::string& text);
  void Save();
  std::map<std::string, std::string> StepEnv() const;
  void EmitLogTail(Stage stage);
  std::chrono::milliseconds Remaining() const;
  std::string FetchUrl() const;
  void RemoveBuildDir();

  Context& ctx_;
  Deployment d_;
  const std::atomic<bool>& cancel_;
  std::optional<GitCredential> credentials_;
  std::vector<std::string> placement_;  // --nodes
  std::string node_;                    // where it runs; "" until placed
  std::vector<std::string> placed_by_;  // the labels node_ was chosen for
  Clock::time_point started_{};
  PipelineMachine machine_;
  App app_;
  Manifest manifest_;
  std::string workdir_;
  Release release_;
  std::optional<Instance> new_instance_;
  std::shared_ptr<gateway::Target> new_target_;
  std::optional<Serving> previous_;  // what served before this deployment
  int watch_failures_ = 0;
  bool swarm() const { return manifest_.runtime == "swarm"; }
  bool runtime_rolled_back_ = false;  // Swarm undid the update itself
};

}  // namespace slipway
