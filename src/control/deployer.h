#pragma once
// Runs one deployment through the pipeline: the PipelineMachine decides, the Deployer does
// the I/O (through the Agents of the nodes it runs on) and records every transition and
// output line as an event.
//
// A deployment runs on every node its placement matches (one Unit each): each node fetches,
// builds, tests, keeps its own copy of the release and starts and verifies its own
// instance; the switch then points the gateway at the new instances of all nodes at once
// (a round-robin pool across nodes), and the previous instances of all nodes are drained.
// With `deploy.strategy: parallel` (the default) a stage runs on all nodes at once; with
// `one-by-one` it runs on one node after another and stops at the first failure, so a
// broken build touches a single node. Either way a failure on any node fails the stage,
// and the other nodes' new instances are discarded with it.
//
// With `rollout.stages` (and a previous release serving to compare with) the pipeline runs
// on the first stage's nodes, then the rollout stage deploys each later stage's nodes in
// turn, routes the stage's weight to the new instances and bakes them against the previous
// ones (deployer_rollout.cpp, core/rollout.h) before the full switch.
#include <atomic>
#include <functional>

#include <nlohmann/json.hpp>

#include "control/actor.h"
#include "control/context.h"
#include "core/pipeline.h"
#include "core/rollout.h"
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
  // One node's share of the deployment. A unit's fields are written only by the thread
  // that runs a stage on it.
  struct Unit {
    std::string node;
    std::string workdir;               // build directory on the node; "" once moved or removed
    std::optional<Instance> instance;  // started by this deployment
    std::shared_ptr<gateway::Target> target;
    int watch_failures = 0;
  };
  using UnitFn = std::function<Status(Unit&)>;

  Status RunStage(Stage stage);
  // Runs `fn` on every unit (see the header comment for the strategy); the first failure,
  // prefixed with its node's name when there are several, is the result. `parallel` false
  // forces one node after another. A throw on a unit's thread fails that unit.
  Status ForEachUnit(const UnitFn& fn, bool parallel);
  Status ForEachUnit(const UnitFn& fn) {
    return ForEachUnit(fn, manifest_.strategy != "one-by-one");
  }
  Result<std::vector<std::string>> NodesFor(const std::vector<std::string>& labels) const;
  // Where the manifest places the deployment (the first rollout stage's nodes, or all the
  // stages' nodes for a first release).
  Result<std::vector<std::string>> ManifestNodes();
  bool StartsRollout() const;
  void PlaceOn(const std::vector<std::string>& nodes);
  Status Place();
  Status FollowManifestPlacement();
  Agent& agent(const Unit& u) { return ctx_.On(u.node); }
  // Prefix of a unit's output lines and messages: "[node] " when the deployment has several.
  std::string Tag(const Unit& u) const;
  os::LineSink SinkFor(const Unit& u, const std::string& stage, bool stderr_only = false);

  Status Fetch();
  Status Checkout();
  Status ExportOn(Unit& u);
  Status ReadManifest(Unit& u);
  bool IsSharedAppOf(const std::string& name) const;
  // Asks ctx_.injection for the app's injection (once, after the manifest is known).
  Status LoadInjection(Stage stage);
  // `text` with the injection's secrets redacted: what every event and error goes through.
  std::string Redacted(std::string text) const;
  Status CheckPushIsTip(const std::string& sha);
  Status Steps(Unit& u, Stage stage, const std::vector<std::string>& steps);
  Status MakeRelease();
  Status RetainedRelease();
  Status ReleaseOn(Unit& u);
  Status PrepareImage(Unit& u);
  Status StartInstance(Unit& u);
  Status StartService();
  Status Verify(Unit& u);
  Status CheckLatency(Unit& u);
  Status CheckMemory(Unit& u);
  Status VerifyService();
  Status ProbeAll(const std::vector<TaskView>& tasks);
  // The phased rollout (deployer_rollout.cpp).
  Status RunRollout();
  Status RolloutStep(RolloutAction& action);
  Status DeployRolloutStage();
  void TargetsFor(std::size_t from);
  void SetCanaryWeight(int weight);
  void WaitTick(RolloutAction& action);
  void Analyse(RolloutAction& action);
  std::vector<std::shared_ptr<gateway::Target>> CanaryTargets() const;
  nlohmann::json RolloutJson(const std::string& state) const;
  void PublishRollout(const std::string& state, bool running);
  void Paused();
  void DrainCanaries();
  bool TakeCommand(RolloutAction& action);
  Status WatchCanaries();
  // `stage` is the 0-based stage the decision was about.
  void AuditRollout(const std::string& action, const std::string& who, const std::string& text,
                    std::size_t stage);
  void Notify(const std::string& event);
  Status Switch();
  Status SwitchService();
  Status WatchOnce();
  Status WatchUnit(Unit& u);
  Status WatchService();
  Status Drain();
  void SwitchBack();
  void DiscardNew();
  void DiscardService();
  void PruneReleases();

  void Emit(Stage stage, const std::string& state, const std::string& text);
  void Save();
  std::map<std::string, std::string> StepEnv() const;
  void EmitLogTail(Unit& u, Stage stage);
  std::chrono::milliseconds Remaining() const;
  std::string FetchUrl() const;
  void RemoveBuildDirs();
  std::vector<std::string> UnitNodes() const;

  Context& ctx_;
  Deployment d_;
  const std::atomic<bool>& cancel_;
  std::optional<GitCredential> credentials_;
  std::vector<std::string> placement_;  // --nodes
  std::vector<Unit> units_;             // where it runs; empty until placed
  Clock::time_point started_{};
  PipelineMachine machine_;
  App app_;
  Manifest manifest_;
  Injection injection_;  // set before the build, read by every stage (and unit thread) after
  Release release_;
  std::optional<Serving> previous_;  // what served before this deployment
  int service_watch_failures_ = 0;
  std::optional<RolloutMachine> rollout_;  // set when this deployment rolls out in stages
  bool rollout_aborted_ = false;
  std::string decided_by_;  // the person whose promote or abort the rollout is carrying out
  std::size_t from_ = 0;    // ForEachUnit runs on units_[from_..]: a rollout stage's new nodes
  std::vector<std::vector<std::string>> stage_nodes_;  // node names per reached stage
  Clock::time_point next_watch_{};
  bool swarm() const { return manifest_.runtime == "swarm"; }
  bool runtime_rolled_back_ = false;  // Swarm undid the update itself
};

}  // namespace slipway
