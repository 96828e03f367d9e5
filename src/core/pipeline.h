#pragma once
// The deploy pipeline as a pure state machine (DESIGN §5). It does no I/O: the runner in
// control/ executes the Action it is told, reports the outcome back as an input, and the
// machine decides what comes next. Time enters only through the `now` arguments, so the
// tests drive deadlines with a fake clock.
//
//   queued → fetch → checkout → build → test → release → start → verify → rollout → switch
//          → watch (old instance kept warm) → drain → done (succeeded)
//   rollout runs a phased rollout's canary stages (core/rollout.h) and is a no-op without
//   one; its abort ends rolled_back. The deploy deadline covers the stages before it (a
//   rollout bounds its own stages).
//   failure at or before switch → failed (old instance untouched)
//   health failure during watch → rolled_back (switch back at once)
//   cancel before switch → cancelled;  deadline passed before switch → failed
#include <chrono>
#include <string>

#include "core/clock.h"
#include "core/model.h"

namespace slipway {

struct PipelineOptions {
  // Whole-deployment deadline, measured from Begin(); only stages before the switch are
  // cut short by it (after the switch the new version is serving and watch/drain are bounded
  // by their own timers).
  std::chrono::milliseconds deploy_timeout{std::chrono::minutes(30)};
  // How long after the switch the old instance is kept warm while the new one is watched.
  std::chrono::milliseconds watch_window{std::chrono::seconds(10)};
};

enum class Action {
  kRunStage,    // run stage(); report OnStageSucceeded / OnStageFailed
  kWatchTick,   // probe the new instance; report OnWatchHealthFailed or OnTick
  kSwitchBack,  // point the gateway back at the old instance, then stop the new one
  kDiscardNew,  // stop whatever the deployment started; the old one keeps serving
  kFinish,      // nothing left to do; status() is terminal
};
const char* ToString(Action a);

class PipelineMachine {
 public:
  explicit PipelineMachine(PipelineOptions options = {}) : options_(options) {}

  // Starts the deployment at `now`. REQUIRES: called once, first.
  Action Begin(Clock::time_point now);
  // Replaces the options once the manifest is known (deadlines still count from Begin).
  // REQUIRES: before the switch.
  void SetOptions(PipelineOptions options);
  Action OnStageSucceeded(Clock::time_point now);
  Action OnStageFailed(std::string error, Clock::time_point now);
  Action OnWatchHealthFailed(std::string error, Clock::time_point now);
  // A phased rollout gave up (analysis, health, a human): rolled_back, the new instances
  // are discarded (the caller already routed everything back to the previous release).
  Action OnRolloutAborted(std::string error);
  // The runtime (Swarm) undid the new version by itself: nothing left to clean up.
  Action OnRuntimeRolledBack(std::string error);
  // Periodic input while a stage runs or during the watch window: applies deadlines.
  Action OnTick(Clock::time_point now);
  Action OnCancel(Clock::time_point now);
  // After kSwitchBack or kDiscardNew was carried out.
  Action OnCleanupDone();

  Stage stage() const { return stage_; }
  DeployStatus status() const { return status_; }
  const std::string& error() const { return error_; }
  // True once traffic went to the new instance (a failure now means rolling back).
  bool switched() const { return switched_; }
  Clock::time_point watch_deadline() const { return watch_deadline_; }

 private:
  Action Advance(Clock::time_point now);
  Action Fail(DeployStatus status, std::string error);
  bool Running() const { return status_ == DeployStatus::kRunning; }
  // Whether deploy.timeout still applies: before the rollout and the switch.
  bool Timed() const { return !switched_ && stage_ < Stage::kRollout; }

  PipelineOptions options_;
  Stage stage_ = Stage::kQueued;
  DeployStatus status_ = DeployStatus::kQueued;
  std::string error_;
  bool switched_ = false;
  bool cleaning_up_ = false;
  Clock::time_point begun_{};
  Clock::time_point deadline_{};
  Clock::time_point watch_deadline_{};
};

}  // namespace slipway
