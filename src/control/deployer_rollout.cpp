// The Deployer's phased rollout (the `rollout` stage): the RolloutMachine decides, this file
// deploys each later stage's nodes, routes the canary weight, reads the gateway's windows,
// watches health and takes a human's promote or abort from the RolloutBoard.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "control/deployer.h"
#include "control/deployer_util.h"
#include "control/instances.h"
#include "control/rollout_board.h"
#include "notify/notifier.h"

namespace slipway {
using std::chrono::milliseconds;

namespace {

SideStats SideOf(const gateway::WindowStats& w) {
  return {w.requests, w.errors, w.p95 * 1000};
}

nlohmann::json SideJson(const SideStats& s) {
  return {{"requests", s.requests},
          {"errors", s.errors},
          {"error_rate", s.error_rate()},
          {"p95_ms", std::round(s.p95_ms * 100) / 100}};
}

// The seconds of the gateway window an interval covers (the window keeps 60).
int WindowSeconds(milliseconds interval) {
  return std::clamp(static_cast<int>((interval.count() + 999) / 1000), 1,
                    gateway::SlidingWindow::kSlots);
}

constexpr milliseconds kTick{100};
constexpr milliseconds kWatchEvery{1000};

}  // namespace

// Every decision of the rollout is an audit entry as well as an event: who decided (a
// person's promote or abort, else "system"), the stage and the last interval's figures.
void Deployer::AuditRollout(const std::string& action, const std::string& who,
                            const std::string& text, std::size_t stage) {
  AuditEvent a;
  a.actor = who.empty() ? "system" : who;
  a.action = "rollout." + action;
  a.target = "deployment/" + std::to_string(d_.id);
  a.app = app_.name;
  const Analysis& last = rollout_->last();
  a.detail_json = nlohmann::json{{"stage", stage + 1},
                                 {"text", text},
                                 {"verdict", ToString(last.verdict)},
                                 {"canary", SideJson(last.canary)},
                                 {"baseline", SideJson(last.baseline)}}
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (auto s = ctx_.store.AppendAudit(a); !s.ok())
    spdlog::error("deployment {}: cannot audit {}: {}", d_.id, a.action, s.message());
}

std::vector<std::shared_ptr<gateway::Target>> Deployer::CanaryTargets() const {
  std::vector<std::shared_ptr<gateway::Target>> out;
  for (const auto& u : units_)
    if (u.target) out.push_back(u.target);
  return out;
}

// Gateway targets for the instances started on units_[from..].
void Deployer::TargetsFor(std::size_t from) {
  for (std::size_t i = from; i < units_.size(); ++i) {
    Unit& u = units_[i];
    if (u.target || !u.instance) continue;
    auto t = TargetOf(ctx_, fmt::format("{}-r{}-i{}", app_.name, release_.number, u.instance->id),
                      *u.instance);
    if (t.ok()) u.target = *t;
  }
}

// The stage's weight on the new instances, the rest on the previous release. 0 = everything
// on the previous release (the canaries only answer health checks).
void Deployer::SetCanaryWeight(int weight) {
  auto canary = CanaryTargets();
  if (weight <= 0 || canary.empty()) {
    RouteTo(ctx_.router, app_.name, previous_->targets);
    return;
  }
  gateway::Side stable;
  stable.name = "stable";
  stable.weight = static_cast<std::uint32_t>(100 - weight);
  stable.targets = previous_->targets;
  gateway::Side next;
  next.name = "canary";
  next.weight = static_cast<std::uint32_t>(weight);
  next.targets = std::move(canary);
  ctx_.router.SetSides(app_.name, {stable, next});
}

// A later stage: its new nodes fetch, build, test, keep the release and start and verify
// their instance, exactly as the first stage's did in the pipeline. Its builds get a whole
// deploy.timeout of their own.
Status Deployer::DeployRolloutStage() {
  auto nodes = NodesFor(rollout_->spec().nodes);
  if (!nodes.ok()) return nodes.status();
  from_ = units_.size();
  std::vector<std::string> fresh;
  for (const auto& n : *nodes) {
    if (std::none_of(units_.begin(), units_.end(), [&](const Unit& u) { return u.node == n; })) {
      units_.push_back(Unit{n, "", std::nullopt, nullptr, 0});
      fresh.push_back(n);
    }
  }
  stage_nodes_.push_back(fresh);
  struct Reset {
    std::size_t& from;
    ~Reset() { from = 0; }
  } reset{from_};
  if (fresh.empty()) return Status::Ok();  // the stage only raises the weight
  started_ = ctx_.clock.Now();
  Emit(Stage::kRollout, "info",
       rollout_->StageName() + ": fetching and building on " + JoinNodes(fresh));
  auto fetch = [this](Unit& u) {
    return agent(u).Fetch(FetchUrl(), ctx_.paths.cache(app_.name), &cancel_, SinkFor(u, "fetch"));
  };
  if (auto s = ForEachUnit(fetch, true); !s.ok()) return s;
  if (auto s = ForEachUnit([this](Unit& u) { return ExportOn(u); }, true); !s.ok()) return s;
  auto build = [this](Unit& u) { return Steps(u, Stage::kBuild, manifest_.build); };
  if (auto s = ForEachUnit(build); !s.ok()) return s;
  auto test = [this](Unit& u) { return Steps(u, Stage::kTest, manifest_.test); };
  if (auto s = ForEachUnit(test); !s.ok()) return s;
  if (auto s = ForEachUnit([this](Unit& u) { return ReleaseOn(u); }); !s.ok()) return s;
  if (auto s = ctx_.store.SetReleaseNodes(release_.id, UnitNodes()); !s.ok()) return s;
  if (auto s = ForEachUnit([this](Unit& u) { return StartInstance(u); }); !s.ok()) return s;
  if (auto s = ForEachUnit([this](Unit& u) { return Verify(u); }); !s.ok()) return s;
  TargetsFor(from_);
  return Status::Ok();
}

Status Deployer::RunRollout() {
  RolloutMachine& m = *rollout_;
  stage_nodes_ = {UnitNodes()};  // the first stage ran in the pipeline
  TargetsFor(0);
  RolloutAction action = m.Begin(ctx_.clock.Now());
  action = m.OnDeployed(ctx_.clock.Now());
  while (action != RolloutAction::kFinish && action != RolloutAction::kAbort) {
    if (auto s = RolloutStep(action); !s.ok()) return s;
  }
  if (action == RolloutAction::kAbort) {
    RouteTo(ctx_.router, app_.name, previous_->targets);  // weight 0 at once
    DrainCanaries();
    rollout_aborted_ = true;
    Emit(Stage::kRollout, "info", "rollout aborted: " + m.error());
    AuditRollout("aborted", decided_by_, m.error(), m.stage());
    PublishRollout("aborted", true);
    Notify("aborted");
    return {Code::kUnhealthy, m.error()};
  }
  Emit(Stage::kRollout, "info",
       fmt::format("every stage passed; switching all traffic to release {}", release_.number));
  return Status::Ok();
}

// Requests the canaries are still answering finish before they are stopped (at most
// deploy.drain_timeout): the route went back already, so nothing new reaches them.
void Deployer::DrainCanaries() {
  auto canaries = CanaryTargets();
  auto inflight = [&canaries] {
    std::int64_t n = 0;
    for (const auto& t : canaries) n += t->inflight();
    return n;
  };
  auto deadline = ctx_.clock.Now() + manifest_.drain_timeout;
  while (inflight() > 0 && ctx_.clock.Now() < deadline) ctx_.clock.SleepFor(milliseconds(10));
}

// A person's promote or abort left on the board, if any: carried out, and the next action
// left in `action`. False when there was none (or it no longer applies).
bool Deployer::TakeCommand(RolloutAction& action) {
  if (!ctx_.rollouts) return false;
  auto c = ctx_.rollouts->Take(app_.name);
  if (!c) return false;
  RolloutMachine& m = *rollout_;
  bool abort = c->kind == RolloutCommand::Kind::kAbort;
  if (!(abort ? m.Abort(c->who) : m.Promote(ctx_.clock.Now(), c->who))) return false;
  decided_by_ = c->who;
  action = m.Next();
  return true;
}

// One action of the machine; the next one is left in `action`.
Status Deployer::RolloutStep(RolloutAction& action) {
  RolloutMachine& m = *rollout_;
  const std::string name = m.StageName();
  const std::size_t stage = m.stage();
  switch (action) {
    case RolloutAction::kDeployStage: {
      PublishRollout("deploying", true);
      Status s = DeployRolloutStage();
      if (!s.ok()) {
        action = m.OnStageFailed(s.message());
        break;
      }
      // An abort asked while the stage deployed is carried out now. Before the last stage
      // counts as deployed, the board says "switching" (it takes no abort from then on) and
      // an abort that came in before that is still honoured.
      if (m.stage() + 1 == m.stages()) PublishRollout("switching", true);
      if (!TakeCommand(action)) action = m.OnDeployed(ctx_.clock.Now());
      break;
    }
    case RolloutAction::kSetWeight:
      SetCanaryWeight(m.weight());
      Emit(Stage::kRollout, "info",
           fmt::format("{}: deployed on {}; canary weight {}%", name,
                       stage_nodes_.back().empty() ? "no new node" : JoinNodes(stage_nodes_.back()),
                       m.weight()));
      action = m.OnWeightSet(ctx_.clock.Now());
      next_watch_ = ctx_.clock.Now() + kWatchEvery;
      break;
    case RolloutAction::kWait:
      WaitTick(action);
      break;
    case RolloutAction::kAnalyse:
      Analyse(action);
      break;
    default:
      break;
  }
  if (m.stage() != 0 && m.StageName() != name && action == RolloutAction::kDeployStage) {
    Emit(Stage::kRollout, "info", name + ": promoted (" + m.note() + ")");
    AuditRollout("promoted", decided_by_, name + ": " + m.note(), stage);
    decided_by_.clear();
  }
  return Status::Ok();
}

// A short sleep between decisions: takes a human's command, watches the canaries' health
// every second, and publishes the live figures.
void Deployer::WaitTick(RolloutAction& action) {
  RolloutMachine& m = *rollout_;
  const bool was_paused = m.state() == RolloutState::kPaused;
  if (cancel_.load()) {
    m.Abort("a cancel");
    action = m.Next();
    return;
  }
  if (TakeCommand(action)) return;
  if (ctx_.clock.Now() >= next_watch_) {
    next_watch_ = ctx_.clock.Now() + kWatchEvery;
    if (Status s = WatchCanaries(); !s.ok()) {
      action = m.OnHealthFailed(s.message());
      return;
    }
  }
  PublishRollout(ToString(m.state()), true);
  ctx_.clock.SleepFor(kTick);
  action = m.OnTick(ctx_.clock.Now());
  if (!was_paused && m.state() == RolloutState::kPaused) Paused();
}

// The canaries' health, once a second. A canary's node that stays unreachable for three
// checks is lost (asking it would wait for the node lease, with the canary still routed).
Status Deployer::WatchCanaries() {
  for (auto& u : units_) {
    if (!ctx_.Reachable(u.node)) {
      if (++u.watch_failures >= 3) return {Code::kUnavailable, "node " + u.node + " lost"};
      continue;
    }
    if (Status s = WatchUnit(u); !s.ok()) return Status(s.code(), Tag(u) + s.message());
  }
  return Status::Ok();
}

void Deployer::Paused() {
  Emit(Stage::kRollout, "info", rollout_->StageName() + ": paused: " + rollout_->note());
  AuditRollout("paused", "", rollout_->StageName() + ": " + rollout_->note(), rollout_->stage());
  PublishRollout("paused", true);
  Notify("paused");
}

void Deployer::Analyse(RolloutAction& action) {
  RolloutMachine& m = *rollout_;
  const std::string name = m.StageName();
  int seconds = WindowSeconds(m.spec().analysis->interval);
  SideStats canary = SideOf(gateway::Target::Combined(CanaryTargets(), seconds));
  SideStats baseline = SideOf(gateway::Target::Combined(previous_->targets, seconds));
  const bool was_paused = m.state() == RolloutState::kPaused;
  action = m.OnAnalysis(ctx_.clock.Now(), canary, baseline);
  const Analysis& a = m.last();
  Emit(Stage::kRollout, "info",
       fmt::format("{}: interval {}: {} — canary {}; baseline {}{}", name, m.interval(),
                   ToString(a.verdict), DescribeSide(canary), DescribeSide(baseline),
                   a.reason.empty() ? "" : " (" + a.reason + ")"));
  if (!was_paused && m.state() == RolloutState::kPaused) Paused();
}

nlohmann::json Deployer::RolloutJson(const std::string& state) const {
  const RolloutMachine& m = *rollout_;
  auto now = ctx_.clock.Now();
  nlohmann::json stages = nlohmann::json::array();
  for (std::size_t i = 0; i < m.stages(); ++i) {
    const auto& spec = m.specs()[i];
    std::string st = i < m.stage()    ? "done"
                     : i == m.stage() ? std::string(ToString(m.state()))
                                      : "pending";
    nlohmann::json j = {{"nodes", spec.nodes}, {"weight", spec.weight}, {"state", st}};
    if (i < stage_nodes_.size()) j["node_names"] = stage_nodes_[i];
    stages.push_back(j);
  }
  const auto& spec = m.spec();
  int seconds = WindowSeconds(spec.analysis ? spec.analysis->interval : milliseconds(10000));
  nlohmann::json j = {
      {"app", app_.name},
      {"deployment_id", d_.id},
      {"release", release_.number},
      {"state", state},
      {"stage", m.stage() + 1},
      {"stages", stages},
      {"weight", m.weight()},
      {"bake_ms", spec.bake.count()},
      {"max_bake_ms", spec.max_bake.count()},
      {"baked_ms", m.baked(now).count()},
      {"interval", m.interval()},
      {"verdict", ToString(m.last().verdict)},
      {"reason", m.last().reason},
      {"failures_in_a_row", m.failures_in_a_row()},
      {"note", m.note()},
      {"error", m.error()},
      {"window_seconds", seconds},
      {"canary", SideJson(SideOf(gateway::Target::Combined(CanaryTargets(), seconds)))},
      {"baseline", SideJson(SideOf(gateway::Target::Combined(previous_->targets, seconds)))}};
  if (m.last().verdict != Verdict::kNone)
    j["last_interval"] = {{"canary", SideJson(m.last().canary)},
                          {"baseline", SideJson(m.last().baseline)}};
  return j;
}

void Deployer::PublishRollout(const std::string& state, bool running) {
  if (!ctx_.rollouts || !rollout_) return;
  ctx_.rollouts->Publish(app_.name, RolloutJson(state), running);
}

// The app's notify: targets (the server's own are added by the notifier). Never blocks: the
// notifier records and queues each delivery.
void Deployer::Notify(const std::string& event) {
  if (!ctx_.notifier || !IsNotifyEvent(event)) return;
  std::vector<NotifyTarget> targets;
  for (const auto& t : manifest_.notify) {
    NotifyTarget n;
    n.kind = t.kind;
    n.url = t.url;
    n.secret = t.secret;
    n.events = t.events;
    targets.push_back(std::move(n));
  }
  Notification n;
  n.event = event;
  n.app = app_.name;
  n.deployment_id = d_.id;
  n.release = release_.number;
  n.commit = d_.commit;
  n.status = ToString(machine_.status());
  n.error = machine_.error().empty() && rollout_ ? rollout_->error() : machine_.error();
  n.stage = ToString(machine_.stage());
  if (rollout_ && rollout_->last().verdict != Verdict::kNone) {
    const Analysis& a = rollout_->last();
    n.analysis = {{"stage", rollout_->stage() + 1},
                  {"stage_name", rollout_->StageName()},
                  {"interval", rollout_->interval()},
                  {"verdict", ToString(a.verdict)},
                  {"reason", a.reason},
                  {"canary", SideJson(a.canary)},
                  {"baseline", SideJson(a.baseline)}};
  }
  n.time_ms = ctx_.clock.WallMillis();
  ctx_.notifier->Send(targets, n);
}

}  // namespace slipway
