#include "core/pipeline.h"

#include <utility>

namespace slipway {

const char* ToString(Action a) {
  switch (a) {
    case Action::kRunStage:
      return "run_stage";
    case Action::kWatchTick:
      return "watch_tick";
    case Action::kSwitchBack:
      return "switch_back";
    case Action::kDiscardNew:
      return "discard_new";
    case Action::kFinish:
      return "finish";
  }
  return "unknown";
}

Action PipelineMachine::Begin(Clock::time_point now) {
  status_ = DeployStatus::kRunning;
  begun_ = now;
  deadline_ = now + options_.deploy_timeout;
  stage_ = Stage::kFetch;
  return Action::kRunStage;
}

void PipelineMachine::SetOptions(PipelineOptions options) {
  options_ = options;
  deadline_ = begun_ + options_.deploy_timeout;
}

Action PipelineMachine::Advance(Clock::time_point now) {
  stage_ = static_cast<Stage>(static_cast<int>(stage_) + 1);
  if (stage_ == Stage::kWatch) {
    switched_ = true;
    watch_deadline_ = now + options_.watch_window;
    return Action::kWatchTick;
  }
  if (stage_ == Stage::kDone) {
    status_ = DeployStatus::kSucceeded;
    return Action::kFinish;
  }
  return Action::kRunStage;
}

Action PipelineMachine::OnStageSucceeded(Clock::time_point now) {
  if (!Running() || stage_ == Stage::kWatch) return Action::kFinish;
  if (Timed() && now >= deadline_) return OnTick(now);
  return Advance(now);
}

Action PipelineMachine::Fail(DeployStatus status, std::string error) {
  status_ = status;
  error_ = std::move(error);
  cleaning_up_ = true;
  return switched_ ? Action::kSwitchBack : Action::kDiscardNew;
}

Action PipelineMachine::OnStageFailed(std::string error, Clock::time_point /*now*/) {
  if (!Running()) return Action::kFinish;
  // A drain that goes wrong after a healthy switch does not undo the deployment: the new
  // version serves; the failure is reported in the events by the runner.
  if (stage_ == Stage::kDrain) {
    stage_ = Stage::kDone;
    status_ = DeployStatus::kSucceeded;
    return Action::kFinish;
  }
  return Fail(switched_ ? DeployStatus::kRolledBack : DeployStatus::kFailed,
              std::string(ToString(stage_)) + ": " + std::move(error));
}

Action PipelineMachine::OnWatchHealthFailed(std::string error, Clock::time_point now) {
  if (!Running() || stage_ != Stage::kWatch) return OnTick(now);
  return Fail(DeployStatus::kRolledBack, "watch: " + std::move(error));
}

Action PipelineMachine::OnRolloutAborted(std::string error) {
  if (!Running() || switched_) return Action::kFinish;
  return Fail(DeployStatus::kRolledBack, "rollout: " + std::move(error));
}

Action PipelineMachine::OnRuntimeRolledBack(std::string error) {
  if (!Running()) return Action::kFinish;
  status_ = DeployStatus::kRolledBack;
  error_ = std::string(ToString(stage_)) + ": " + std::move(error);
  return Action::kFinish;
}

Action PipelineMachine::OnTick(Clock::time_point now) {
  if (!Running()) return Action::kFinish;
  if (stage_ == Stage::kWatch) {
    return now >= watch_deadline_ ? Advance(now) : Action::kWatchTick;
  }
  if (Timed() && now >= deadline_) {
    return Fail(DeployStatus::kFailed, std::string(ToString(stage_)) + ": deployment timed out");
  }
  return Action::kRunStage;
}

Action PipelineMachine::OnCancel(Clock::time_point /*now*/) {
  if (status_ == DeployStatus::kQueued) {
    status_ = DeployStatus::kCancelled;
    return Action::kFinish;
  }
  // After the switch the new version serves; cancelling no longer applies.
  if (!Running()) return Action::kFinish;
  if (switched_) return stage_ == Stage::kWatch ? Action::kWatchTick : Action::kRunStage;
  return Fail(DeployStatus::kCancelled, std::string(ToString(stage_)) + ": cancelled");
}

Action PipelineMachine::OnCleanupDone() {
  cleaning_up_ = false;
  return Action::kFinish;
}

}  // namespace slipway
