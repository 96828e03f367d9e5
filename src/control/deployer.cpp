#include "control/deployer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include "control/deployer_util.h"
#include "control/injection.h"
#include "control/instances.h"
#include "git/git.h"
#include "net/http.h"
#include "obs/metrics.h"

namespace slipway {
using std::chrono::milliseconds;

// A manifest is a page of YAML; anything near this size is a mistake.
constexpr std::size_t kMaxManifestBytes = 256u << 10;

Deployer::Deployer(Context& ctx, Deployment deployment, const std::atomic<bool>& cancel,
                   std::optional<GitCredential> credentials, std::vector<std::string> placement)
    : ctx_(ctx),
      d_(std::move(deployment)),
      cancel_(cancel),
      credentials_(std::move(credentials)),
      placement_(std::move(placement)) {}

// --- units and placement -----------------------------------------------------------------

Status Deployer::ForEachUnit(const UnitFn& fn, bool parallel) {
  auto failed = [this](const Unit& u, const Status& s) {
    bool named = s.message().rfind("node " + u.node + " ", 0) == 0;  // "node n3 lost"
    return units_.size() > 1 && !named ? Status(s.code(), "node " + u.node + ": " + s.message())
                                       : s;
  };
  // A throw fails its unit like any error, so the pipeline cleans up after it (and a unit's
  // thread never ends the process).
  auto guarded = [&fn](Unit& u) -> Status {
    try {
      return fn(u);
    } catch (const std::exception& e) {
      return Status(Code::kInternal, std::string("internal error: ") + e.what());
    } catch (...) {
      return Status(Code::kInternal, "internal error");
    }
  };
  const std::size_t from = std::min(from_, units_.size());
  if (units_.size() - from <= 1 || !parallel) {
    for (std::size_t i = from; i < units_.size(); ++i) {
      if (Status s = guarded(units_[i]); !s.ok()) return failed(units_[i], s);
    }
    return Status::Ok();
  }
  std::vector<Status> results(units_.size());
  std::vector<std::thread> threads;
  threads.reserve(units_.size() - from);
  for (std::size_t i = from; i < units_.size(); ++i)
    threads.emplace_back([&, i] { results[i] = guarded(units_[i]); });
  for (auto& t : threads) t.join();
  for (std::size_t i = from; i < units_.size(); ++i) {
    if (!results[i].ok()) return failed(units_[i], results[i]);
  }
  return Status::Ok();
}

// The nodes for `labels`: none = the local node; otherwise every connected, undrained node
// (by name) that carries them all.
Result<std::vector<std::string>> Deployer::NodesFor(const std::vector<std::string>& labels) const {
  if (labels.empty() || !ctx_.hub) return std::vector<std::string>{kLocalNode};
  std::set<std::string> drained;
  if (auto nodes = ctx_.store.ListNodes(); nodes.ok()) {
    for (const auto& n : *nodes)
      if (n.drained) drained.insert(n.name);
  }
  drained.insert(kLocalNode);  // the server's own node carries no labels
  auto matching = ctx_.hub->Match(labels, drained);
  if (matching.empty()) {
    std::string wanted;
    for (const auto& l : labels) wanted += (wanted.empty() ? "" : ", ") + l;
    return Unavailable("no connected node carries the labels [" + wanted + "]");
  }
  return matching;
}

void Deployer::PlaceOn(const std::vector<std::string>& nodes) {
  units_.clear();
  for (const auto& n : nodes) units_.push_back(Unit{n, "", std::nullopt, nullptr, 0});
}

std::vector<std::string> Deployer::UnitNodes() const {
  std::vector<std::string> out;
  for (const auto& u : units_) out.push_back(u.node);
  return out;
}

std::string Deployer::Tag(const Unit& u) const {
  return units_.size() > 1 ? "[" + u.node + "] " : "";
}

// Every output line the deployment records goes through here (and is redacted here).
os::LineSink Deployer::SinkFor(const Unit& u, const std::string& stage, bool stderr_only) {
  return [this, tag = Tag(u), stage, stderr_only](os::OutputStream s, std::string_view line) {
    ctx_.events.Append(d_.id, stage, "log", Redacted(tag + std::string(line)),
                       stderr_only || s == os::OutputStream::kStderr ? "stderr" : "stdout");
  };
}

// Before the manifest is known: --nodes, else the labels of the release serving now.
Status Deployer::Place() {
  std::vector<std::string> labels = placement_;
  if (labels.empty() && app_.current_release_id) {
    if (auto r = ctx_.store.GetRelease(*app_.current_release_id); r.ok()) {
      // A rollout starts on its first stage: the later stages' nodes see nothing until then.
      if (auto m = Manifest::FromJson(r->manifest_json); m.ok())
        labels = m->rollout.empty() ? m->nodes : m->rollout.front().nodes;
    }
  }
  auto nodes = NodesFor(labels);
  if (!nodes.ok()) return nodes.status();
  PlaceOn(*nodes);
  return Status::Ok();
}

// A rollout needs something serving to compare its canary with (and a runtime whose
// instances the gateway routes to); rollbacks and restarts switch a retained release at once.
bool Deployer::StartsRollout() const {
  return !manifest_.rollout.empty() && placement_.empty() && previous_ &&
         previous_->runtime() != "swarm" && !previous_->targets.empty() && d_.type != "rollback" &&
         d_.type != "restart";
}

Result<std::vector<std::string>> Deployer::ManifestNodes() {
  if (manifest_.rollout.empty()) return NodesFor(manifest_.nodes);
  if (StartsRollout()) {
    rollout_.emplace(manifest_.rollout);
    return NodesFor(manifest_.rollout.front().nodes);
  }
  std::vector<std::string> all;
  for (const auto& stage : manifest_.rollout) {
    auto nodes = NodesFor(stage.nodes);
    if (!nodes.ok()) return nodes.status();
    for (const auto& n : *nodes)
      if (std::find(all.begin(), all.end(), n) == all.end()) all.push_back(n);
  }
  Emit(Stage::kCheckout, "info",
       "nothing serves " + app_.name +
           " yet: no baseline for a canary, so every rollout stage's nodes get this release "
           "at once");
  return all;
}

// The manifest's nodes: decide where the app runs unless --nodes said otherwise. When the
// nodes chosen before the manifest was known differ from the ones it matches, fetch and
// check out again there (once: the new placement follows the manifest).
Status Deployer::FollowManifestPlacement() {
  if (!placement_.empty()) {
    if (!manifest_.rollout.empty())
      Emit(Stage::kCheckout, "info", "--nodes given: rollout.stages are not used");
    return Status::Ok();
  }
  auto nodes = ManifestNodes();
  if (!nodes.ok()) return nodes.status();
  if (*nodes == UnitNodes()) return Status::Ok();
  RemoveBuildDirs();
  Emit(Stage::kCheckout, "info",
       "slipway.yaml places " + app_.name + " on node(s) " + JoinNodes(*nodes));
  PlaceOn(*nodes);
  if (auto s = Fetch(); !s.ok()) return s;
  return Checkout();
}

// --- the run -------------------------------------------------------------------------------

// What is left of deploy.timeout: every stage, build and test steps included, ends by then.
milliseconds Deployer::Remaining() const {
  auto left = std::chrono::duration_cast<milliseconds>(started_ + manifest_.deploy_timeout -
                                                       ctx_.clock.Now());
  return std::max(left, milliseconds(1));
}

// The app's URL, or with the deploying user's git credentials when it carries none.
std::string Deployer::FetchUrl() const {
  git::Remote remote = git::ParseRemote(app_.repo);
  bool http = remote.url.rfind("http://", 0) == 0 || remote.url.rfind("https://", 0) == 0;
  if (!credentials_ || !remote.username.empty() || !http) return app_.repo;
  auto scheme = remote.url.find("://") + 3;
  return remote.url.substr(0, scheme) + net::PercentEncodeComponent(credentials_->username) + ":" +
         net::PercentEncodeComponent(credentials_->password) + "@" + remote.url.substr(scheme);
}

// A build directory that did not become a release (failed, cancelled) is not kept.
void Deployer::RemoveBuildDirs() {
  for (auto& u : units_) {
    if (u.workdir.empty() || !ctx_.Reachable(u.node)) continue;
    if (auto s = agent(u).RemovePath(u.workdir); !s.ok())
      spdlog::warn("deployment {}: cannot remove its build directory on node {}: {}", d_.id, u.node,
                   s.message());
    u.workdir.clear();
  }
}

// Every event text the deployment records goes through here (and is redacted here).
void Deployer::Emit(Stage stage, const std::string& state, const std::string& text) {
  ctx_.events.Append(d_.id, ToString(stage), state, Redacted(text));
}

std::string Deployer::Redacted(std::string text) const {
  return injection_.secrets.empty() ? text : Redact(std::move(text), injection_.secrets);
}

void Deployer::Save() {
  d_.stage = machine_.stage();
  d_.status = machine_.status();
  d_.error = Redacted(machine_.error());
  if (auto s = ctx_.store.UpdateDeployment(d_); !s.ok()) {
    spdlog::error("deployment {}: cannot save: {}", d_.id, s.ToString());
  }
}
Deployment Deployer::Run() {
  auto started = ctx_.clock.Now();
  started_ = started;
  auto app = ctx_.store.GetAppById(d_.app_id);
  if (!app.ok()) {
    d_.status = DeployStatus::kFailed;
    d_.error = app.status().message();
    d_.completed_ms = ctx_.clock.WallMillis();
    (void)ctx_.store.UpdateDeployment(d_);
    return d_;
  }
  app_ = *app;
  previous_ = ctx_.serving.Get(app_.id);
  Action action = machine_.Begin(started);
  Save();
  Emit(Stage::kQueued, "info",
       fmt::format("deployment #{} of {} ({}) started", d_.id, app_.name, d_.ref));
  while (action != Action::kFinish) {
    auto now = ctx_.clock.Now();
    switch (action) {
      case Action::kRunStage: {
        // After the switch the machine answers kRunStage: a cancel no longer applies and
        // the stage runs (going back to the loop would ask again, forever).
        if (cancel_.load()) {
          action = machine_.OnCancel(now);
          if (action != Action::kRunStage) break;
        }
        Stage stage = machine_.stage();
        // Without a rollout its stage is a no-op that says nothing.
        bool quiet = stage == Stage::kRollout && !rollout_;
        if (!quiet) Emit(stage, "started", std::string(ToString(stage)));
        Save();
        Status s = RunStage(stage);
        now = ctx_.clock.Now();
        if (s.ok()) {
          if (!quiet) Emit(stage, "succeeded", std::string(ToString(stage)) + " done");
          action = machine_.OnStageSucceeded(now);
        } else {
          // Redacted before the machine keeps it: the error reaches the record, the
          // notifications and the audit log from there.
          const std::string error = Redacted(s.message());
          Emit(stage, "failed", error);
          action = cancel_.load() ? machine_.OnCancel(now) : Action::kRunStage;
          if (action == Action::kRunStage)  // no cancel, or one that no longer applies
            action = runtime_rolled_back_ ? machine_.OnRuntimeRolledBack(error)
                     : rollout_aborted_   ? machine_.OnRolloutAborted(error)
                                          : machine_.OnStageFailed(error, now);
        }
        if (action == Action::kWatchTick) {
          Emit(Stage::kWatch, "started",
               fmt::format("watching the new instance for {} ms", manifest_.watch_window.count()));
          Save();
        }
        break;
      }
      case Action::kWatchTick: {
        Status s = WatchOnce();
        now = ctx_.clock.Now();
        action = s.ok() ? machine_.OnTick(now)
                        : machine_.OnWatchHealthFailed(Redacted(s.message()), now);
        if (s.ok() && action == Action::kRunStage)
          Emit(Stage::kWatch, "succeeded", "new instance stayed healthy");
        if (!s.ok()) Emit(Stage::kWatch, "failed", s.message());
        if (s.ok() && action == Action::kWatchTick) ctx_.clock.SleepFor(milliseconds(200));
        break;
      }
      case Action::kSwitchBack:
        SwitchBack();
        action = machine_.OnCleanupDone();
        break;
      case Action::kDiscardNew:
        DiscardNew();
        action = machine_.OnCleanupDone();
        break;
      case Action::kFinish:
        break;
    }
  }
  if (runtime_rolled_back_ && !units_.empty() && units_.front().instance) {
    units_.front().instance->state = "stopped";
    (void)ctx_.store.UpdateInstance(*units_.front().instance);
  }
  if (machine_.status() == DeployStatus::kSucceeded) PruneReleases();
  RemoveBuildDirs();
  if (rollout_) PublishRollout(ToString(machine_.status()), false);
  double seconds = std::chrono::duration<double>(ctx_.clock.Now() - started).count();
  // The last event goes first, the terminal status after it: a reader that sees the status
  // terminal and then reads the events is sure to get every event.
  Emit(machine_.stage(), ToString(machine_.status()),
       machine_.status() == DeployStatus::kSucceeded
           ? fmt::format("deployment #{} succeeded in {:.2f}s: release {} ({}) is serving", d_.id,
                         seconds, release_.number, Short(d_.commit))
           : fmt::format("deployment #{} {}: {}", d_.id, ToString(machine_.status()),
                         machine_.error()));
  d_.completed_ms = ctx_.clock.WallMillis();
  Save();
  auto& metrics = obs::Metrics::Global();
  metrics.Inc("slipway_deployments_total",
              {{"runtime", manifest_.runtime}, {"status", ToString(d_.status)}});
  metrics.Observe("slipway_deployment_duration_seconds", {{"status", ToString(d_.status)}},
                  seconds);
  AuditEvent audit;
  audit.actor = "system";
  audit.action = "deployment." + std::string(ToString(d_.status));
  audit.target = "deployment/" + std::to_string(d_.id);
  audit.detail_json = nlohmann::json{{"commit", d_.commit}, {"error", d_.error}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);  // output may not be UTF-8
  audit.outcome = d_.status == DeployStatus::kSucceeded ? "ok" : ToString(d_.status);
  audit.app = app_.name;
  (void)ctx_.store.AppendAudit(audit);
  Notify(ToString(d_.status));
  return d_;
}

Status Deployer::RunStage(Stage stage) {
  // Rollbacks and restarts start a retained release: nothing to fetch or build.
  bool rollback = d_.type == "rollback" || d_.type == "restart";
  switch (stage) {
    case Stage::kFetch:
      return rollback ? Status::Ok() : Fetch();
    case Stage::kCheckout: {
      Status s = rollback ? Status::Ok() : Checkout();
      // Once the manifest is read and the nodes are final (Checkout may run twice).
      if (s.ok() && !rollback) s = LoadInjection(Stage::kCheckout);
      if (s.ok() && !rollback) Notify("started");
      return s;
    }
    case Stage::kBuild:
      return rollback ? Status::Ok() : ForEachUnit([this](Unit& u) {
        return Steps(u, Stage::kBuild, manifest_.build);
      });
    case Stage::kTest:
      return rollback
                 ? Status::Ok()
                 : ForEachUnit([this](Unit& u) { return Steps(u, Stage::kTest, manifest_.test); });
    case Stage::kRelease: {
      Status s = MakeRelease();
      if (s.ok() && rollback) Notify("started");
      return s;
    }
    case Stage::kStart:
      return swarm() ? StartService() : ForEachUnit([this](Unit& u) { return StartInstance(u); });
    case Stage::kVerify:
      return swarm() ? VerifyService() : ForEachUnit([this](Unit& u) { return Verify(u); });
    case Stage::kRollout:
      return rollout_ ? RunRollout() : Status::Ok();
    case Stage::kSwitch:
      return Switch();
    case Stage::kDrain:
      return Drain();
    default:
      return Status::Ok();
  }
}

Status Deployer::Fetch() {
  if (units_.empty()) {
    if (auto s = Place(); !s.ok()) return s;
  }
  Emit(Stage::kFetch, "info",
       "fetching " + git::RedactUrl(app_.repo) + " on node(s) " + JoinNodes(UnitNodes()));
  return ForEachUnit(
      [this](Unit& u) {
        return agent(u).Fetch(FetchUrl(), ctx_.paths.cache(app_.name), &cancel_,
                              SinkFor(u, "fetch"));
      },
      true);
}

// A push deploys its commit only while that commit is the branch's tip: a late or replayed
// delivery (the delivery id is not signed) must not roll production back to an old commit.
Status Deployer::CheckPushIsTip(const std::string& sha) {
  if (d_.type != "push" || d_.commit.empty()) return Status::Ok();
  auto tip = agent(units_.front()).Resolve(ctx_.paths.cache(app_.name), "refs/heads/" + d_.ref);
  if (!tip.ok()) return tip.status();
  if (*tip == sha) return Status::Ok();
  return Conflict(fmt::format("stale push: {} is no longer the tip of {} (now {}); not deployed",
                              Short(sha), d_.ref, Short(*tip)));
}

// The commit is resolved on the first node and exported on each; the manifest is read from
// the first node's copy (every node has the same commit).
Status Deployer::Checkout() {
  auto sha = agent(units_.front())
                 .Resolve(ctx_.paths.cache(app_.name), d_.commit.empty() ? d_.ref : d_.commit);
  if (!sha.ok()) return sha.status();
  if (auto s = CheckPushIsTip(*sha); !s.ok()) return s;
  d_.commit = *sha;
  Save();
  if (auto s = ForEachUnit([this](Unit& u) { return ExportOn(u); }, true); !s.ok()) return s;
  Emit(Stage::kCheckout, "info", "checked out " + d_.commit);
  if (auto s = ReadManifest(units_.front()); !s.ok()) return s;
  if (auto s = FollowManifestPlacement(); !s.ok()) return s;
  if (swarm() && units_.size() > 1) {  // one swarm, managed from one node's Docker
    Emit(Stage::kCheckout, "info",
         "runtime swarm: the service is managed from node " + units_.front().node + " only");
    std::vector<Unit> rest(units_.begin() + 1, units_.end());
    units_.resize(1);
    for (auto& u : rest) {
      if (ctx_.Reachable(u.node)) (void)agent(u).RemovePath(u.workdir);
    }
  }
  return Status::Ok();
}

Status Deployer::ExportOn(Unit& u) {
  u.workdir = fmt::format("{}/{}-{}", ctx_.paths.builds(app_.name), d_.id, Short(d_.commit));
  return agent(u).Export(ctx_.paths.cache(app_.name), d_.commit, u.workdir,
                         SinkFor(u, "checkout", true));
}

// A sandbox's copy `sandbox-<sandbox>-<service>` deploys a branch of the shared app's
// repository, whose manifest names the shared app `<service>`.
bool Deployer::IsSharedAppOf(const std::string& name) const {
  return !app_.sandbox.empty() && app_.name == "sandbox-" + app_.sandbox + "-" + name;
}

Status Deployer::ReadManifest(Unit& u) {
  auto text = agent(u).ReadFile(u.workdir + "/slipway.yaml", kMaxManifestBytes);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound)
      return Invalid("slipway.yaml: not found at the repository root");
    if (text.status().code() == Code::kTooLarge)
      return Invalid(fmt::format("slipway.yaml: larger than {} bytes", kMaxManifestBytes));
    return text.status();
  }
  auto manifest = ParseManifest(*text, "slipway.yaml");
  if (!manifest.ok()) return manifest.status();
  if (!manifest->app.empty() && manifest->app != app_.name && !IsSharedAppOf(manifest->app)) {
    return Invalid(
        fmt::format("slipway.yaml: manifest is for app '{}', not '{}'", manifest->app, app_.name));
  }
  manifest_ = *manifest;
  machine_.SetOptions({manifest_.deploy_timeout, manifest_.watch_window});
  d_.config_json = manifest_.SummaryJson();  // the record keeps a summary, not the steps
  Save();
  return Status::Ok();
}

// Counts and names only: values and contents never reach an event.
Status Deployer::LoadInjection(Stage stage) {
  auto injection = InjectionFor(ctx_, app_);
  if (!injection.ok()) return injection.status();
  injection_ = std::move(*injection);
  if (injection_.env.empty() && injection_.files.empty() && injection_.network.empty()) {
    return Status::Ok();
  }
  Emit(stage, "info",
       fmt::format("injecting {} variable(s) and {} file(s){}", injection_.env.size(),
                   injection_.files.size(),
                   injection_.network.empty() ? "" : "; network " + injection_.network));
  return Status::Ok();
}

std::map<std::string, std::string> Deployer::StepEnv() const {
  auto env = manifest_.env;
  InjectEnv(injection_, env);
  env["SLIPWAY_APP"] = app_.name;
  env["SLIPWAY_COMMIT"] = d_.commit;
  env["SLIPWAY_DEPLOYMENT_ID"] = std::to_string(d_.id);
  return env;
}

Status Deployer::Steps(Unit& u, Stage stage, const std::vector<std::string>& steps) {
  if (steps.empty()) {
    Emit(stage, "info", Tag(u) + "no steps");
    return Status::Ok();
  }
  const std::string stage_name = ToString(stage);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    Emit(stage, "info", Tag(u) + "$ " + steps[i]);
    StepRequest req;
    req.command = steps[i];
    req.cwd = u.workdir;
    req.env = StepEnv();
    req.cancel = &cancel_;
    req.timeout = Remaining();
    auto result = agent(u).RunStep(req, SinkFor(u, stage_name));
    if (!result.ok()) return result.status();
    if (result->cancelled) return {Code::kCancelled, "cancelled"};
    if (result->timed_out) {
      return {Code::kTimeout,
              fmt::format("timed out: deploy.timeout ({} ms) passed during {} step {}: {}",
                          manifest_.deploy_timeout.count(), stage_name, i + 1, steps[i])};
    }
    if (result->exit_code != 0) {
      return Invalid(
          result->signal
              ? fmt::format("step {} killed by signal {}: {}", i + 1, result->signal, steps[i])
              : fmt::format("step {} exited with {}: {}", i + 1, result->exit_code, steps[i]));
    }
  }
  return Status::Ok();
}

// Rollbacks and restarts start a retained release on the nodes that keep it.
Status Deployer::RetainedRelease() {
  if (!d_.release_id) return Invalid(d_.type + " without a release");
  auto r = ctx_.store.GetRelease(*d_.release_id);
  if (!r.ok()) return r.status();
  if (r->pruned) return NotFound(fmt::format("release {} is no longer on disk", r->number));
  std::vector<std::string> nodes;
  for (const auto& n : r->nodes) {
    if (ctx_.Reachable(n))
      nodes.push_back(n);
    else
      Emit(Stage::kRelease, "info", "node " + n + " is not connected: release skipped there");
  }
  if (nodes.empty())
    return Unavailable(fmt::format("no node that keeps release {} is connected", r->number));
  PlaceOn(nodes);
  auto m = Manifest::FromJson(r->manifest_json);
  if (!m.ok()) return m.status();
  release_ = *r;
  manifest_ = *m;
  machine_.SetOptions({manifest_.deploy_timeout, manifest_.watch_window});
  auto on_disk = ForEachUnit([&](Unit& u) -> Status {
    auto exists = agent(u).PathExists(r->path);
    if (!exists.ok()) return exists.status();
    return *exists ? Status::Ok()
                   : NotFound(fmt::format("release {} is no longer on disk", r->number));
  });
  if (!on_disk.ok()) return on_disk;
  // The app's injection as it is now: a rollback or restart gets today's secrets and files.
  if (auto s = LoadInjection(Stage::kRelease); !s.ok()) return s;
  auto files =
      ForEachUnit([&](Unit& u) { return WriteInjectedFiles(agent(u), r->path, injection_); });
  if (!files.ok()) return files;
  d_.commit = r->commit;
  Emit(Stage::kRelease, "info",
       fmt::format("{} release {} ({}) without a rebuild",
                   d_.type == "restart" ? "restarting" : "rolling back to", r->number,
                   Short(r->commit)));
  return Status::Ok();
}

// One release record for all nodes; each node moves its build directory to the same path.
Status Deployer::MakeRelease() {
  if (d_.type == "rollback" || d_.type == "restart") return RetainedRelease();
  Release r;
  r.app_id = app_.id;
  r.commit = d_.commit;
  r.manifest_json = manifest_.ToJson();
  r.deployment_id = d_.id;
  r.nodes = UnitNodes();
  r.path = "";  // set once the number is known
  auto created = ctx_.store.CreateRelease(r);
  if (!created.ok()) return created.status();
  release_ = *created;
  release_.path =
      fmt::format("{}/{}-{}", ctx_.paths.releases(app_.name), release_.number, Short(d_.commit));
  if (auto s = ctx_.store.SetReleasePath(release_.id, release_.path); !s.ok()) return s;
  if (auto s = ForEachUnit([this](Unit& u) { return ReleaseOn(u); }); !s.ok()) {
    (void)ctx_.store.MarkReleasePruned(release_.id);
    for (auto& u : units_) {
      if (u.workdir.empty() && ctx_.Reachable(u.node)) (void)agent(u).RemovePath(release_.path);
    }
    return s;
  }
  d_.release_id = release_.id;
  Save();
  Emit(Stage::kRelease, "info",
       fmt::format("release {} at {} on node(s) {}", release_.number,
                   release_.path.substr(ctx_.paths.data.size() + 1), JoinNodes(UnitNodes())));
  return Status::Ok();
}

// The injected files are written after the image is built: they are not part of the build
// context, so no secret file is baked into an image.
Status Deployer::ReleaseOn(Unit& u) {
  if (auto s = agent(u).MovePath(u.workdir, release_.path); !s.ok()) return s;  // atomic
  u.workdir.clear();
  if (manifest_.is_image_runtime()) {
    if (auto s = PrepareImage(u); !s.ok()) return s;
  }
  if (injection_.files.empty()) return Status::Ok();
  if (auto s = WriteInjectedFiles(agent(u), release_.path, injection_); !s.ok()) return s;
  Emit(
      Stage::kRelease, "info",
      fmt::format("{}wrote {} injected file(s) into the release", Tag(u), injection_.files.size()));
  return Status::Ok();
}

Status Deployer::PrepareImage(Unit& u) {
  ImageRequest req{release_.path, manifest_.dockerfile, manifest_.image_tar, manifest_.image,
                   ImageTag(app_.name, release_)};
  Emit(Stage::kRelease, "info",
       Tag(u) + (!req.dockerfile.empty() ? "building image " + req.tag + " from " + req.dockerfile
                 : !req.image_tar.empty()
                     ? "loading image tarball " + req.image_tar + " as " + req.tag
                     : "tagging image " + req.image + " as " + req.tag));
  return agent(u).PrepareImage(req, SinkFor(u, "release", false));
}

}  // namespace slipway
