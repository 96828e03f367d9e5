#include "core/rollout.h"

#include <gtest/gtest.h>

#include "support/fake_clock.h"

namespace slipway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

SideStats Side(std::int64_t requests, std::int64_t errors, double p95_ms = 1.0) {
  return {requests, errors, p95_ms};
}

// alpha (weight 0, no bake) → beta (10 %, 20 s bake, analysis every 5 s) → gamma.
std::vector<RolloutStageSpec> ThreeStages(OnInconclusive policy = OnInconclusive::kAbort,
                                          milliseconds max_bake = seconds(20)) {
  RolloutStageSpec alpha{
      {"alpha"}, 0, seconds(0), seconds(0), std::nullopt, OnInconclusive::kAbort};
  AnalysisSpec a;
  a.interval = seconds(5);
  a.min_requests = 20;
  a.max_p95_ratio = 2.0;
  RolloutStageSpec beta{{"beta"}, 10, seconds(20), max_bake, a, policy};
  RolloutStageSpec gamma{{"gamma"},  100,          seconds(0),
                         seconds(0), std::nullopt, OnInconclusive::kAbort};
  return {alpha, beta, gamma};
}

class RolloutTest : public ::testing::Test {
 protected:
  // Deploys stage 1 (promoted at once: no bake) and stage 2, and sets its weight.
  RolloutAction ToBetaBake() {
    EXPECT_EQ(m_.Begin(clock_.Now()), RolloutAction::kDeployStage);
    EXPECT_EQ(m_.OnDeployed(clock_.Now()), RolloutAction::kSetWeight);
    EXPECT_EQ(m_.weight(), 0);
    EXPECT_EQ(m_.OnWeightSet(clock_.Now()), RolloutAction::kDeployStage);  // no bake
    EXPECT_EQ(m_.stage(), 1u);
    EXPECT_EQ(m_.OnDeployed(clock_.Now()), RolloutAction::kSetWeight);
    EXPECT_EQ(m_.weight(), 10);
    return m_.OnWeightSet(clock_.Now());
  }
  // Advances to the next analysis and reports `canary` against a healthy baseline.
  RolloutAction Interval(SideStats canary, SideStats baseline = Side(500, 0)) {
    RolloutAction a = RolloutAction::kWait;
    for (int i = 0; i < 1000 && a == RolloutAction::kWait; ++i) {
      clock_.Advance(milliseconds(100));
      a = m_.OnTick(clock_.Now());
    }
    if (a != RolloutAction::kAnalyse) return a;
    return m_.OnAnalysis(clock_.Now(), canary, baseline);
  }

  testing::FakeClock clock_;
  RolloutMachine m_{ThreeStages()};
};

TEST_F(RolloutTest, HealthyCanaryIsPromotedAfterTheBakeAndTheLastStageFinishes) {
  EXPECT_EQ(ToBetaBake(), RolloutAction::kWait);
  EXPECT_EQ(m_.state(), RolloutState::kBaking);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Interval(Side(60, 0)), RolloutAction::kWait) << i;
  EXPECT_EQ(m_.last().verdict, Verdict::kPass);
  // The fourth interval ends at 20 s: the bake is over and it passed.
  EXPECT_EQ(Interval(Side(60, 0)), RolloutAction::kDeployStage);
  EXPECT_EQ(m_.stage(), 2u);
  EXPECT_EQ(m_.OnDeployed(clock_.Now()), RolloutAction::kFinish);
  EXPECT_EQ(m_.state(), RolloutState::kSucceeded);
  EXPECT_EQ(m_.weight(), 100);
}

TEST_F(RolloutTest, ErrorsAgainstAZeroErrorBaselineAbortAfterTheFailureLimit) {
  ToBetaBake();
  EXPECT_EQ(Interval(Side(60, 3)), RolloutAction::kWait);  // 5 %: first failure
  EXPECT_EQ(m_.failures_in_a_row(), 1);
  EXPECT_EQ(Interval(Side(60, 3)), RolloutAction::kAbort);
  EXPECT_EQ(m_.state(), RolloutState::kAborted);
  EXPECT_EQ(m_.weight(), 0);
  EXPECT_NE(m_.error().find("stage 2/3 (beta) aborted: analysis failed 2 intervals in a row"),
            std::string::npos)
      << m_.error();
  EXPECT_NE(m_.error().find("error rate 5.0% (3 of 60) vs baseline 0.0% (0 of 500)"),
            std::string::npos)
      << m_.error();
}

TEST_F(RolloutTest, APassInBetweenResetsTheRow) {
  ToBetaBake();
  Interval(Side(60, 3));
  Interval(Side(60, 0));
  EXPECT_EQ(m_.failures_in_a_row(), 0);
  EXPECT_EQ(Interval(Side(60, 3)), RolloutAction::kWait);
}

TEST_F(RolloutTest, SlowCanaryFailsTheP95RatioButNotBelowTheNoiseFloor) {
  ToBetaBake();
  EXPECT_EQ(Interval(Side(60, 0, 3.0), Side(500, 0, 0.5)), RolloutAction::kWait);
  EXPECT_EQ(m_.last().verdict, Verdict::kPass) << m_.last().reason;  // 6× but 2.5 ms apart
  Interval(Side(60, 0, 201.0), Side(500, 0, 0.9));
  EXPECT_EQ(m_.last().verdict, Verdict::kFail);
  EXPECT_NE(m_.last().reason.find("p95 latency 201.0 ms vs baseline 0.9 ms"), std::string::npos);
}

TEST_F(RolloutTest, TooLittleTrafficIsInconclusiveNeverAPass) {
  ToBetaBake();
  EXPECT_EQ(Interval(Side(5, 0)), RolloutAction::kWait);
  EXPECT_EQ(m_.last().verdict, Verdict::kInconclusive);
  EXPECT_NE(m_.last().reason.find("min_requests 20"), std::string::npos);
  Interval(Side(0, 0));
  Interval(Side(0, 0));
  // 20 s: max_bake = bake; the default policy aborts.
  EXPECT_EQ(Interval(Side(0, 0)), RolloutAction::kAbort);
  EXPECT_NE(m_.error().find("on_inconclusive: abort"), std::string::npos) << m_.error();
}

TEST(RolloutPolicy, PromoteAndPauseOnInconclusive) {
  testing::FakeClock clock;
  for (auto policy : {OnInconclusive::kPromote, OnInconclusive::kPause}) {
    RolloutMachine m(ThreeStages(policy));
    m.Begin(clock.Now());
    m.OnDeployed(clock.Now());
    m.OnWeightSet(clock.Now());
    m.OnDeployed(clock.Now());
    m.OnWeightSet(clock.Now());
    RolloutAction a = RolloutAction::kWait;
    for (int i = 0; i < 400 && m.state() == RolloutState::kBaking; ++i) {
      clock.Advance(milliseconds(100));
      a = m.OnTick(clock.Now());
      if (a == RolloutAction::kAnalyse) a = m.OnAnalysis(clock.Now(), Side(0, 0), Side(0, 0));
    }
    if (policy == OnInconclusive::kPromote) {
      EXPECT_EQ(a, RolloutAction::kDeployStage);
      EXPECT_NE(m.note().find("on_inconclusive: promote"), std::string::npos);
      continue;
    }
    EXPECT_EQ(m.state(), RolloutState::kPaused);
    clock.Advance(seconds(3600));  // a pause waits for a human, however long
    EXPECT_EQ(m.OnTick(clock.Now()), RolloutAction::kAnalyse);
    EXPECT_EQ(m.OnAnalysis(clock.Now(), Side(0, 0), Side(0, 0)), RolloutAction::kWait);
    EXPECT_EQ(m.state(), RolloutState::kPaused);
    EXPECT_TRUE(m.Promote(clock.Now(), "alice"));
    EXPECT_EQ(m.Next(), RolloutAction::kDeployStage);
    EXPECT_EQ(m.note(), "promoted by alice");
    EXPECT_FALSE(m.Promote(clock.Now(), "alice")) << "nothing to promote while deploying";
  }
}

TEST_F(RolloutTest, AFailingIntervalIsNeverPromotedByThePolicy) {
  m_ = RolloutMachine(ThreeStages(OnInconclusive::kPromote));
  ToBetaBake();
  Interval(Side(0, 0));
  Interval(Side(0, 0));
  Interval(Side(0, 0));
  EXPECT_EQ(Interval(Side(60, 6)), RolloutAction::kAbort);  // fails once, at max_bake
  EXPECT_EQ(m_.state(), RolloutState::kAborted);
}

TEST_F(RolloutTest, MaxBakeWaitsForDataThenPromotesOnAPass) {
  m_ = RolloutMachine(ThreeStages(OnInconclusive::kAbort, seconds(40)));
  ToBetaBake();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Interval(Side(3, 0)), RolloutAction::kWait) << i;
  EXPECT_EQ(Interval(Side(60, 0)), RolloutAction::kDeployStage);
  EXPECT_NE(m_.note().find("interval 6 passed"), std::string::npos) << m_.note();
}

TEST_F(RolloutTest, HumanAbortHealthFailureAndStageFailureAreFinal) {
  ToBetaBake();
  EXPECT_TRUE(m_.Abort("bob"));
  EXPECT_EQ(m_.Next(), RolloutAction::kAbort);
  EXPECT_EQ(m_.error(), "stage 2/3 (beta) aborted by bob");
  EXPECT_FALSE(m_.Abort("bob"));
  EXPECT_FALSE(m_.Promote(clock_.Now(), "bob"));
  EXPECT_EQ(m_.OnTick(clock_.Now()), RolloutAction::kAbort);

  RolloutMachine h(ThreeStages());
  h.Begin(clock_.Now());
  h.OnDeployed(clock_.Now());
  h.OnWeightSet(clock_.Now());
  EXPECT_EQ(h.OnStageFailed("node n2 lost"), RolloutAction::kAbort);
  EXPECT_EQ(h.error(), "stage 2/3 (beta) aborted: node n2 lost");

  RolloutMachine w(ThreeStages());
  w.Begin(clock_.Now());
  w.OnDeployed(clock_.Now());
  w.OnWeightSet(clock_.Now());
  w.OnDeployed(clock_.Now());
  w.OnWeightSet(clock_.Now());
  EXPECT_EQ(w.OnHealthFailed("health check failed"), RolloutAction::kAbort);
  EXPECT_EQ(w.weight(), 0);
}

TEST(RolloutAnalyse, RulesInOrderWithTheirFigures) {
  AnalysisSpec a;
  a.min_requests = 10;
  a.max_error_rate = 0.02;
  a.max_p95_ms = 150;
  EXPECT_EQ(Analyse(a, Side(100, 1), Side(100, 0)).verdict, Verdict::kPass);
  auto r = Analyse(a, Side(100, 3), Side(100, 3));
  EXPECT_EQ(r.verdict, Verdict::kFail);
  EXPECT_EQ(r.reason, "error rate 3.0% (3 of 100) over max_error_rate 2.0%");
  r = Analyse(a, Side(100, 0, 151), Side(100, 0, 150));
  EXPECT_EQ(r.reason, "p95 latency 151.0 ms over max_p95_ms 150");
  EXPECT_EQ(Analyse(a, Side(9, 9), Side(100, 0)).verdict, Verdict::kInconclusive);
  EXPECT_EQ(Analyse(a, Side(100, 0), Side(9, 0)).verdict, Verdict::kInconclusive);
  AnalysisSpec d;  // defaults: 1 point of increase allowed over the baseline
  d.min_requests = 10;
  EXPECT_EQ(Analyse(d, Side(100, 6), Side(100, 5)).verdict, Verdict::kPass);
  EXPECT_EQ(Analyse(d, Side(100, 7), Side(100, 5)).verdict, Verdict::kFail);
}

TEST(RolloutMachineShape, TheLastStageIsAlwaysTheFullSwitch) {
  RolloutMachine m(
      {RolloutStageSpec{{"a"}, 30, seconds(0), seconds(0), std::nullopt, OnInconclusive::kAbort}});
  testing::FakeClock clock;
  m.Begin(clock.Now());
  EXPECT_EQ(m.OnDeployed(clock.Now()), RolloutAction::kFinish);
  EXPECT_EQ(m.weight(), 100);
}

}  // namespace
}  // namespace slipway
