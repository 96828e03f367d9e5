#include "core/rollout.h"

#include <fmt/format.h>

#include <algorithm>

namespace slipway {

const char* ToString(OnInconclusive p) {
  switch (p) {
    case OnInconclusive::kAbort:
      return "abort";
    case OnInconclusive::kPromote:
      return "promote";
    case OnInconclusive::kPause:
      return "pause";
  }
  return "abort";
}

const char* ToString(Verdict v) {
  switch (v) {
    case Verdict::kNone:
      return "none";
    case Verdict::kPass:
      return "pass";
    case Verdict::kFail:
      return "fail";
    case Verdict::kInconclusive:
      return "inconclusive";
  }
  return "none";
}

const char* ToString(RolloutState s) {
  switch (s) {
    case RolloutState::kDeploying:
      return "deploying";
    case RolloutState::kBaking:
      return "baking";
    case RolloutState::kPaused:
      return "paused";
    case RolloutState::kSucceeded:
      return "succeeded";
    case RolloutState::kAborted:
      return "aborted";
  }
  return "deploying";
}

const char* ToString(RolloutAction a) {
  switch (a) {
    case RolloutAction::kDeployStage:
      return "deploy_stage";
    case RolloutAction::kSetWeight:
      return "set_weight";
    case RolloutAction::kWait:
      return "wait";
    case RolloutAction::kAnalyse:
      return "analyse";
    case RolloutAction::kAbort:
      return "abort";
    case RolloutAction::kFinish:
      return "finish";
  }
  return "wait";
}

std::string DescribeSide(const SideStats& s) {
  return fmt::format("{:.1f}% ({} of {}), p95 {:.1f} ms", s.error_rate() * 100, s.errors,
                     s.requests, s.p95_ms);
}

namespace {
std::string Percent(double v) {
  return fmt::format("{:.1f}%", v * 100);
}
std::string Rate(const SideStats& s) {
  return fmt::format("{} ({} of {})", Percent(s.error_rate()), s.errors, s.requests);
}
}  // namespace

Analysis Analyse(const AnalysisSpec& spec, const SideStats& canary, const SideStats& baseline) {
  Analysis a{Verdict::kPass, "", canary, baseline};
  auto fail = [&a](std::string why) {
    a.verdict = Verdict::kFail;
    a.reason = std::move(why);
    return a;
  };
  if (canary.requests < spec.min_requests || baseline.requests < spec.min_requests) {
    a.verdict = Verdict::kInconclusive;
    a.reason = fmt::format("too little traffic: canary {}, baseline {} requests (min_requests {})",
                           canary.requests, baseline.requests, spec.min_requests);
    return a;
  }
  const double ec = canary.error_rate(), eb = baseline.error_rate();
  if (spec.max_error_rate && ec > *spec.max_error_rate)
    return fail(fmt::format("error rate {} over max_error_rate {}", Rate(canary),
                            Percent(*spec.max_error_rate)));
  if (ec - eb > spec.max_error_rate_increase)
    return fail(fmt::format("error rate {} vs baseline {}: increase {} over {}", Rate(canary),
                            Rate(baseline), Percent(ec - eb),
                            Percent(spec.max_error_rate_increase)));
  if (spec.max_p95_ms && canary.p95_ms > *spec.max_p95_ms)
    return fail(
        fmt::format("p95 latency {:.1f} ms over max_p95_ms {:g}", canary.p95_ms, *spec.max_p95_ms));
  if (spec.max_p95_ratio && canary.p95_ms > *spec.max_p95_ratio * baseline.p95_ms &&
      canary.p95_ms - baseline.p95_ms > kP95NoiseFloorMs) {
    return fail(fmt::format("p95 latency {:.1f} ms vs baseline {:.1f} ms: over max_p95_ratio {:g}",
                            canary.p95_ms, baseline.p95_ms, *spec.max_p95_ratio));
  }
  return a;
}

RolloutMachine::RolloutMachine(std::vector<RolloutStageSpec> stages) : stages_(std::move(stages)) {
  if (stages_.empty()) stages_.push_back(RolloutStageSpec{});
  stages_.back().weight = 100;
}

std::string RolloutMachine::StageName() const {
  std::string labels;
  for (const auto& l : stages_[stage_].nodes) labels += (labels.empty() ? "" : ",") + l;
  return fmt::format("stage {}/{} ({})", stage_ + 1, stages_.size(), labels);
}

RolloutAction RolloutMachine::Next() const {
  switch (state_) {
    case RolloutState::kDeploying:
      return RolloutAction::kDeployStage;
    case RolloutState::kSucceeded:
      return RolloutAction::kFinish;
    case RolloutState::kAborted:
      return RolloutAction::kAbort;
    default:
      return RolloutAction::kWait;
  }
}

RolloutAction RolloutMachine::Begin(Clock::time_point /*now*/) {
  stage_ = 0;
  state_ = RolloutState::kDeploying;
  return RolloutAction::kDeployStage;
}

RolloutAction RolloutMachine::OnDeployed(Clock::time_point /*now*/) {
  if (state_ != RolloutState::kDeploying) return Next();
  if (stage_ + 1 == stages_.size()) {
    state_ = RolloutState::kSucceeded;
    weight_ = 100;
    return RolloutAction::kFinish;
  }
  weight_ = std::max(weight_, stages_[stage_].weight);
  return RolloutAction::kSetWeight;
}

RolloutAction RolloutMachine::OnStageFailed(const std::string& error) {
  if (state_ == RolloutState::kAborted || state_ == RolloutState::kSucceeded) return Next();
  return AbortWith(StageName() + " aborted: " + error);
}

RolloutAction RolloutMachine::OnWeightSet(Clock::time_point now) {
  if (state_ != RolloutState::kDeploying) return Next();
  state_ = RolloutState::kBaking;
  bake_start_ = now;
  interval_ = 0;
  failures_ = 0;
  passed_ = false;
  last_ = Analysis{};
  if (const auto& a = spec().analysis) next_analysis_ = now + a->interval;
  return AfterBakeCheck(now);
}

RolloutAction RolloutMachine::OnTick(Clock::time_point now) {
  if (!Active()) return Next();
  if (spec().analysis && now >= next_analysis_) return RolloutAction::kAnalyse;
  if (state_ == RolloutState::kPaused) return RolloutAction::kWait;
  return AfterBakeCheck(now);
}

RolloutAction RolloutMachine::OnAnalysis(Clock::time_point now, const SideStats& canary,
                                         const SideStats& baseline) {
  if (!Active() || !spec().analysis) return Next();
  const AnalysisSpec& a = *spec().analysis;
  ++interval_;
  next_analysis_ = now + a.interval;
  last_ = Analyse(a, canary, baseline);
  passed_ = last_.verdict == Verdict::kPass;
  if (last_.verdict == Verdict::kPass) failures_ = 0;
  if (last_.verdict == Verdict::kFail && ++failures_ >= a.failure_limit) {
    return AbortWith(fmt::format("{} aborted: analysis failed {} interval{} in a row: {}",
                                 StageName(), failures_, failures_ == 1 ? "" : "s", last_.reason));
  }
  if (state_ == RolloutState::kPaused) return RolloutAction::kWait;
  return AfterBakeCheck(now);
}

RolloutAction RolloutMachine::OnHealthFailed(const std::string& error) {
  if (!Active() && state_ != RolloutState::kDeploying) return Next();
  return AbortWith(StageName() + " aborted: " + error);
}

// After the bake: promote on a pass (or with no analysis); with no pass yet keep baking until
// max_bake, then apply the stage's policy. A failing last interval is never promoted.
RolloutAction RolloutMachine::AfterBakeCheck(Clock::time_point now) {
  const RolloutStageSpec& s = spec();
  if (now < bake_start_ + s.bake) return RolloutAction::kWait;
  if (!s.analysis) return PromoteFor("bake passed");
  if (passed_) return PromoteFor(fmt::format("bake passed; interval {} passed", interval_));
  if (now < bake_start_ + std::max(s.max_bake, s.bake)) return RolloutAction::kWait;
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - bake_start_);
  const double secs = static_cast<double>(waited.count()) / 1000;
  if (last_.verdict == Verdict::kFail)
    return AbortWith(fmt::format("{} aborted: still failing after {:.1f}s: {}", StageName(), secs,
                                 last_.reason));
  std::string what =
      fmt::format("inconclusive after {:.1f}s ({})", secs,
                  last_.verdict == Verdict::kNone ? "no interval analysed" : last_.reason);
  switch (s.on_inconclusive) {
    case OnInconclusive::kPromote:
      return PromoteFor(what + "; on_inconclusive: promote");
    case OnInconclusive::kPause:
      state_ = RolloutState::kPaused;
      note_ = what + "; waiting for rollout promote or abort";
      return RolloutAction::kWait;
    case OnInconclusive::kAbort:
      break;
  }
  return AbortWith(StageName() + " aborted: " + what + "; on_inconclusive: abort");
}

RolloutAction RolloutMachine::PromoteFor(const std::string& why) {
  note_ = why;
  ++stage_;
  state_ = RolloutState::kDeploying;
  return RolloutAction::kDeployStage;
}

RolloutAction RolloutMachine::AbortWith(std::string error) {
  state_ = RolloutState::kAborted;
  weight_ = 0;
  error_ = std::move(error);
  return RolloutAction::kAbort;
}

bool RolloutMachine::Promote(Clock::time_point /*now*/, const std::string& who) {
  if (!Active()) return false;
  PromoteFor("promoted by " + who);
  return true;
}

bool RolloutMachine::Abort(const std::string& who) {
  if (state_ == RolloutState::kAborted || state_ == RolloutState::kSucceeded) return false;
  AbortWith(StageName() + " aborted by " + who);
  return true;
}

std::chrono::milliseconds RolloutMachine::baked(Clock::time_point now) const {
  if (!Active()) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - bake_start_);
}

}  // namespace slipway
