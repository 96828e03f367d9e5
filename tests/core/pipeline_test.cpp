#include "core/pipeline.h"

#include <gtest/gtest.h>

#include "support/fake_clock.h"

namespace slipway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() : machine_({seconds(60), seconds(10)}) {}

  // Succeeds every stage until `stop` is current; returns the last action.
  Action RunUntil(Stage stop) {
    Action a = machine_.Begin(clock_.Now());
    while (machine_.stage() != stop && a == Action::kRunStage) {
      clock_.Advance(milliseconds(100));
      a = machine_.OnStageSucceeded(clock_.Now());
    }
    return a;
  }

  testing::FakeClock clock_;
  PipelineMachine machine_;
};

TEST_F(PipelineTest, WalksEveryStageInOrderAndSucceeds) {
  std::vector<Stage> seen;
  Action a = machine_.Begin(clock_.Now());
  while (a == Action::kRunStage) {
    seen.push_back(machine_.stage());
    a = machine_.OnStageSucceeded(clock_.Now());
  }
  EXPECT_EQ(seen, (std::vector<Stage>{Stage::kFetch, Stage::kCheckout, Stage::kBuild, Stage::kTest,
                                      Stage::kRelease, Stage::kStart, Stage::kVerify,
                                      Stage::kRollout, Stage::kSwitch}));
  ASSERT_EQ(a, Action::kWatchTick);
  EXPECT_TRUE(machine_.switched());
  clock_.Advance(seconds(5));
  EXPECT_EQ(machine_.OnTick(clock_.Now()), Action::kWatchTick) << "watch window still open";
  clock_.Advance(seconds(5));
  EXPECT_EQ(machine_.OnTick(clock_.Now()), Action::kRunStage);
  EXPECT_EQ(machine_.stage(), Stage::kDrain);
  EXPECT_EQ(machine_.OnStageSucceeded(clock_.Now()), Action::kFinish);
  EXPECT_EQ(machine_.status(), DeployStatus::kSucceeded);
}

TEST_F(PipelineTest, FailureBeforeSwitchDiscardsNewAndFails) {
  RunUntil(Stage::kVerify);
  EXPECT_EQ(machine_.OnStageFailed("unhealthy", clock_.Now()), Action::kDiscardNew);
  EXPECT_EQ(machine_.status(), DeployStatus::kFailed);
  EXPECT_EQ(machine_.error(), "verify: unhealthy");
  EXPECT_FALSE(machine_.switched());
  EXPECT_EQ(machine_.OnCleanupDone(), Action::kFinish);
}

TEST_F(PipelineTest, FailingTestStageStopsBeforeStart) {
  RunUntil(Stage::kTest);
  EXPECT_EQ(machine_.OnStageFailed("exit 1", clock_.Now()), Action::kDiscardNew);
  EXPECT_EQ(machine_.stage(), Stage::kTest);
  EXPECT_EQ(machine_.status(), DeployStatus::kFailed);
}

TEST_F(PipelineTest, HealthFailureInWatchWindowSwitchesBack) {
  ASSERT_EQ(RunUntil(Stage::kWatch), Action::kWatchTick);
  clock_.Advance(seconds(3));
  EXPECT_EQ(machine_.OnWatchHealthFailed("HTTP 500", clock_.Now()), Action::kSwitchBack);
  EXPECT_EQ(machine_.status(), DeployStatus::kRolledBack);
  EXPECT_EQ(machine_.error(), "watch: HTTP 500");
}

TEST_F(PipelineTest, DeadlineFailsARunningStageButNotAfterTheSwitch) {
  RunUntil(Stage::kBuild);
  clock_.Advance(seconds(61));
  EXPECT_EQ(machine_.OnTick(clock_.Now()), Action::kDiscardNew);
  EXPECT_EQ(machine_.status(), DeployStatus::kFailed);
  EXPECT_EQ(machine_.error(), "build: deployment timed out");

  PipelineMachine late({seconds(60), seconds(10)});
  Action a = late.Begin(clock_.Now());
  while (a == Action::kRunStage) a = late.OnStageSucceeded(clock_.Now());
  clock_.Advance(seconds(61));  // past the deadline, but the new version already serves
  EXPECT_EQ(late.OnTick(clock_.Now()), Action::kRunStage);
  EXPECT_EQ(late.stage(), Stage::kDrain);
}

TEST_F(PipelineTest, SucceededStageAfterDeadlineStillFails) {
  RunUntil(Stage::kBuild);
  clock_.Advance(seconds(61));
  EXPECT_EQ(machine_.OnStageSucceeded(clock_.Now()), Action::kDiscardNew);
  EXPECT_EQ(machine_.status(), DeployStatus::kFailed);
}

TEST_F(PipelineTest, CancelBeforeSwitchCancelsAfterSwitchIsIgnored) {
  RunUntil(Stage::kStart);
  EXPECT_EQ(machine_.OnCancel(clock_.Now()), Action::kDiscardNew);
  EXPECT_EQ(machine_.status(), DeployStatus::kCancelled);

  PipelineMachine queued;
  EXPECT_EQ(queued.OnCancel(clock_.Now()), Action::kFinish);
  EXPECT_EQ(queued.status(), DeployStatus::kCancelled);

  PipelineMachine switched({seconds(60), seconds(10)});
  Action a = switched.Begin(clock_.Now());
  while (a == Action::kRunStage) a = switched.OnStageSucceeded(clock_.Now());
  EXPECT_EQ(switched.OnCancel(clock_.Now()), Action::kWatchTick);
  EXPECT_EQ(switched.status(), DeployStatus::kRunning);
}

TEST_F(PipelineTest, DrainFailureKeepsTheDeploymentSucceeded) {
  RunUntil(Stage::kWatch);
  clock_.Advance(seconds(11));
  ASSERT_EQ(machine_.OnTick(clock_.Now()), Action::kRunStage);
  EXPECT_EQ(machine_.OnStageFailed("kill failed", clock_.Now()), Action::kFinish);
  EXPECT_EQ(machine_.status(), DeployStatus::kSucceeded);
}

TEST_F(PipelineTest, OptionsFromTheManifestMoveTheDeadline) {
  RunUntil(Stage::kBuild);
  machine_.SetOptions({seconds(5), seconds(1)});
  clock_.Advance(seconds(5));
  EXPECT_EQ(machine_.OnTick(clock_.Now()), Action::kDiscardNew);
}

TEST(ModelStrings, RoundTrip) {
  for (auto s : {DeployStatus::kQueued, DeployStatus::kRunning, DeployStatus::kSucceeded,
                 DeployStatus::kFailed, DeployStatus::kRolledBack, DeployStatus::kCancelled}) {
    EXPECT_EQ(DeployStatusFromString(ToString(s)), s);
  }
  EXPECT_EQ(StageFromString("verify"), Stage::kVerify);
  EXPECT_FALSE(StageFromString("nope").has_value());
}

}  // namespace
}  // namespace slipway

namespace slipway {
namespace {

TEST(PipelineRollout, ALongRolloutIsNotCutByTheDeployTimeoutAndItsAbortRollsBack) {
  testing::FakeClock clock;
  PipelineMachine m({std::chrono::seconds(60), std::chrono::seconds(10)});
  Action a = m.Begin(clock.Now());
  while (m.stage() != Stage::kRollout) a = m.OnStageSucceeded(clock.Now());
  ASSERT_EQ(a, Action::kRunStage);
  clock.Advance(std::chrono::minutes(30));  // a long bake, well past deploy.timeout
  EXPECT_EQ(m.OnStageSucceeded(clock.Now()), Action::kRunStage);
  EXPECT_EQ(m.stage(), Stage::kSwitch);
  EXPECT_EQ(m.OnStageSucceeded(clock.Now()), Action::kWatchTick) << "the switch is kept";

  PipelineMachine r({std::chrono::seconds(60), std::chrono::seconds(10)});
  r.Begin(clock.Now());
  while (r.stage() != Stage::kRollout) r.OnStageSucceeded(clock.Now());
  EXPECT_EQ(r.OnRolloutAborted("stage 2/3 (beta): aborted by bob"), Action::kDiscardNew);
  EXPECT_EQ(r.status(), DeployStatus::kRolledBack);
  EXPECT_EQ(r.error(), "rollout: stage 2/3 (beta): aborted by bob");
  EXPECT_EQ(r.OnCleanupDone(), Action::kFinish);
}

}  // namespace
}  // namespace slipway
