#pragma once
// Phased rollouts as a pure state machine (docs/ROLLOUTS.md). No I/O: the Deployer deploys a
// stage, sets weights, reads the gateway's windows and reports back; the machine decides
// when to analyse, promote, pause or abort. Time enters only through `now` arguments, so
// the tests drive bakes and intervals with a fake clock.
//
//   deploy stage 1 → [weight w1 → bake (analyse every interval)] → promote → deploy stage 2
//   → … → the last stage: the full switch (the pipeline's switch, watch and drain follow)
//   a failing analysis (failure_limit in a row), a failed health check, a failed stage
//   deployment or a human abort → aborted (final for this deployment)
//   no passing interval by max_bake → on_inconclusive: abort | promote | pause (a human
//   promotes or aborts)
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace slipway {

struct AnalysisSpec {
  std::chrono::milliseconds interval{std::chrono::seconds(10)};
  std::int64_t min_requests = 50;  // on each side, per interval
  std::optional<double> max_error_rate;
  double max_error_rate_increase = 0.01;  // canary minus baseline
  std::optional<double> max_p95_ratio;    // canary p95 over baseline p95
  std::optional<double> max_p95_ms;
  int failure_limit = 2;  // failing intervals in a row that abort
};

enum class OnInconclusive { kAbort, kPromote, kPause };
const char* ToString(OnInconclusive p);

struct RolloutStageSpec {
  std::vector<std::string> nodes;  // labels
  int weight = 0;                  // 0..100; the last stage is always 100
  std::chrono::milliseconds bake{0};
  std::chrono::milliseconds max_bake{0};  // >= bake
  std::optional<AnalysisSpec> analysis;
  OnInconclusive on_inconclusive = OnInconclusive::kAbort;
};

// One side's traffic over one interval.
struct SideStats {
  std::int64_t requests = 0;
  std::int64_t errors = 0;  // 5xx and connection failures
  double p95_ms = 0;
  double error_rate() const {
    return requests > 0 ? static_cast<double>(errors) / static_cast<double>(requests) : 0;
  }
};

enum class Verdict { kNone, kPass, kFail, kInconclusive };
const char* ToString(Verdict v);

struct Analysis {
  Verdict verdict = Verdict::kNone;
  std::string reason;  // which rule failed, or why inconclusive; "" for a pass
  SideStats canary, baseline;
};

// A p95 ratio rule ignores differences below this: two fast instances (0.3 ms against 0.9 ms)
// differ by a large ratio and nothing a user notices.
constexpr double kP95NoiseFloorMs = 5.0;

// The verdict of one interval. Inconclusive when either side has fewer than min_requests;
// a fail names the first rule broken with its figures; a canary with errors against a
// baseline with none fails on max_error_rate_increase once it has enough requests.
Analysis Analyse(const AnalysisSpec& spec, const SideStats& canary, const SideStats& baseline);

enum class RolloutState { kDeploying, kBaking, kPaused, kSucceeded, kAborted };
const char* ToString(RolloutState s);

enum class RolloutAction {
  kDeployStage,  // deploy stage() on its nodes; report OnDeployed or OnStageFailed
  kSetWeight,    // route weight() of the app's traffic to the canary; report OnWeightSet
  kWait,         // sleep a little (watching health, taking commands), then OnTick
  kAnalyse,      // read both sides over the interval; report OnAnalysis
  kAbort,        // route everything to the baseline, undo every stage; error() says why
  kFinish,       // every stage passed: the caller does the full switch
};
const char* ToString(RolloutAction a);

class RolloutMachine {
 public:
  // REQUIRES: 1..8 stages, weights 0..100, max_bake >= bake (the manifest enforces them).
  explicit RolloutMachine(std::vector<RolloutStageSpec> stages);

  RolloutAction Begin(Clock::time_point now);
  RolloutAction OnDeployed(Clock::time_point now);
  RolloutAction OnStageFailed(const std::string& error);
  RolloutAction OnWeightSet(Clock::time_point now);
  RolloutAction OnTick(Clock::time_point now);
  RolloutAction OnAnalysis(Clock::time_point now, const SideStats& canary,
                           const SideStats& baseline);
  RolloutAction OnHealthFailed(const std::string& error);
  // A human's promote: ends the current bake (or pause) now. False (nothing changes) unless
  // baking or paused.
  bool Promote(Clock::time_point now, const std::string& who);
  // A human's abort. False when the rollout already ended.
  bool Abort(const std::string& who);

  // The action for the current state: how to carry on after a human's promote or abort.
  RolloutAction Next() const;
  // "stage 2/3 (beta)" for the current stage.
  std::string StageName() const;
  RolloutState state() const { return state_; }
  std::size_t stage() const { return stage_; }  // 0-based
  std::size_t stages() const { return stages_.size(); }
  const RolloutStageSpec& spec() const { return stages_[stage_]; }
  const std::vector<RolloutStageSpec>& specs() const { return stages_; }
  // The canary weight the gateway should have now (0 before any stage set one, after an
  // abort, and while a stage with weight 0 runs).
  int weight() const { return weight_; }
  const std::string& error() const { return error_; }
  const Analysis& last() const { return last_; }
  int interval() const { return interval_; }  // intervals analysed in this stage
  int failures_in_a_row() const { return failures_; }
  std::chrono::milliseconds baked(Clock::time_point now) const;
  // Why the last promotion or pause happened ("bake passed", "promoted by alice", …).
  const std::string& note() const { return note_; }

 private:
  RolloutAction PromoteFor(const std::string& why);
  RolloutAction AbortWith(std::string error);
  RolloutAction AfterBakeCheck(Clock::time_point now);
  bool Active() const { return state_ == RolloutState::kBaking || state_ == RolloutState::kPaused; }

  std::vector<RolloutStageSpec> stages_;
  std::size_t stage_ = 0;
  RolloutState state_ = RolloutState::kDeploying;
  int weight_ = 0;
  Clock::time_point bake_start_{};
  Clock::time_point next_analysis_{};
  int interval_ = 0;
  int failures_ = 0;
  bool passed_ = false;  // the last analysed interval passed
  Analysis last_;
  std::string error_;
  std::string note_;
};

// "5.1% (12 of 236)" and the like, for reasons and events.
std::string DescribeSide(const SideStats& s);

}  // namespace slipway
