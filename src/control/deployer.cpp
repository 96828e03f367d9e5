#include "control/deployer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>
#include "control/instances.h"
#include "git/git.h"
#include "net/http.h"
#include "obs/metrics.h"

namespace slipway {
using std::chrono::milliseconds;

namespace {
std::string Short(const std::string& sha) {
  return sha.substr(0, 7);
}

std::string Mib(long long bytes) {
  return fmt::format("{:.1f} MiB", bytes / 1048576.0);
}
}  // namespace

// A manifest is a page of YAML; anything near this size is a mistake.
constexpr std::size_t kMaxManifestBytes = 256u << 10;

Deployer::Deployer(Context& ctx, Deployment deployment, const std::atomic<bool>& cancel,
                   std::optional<GitCredential> credentials, std::vector<std::string> placement)
    : ctx_(ctx),
      d_(std::move(deployment)),
      cancel_(cancel),
      credentials_(std::move(credentials)),
      placement_(std::move(placement)) {}

// Chooses the node for `labels`: none = the local node; otherwise the first connected,
// undrained node (by name) that carries them all.
Result<std::string> Deployer::NodeFor(const std::vector<std::string>& labels) const {
  if (labels.empty() || !ctx_.hub) return std::string(kLocalNode);
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
  return matching.front();
}

// Before the manifest is known: --nodes, else the labels of the release serving now.
Status Deployer::Place() {
  std::vector<std::string> labels = placement_;
  if (labels.empty() && app_.current_release_id) {
    if (auto r = ctx_.store.GetRelease(*app_.current_release_id); r.ok()) {
      if (auto m = Manifest::FromJson(r->manifest_json); m.ok()) labels = m->nodes;
    }
  }
  auto node = NodeFor(labels);
  if (!node.ok()) return node.status();
  node_ = *node;
  placed_by_ = labels;
  return Status::Ok();
}

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
void Deployer::RemoveBuildDir() {
  if (workdir_.empty()) return;
  if (auto s = agent().RemovePath(workdir_); !s.ok())
    spdlog::warn("deployment {}: cannot remove its build directory: {}", d_.id, s.message());
}

void Deployer::Emit(Stage stage, const std::string& state, const std::string& text) {
  ctx_.events.Append(d_.id, ToString(stage), state, text);
}

void Deployer::Save() {
  d_.stage = machine_.stage();
  d_.status = machine_.status();
  d_.error = machine_.error();
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
        if (cancel_.load()) {
          action = machine_.OnCancel(now);
          break;
        }
        Stage stage = machine_.stage();
        Emit(stage, "started", std::string(ToString(stage)));
        Save();
        Status s = RunStage(stage);
        now = ctx_.clock.Now();
        if (s.ok()) {
          Emit(stage, "succeeded", std::string(ToString(stage)) + " done");
          action = machine_.OnStageSucceeded(now);
        } else {
          Emit(stage, "failed", s.message());
          action = cancel_.load()         ? machine_.OnCancel(now)
                   : runtime_rolled_back_ ? machine_.OnRuntimeRolledBack(s.message())
                                          : machine_.OnStageFailed(s.message(), now);
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
        action = s.ok() ? machine_.OnTick(now) : machine_.OnWatchHealthFailed(s.message(), now);
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
  if (runtime_rolled_back_ && new_instance_) {
    new_instance_->state = "stopped";
    (void)ctx_.store.UpdateInstance(*new_instance_);
  }
  if (machine_.status() == DeployStatus::kSucceeded) PruneReleases();
  RemoveBuildDir();
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
  return d_;
}

Status Deployer::RunStage(Stage stage) {
  // Rollbacks and restarts start a retained release: nothing to fetch or build.
  bool rollback = d_.type == "rollback" || d_.type == "restart";
  switch (stage) {
    case Stage::kFetch:
      return rollback ? Status::Ok() : Fetch();
    case Stage::kCheckout:
      return rollback ? Status::Ok() : Checkout();
    case Stage::kBuild:
      return rollback ? Status::Ok() : Steps(stage, manifest_.build);
    case Stage::kTest:
      return rollback ? Status::Ok() : Steps(stage, manifest_.test);
    case Stage::kRelease:
      return MakeRelease();
    case Stage::kStart:
      return StartInstance();
    case Stage::kVerify:
      return Verify();
    case Stage::kSwitch:
      return Switch();
    case Stage::kDrain:
      return Drain();
    default:
      return Status::Ok();
  }
}

Status Deployer::Fetch() {
  if (node_.empty()) {
    if (auto s = Place(); !s.ok()) return s;
  }
  Emit(Stage::kFetch, "info", "fetching " + git::RedactUrl(app_.repo) + " on node " + node_);
  auto sink = [this](os::OutputStream s, std::string_view line) {
    ctx_.events.Append(d_.id, "fetch", "log", std::string(line),
                       s == os::OutputStream::kStderr ? "stderr" : "stdout");
  };
  return agent().Fetch(FetchUrl(), ctx_.paths.cache(app_.name), &cancel_, sink);
}

// A push deploys its commit only while that commit is the branch's tip: a late or replayed
// delivery (the delivery id is not signed) must not roll production back to an old commit.
Status Deployer::CheckPushIsTip(const std::string& sha) {
  if (d_.type != "push" || d_.commit.empty()) return Status::Ok();
  auto tip = agent().Resolve(ctx_.paths.cache(app_.name), "refs/heads/" + d_.ref);
  if (!tip.ok()) return tip.status();
  if (*tip == sha) return Status::Ok();
  return Conflict(fmt::format("stale push: {} is no longer the tip of {} (now {}); not deployed",
                              Short(sha), d_.ref, Short(*tip)));
}

Status Deployer::Checkout() {
  auto sha = agent().Resolve(ctx_.paths.cache(app_.name), d_.commit.empty() ? d_.ref : d_.commit);
  if (!sha.ok()) return sha.status();
  if (auto s = CheckPushIsTip(*sha); !s.ok()) return s;
  d_.commit = *sha;
  Save();
  workdir_ = fmt::format("{}/{}-{}", ctx_.paths.builds(app_.name), d_.id, Short(d_.commit));
  auto sink = [this](os::OutputStream, std::string_view line) {
    ctx_.events.Append(d_.id, "checkout", "log", std::string(line), "stderr");
  };
  if (auto s = agent().Export(ctx_.paths.cache(app_.name), d_.commit, workdir_, sink); !s.ok())
    return s;
  Emit(Stage::kCheckout, "info", "checked out " + d_.commit);
  auto text = agent().ReadFile(workdir_ + "/slipway.yaml", kMaxManifestBytes);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound)
      return Invalid("slipway.yaml: not found at the repository root");
    if (text.status().code() == Code::kTooLarge)
      return Invalid(fmt::format("slipway.yaml: larger than {} bytes", kMaxManifestBytes));
    return text.status();
  }
  auto manifest = ParseManifest(*text, "slipway.yaml");
  if (!manifest.ok()) return manifest.status();
  if (!manifest->app.empty() && manifest->app != app_.name) {
    return Invalid(
        fmt::format("slipway.yaml: manifest is for app '{}', not '{}'", manifest->app, app_.name));
  }
  manifest_ = *manifest;
  machine_.SetOptions({manifest_.deploy_timeout, manifest_.watch_window});
  d_.config_json = manifest_.SummaryJson();  // the record keeps a summary, not the steps
  Save();
  return FollowManifestPlacement();
}

// The manifest's nodes: decide where the app runs unless --nodes said otherwise. When the
// node chosen before the manifest was known does not fit, fetch and check out again on one
// that does (once: the new placement follows the manifest).
Status Deployer::FollowManifestPlacement() {
  if (!placement_.empty() || manifest_.nodes == placed_by_) return Status::Ok();
  placed_by_ = manifest_.nodes;
  bool fits = manifest_.nodes.empty() ? node_ == kLocalNode : node_ != kLocalNode;
  if (fits && node_ != kLocalNode) {
    auto view = ctx_.hub ? ctx_.hub->Get(node_) : std::nullopt;
    fits = view && HasLabels(view->labels, manifest_.nodes);
  }
  if (fits) return Status::Ok();
  auto node = NodeFor(manifest_.nodes);
  if (!node.ok()) return node.status();
  RemoveBuildDir();
  Emit(Stage::kCheckout, "info", "slipway.yaml places " + app_.name + " on node " + *node);
  node_ = *node;
  if (auto s = Fetch(); !s.ok()) return s;
  return Checkout();
}

std::map<std::string, std::string> Deployer::StepEnv() const {
  auto env = manifest_.env;
  env["SLIPWAY_APP"] = app_.name;
  env["SLIPWAY_COMMIT"] = d_.commit;
  env["SLIPWAY_DEPLOYMENT_ID"] = std::to_string(d_.id);
  return env;
}

Status Deployer::Steps(Stage stage, const std::vector<std::string>& steps) {
  if (steps.empty()) {
    Emit(stage, "info", "no steps");
    return Status::Ok();
  }
  const std::string stage_name = ToString(stage);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    Emit(stage, "info", "$ " + steps[i]);
    StepRequest req;
    req.command = steps[i];
    req.cwd = workdir_;
    req.env = StepEnv();
    req.cancel = &cancel_;
    req.timeout = Remaining();
    auto sink = [this, &stage_name](os::OutputStream s, std::string_view line) {
      ctx_.events.Append(d_.id, stage_name, "log", std::string(line),
                         s == os::OutputStream::kStderr ? "stderr" : "stdout");
    };
    auto result = agent().RunStep(req, sink);
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

Status Deployer::MakeRelease() {
  if (d_.type == "rollback" || d_.type == "restart") {
    if (!d_.release_id) return Invalid(d_.type + " without a release");
    auto r = ctx_.store.GetRelease(*d_.release_id);
    if (!r.ok()) return r.status();
    node_ = r->node;
    auto exists = agent().PathExists(r->path);
    if (!exists.ok()) return exists.status();
    if (r->pruned || !*exists)
      return NotFound(fmt::format("release {} is no longer on disk", r->number));
    auto m = Manifest::FromJson(r->manifest_json);
    if (!m.ok()) return m.status();
    release_ = *r;
    manifest_ = *m;
    machine_.SetOptions({manifest_.deploy_timeout, manifest_.watch_window});
    d_.commit = r->commit;
    Emit(Stage::kRelease, "info",
         fmt::format("{} release {} ({}) without a rebuild",
                     d_.type == "restart" ? "restarting" : "rolling back to", r->number,
                     Short(r->commit)));
    return Status::Ok();
  }
  Release r;
  r.app_id = app_.id;
  r.commit = d_.commit;
  r.manifest_json = manifest_.ToJson();
  r.deployment_id = d_.id;
  r.node = node_;
  r.path = "";  // set once the number is known
  auto created = ctx_.store.CreateRelease(r);
  if (!created.ok()) return created.status();
  release_ = *created;
  std::string dest =
      fmt::format("{}/{}-{}", ctx_.paths.releases(app_.name), release_.number, Short(d_.commit));
  if (auto s = agent().MovePath(workdir_, dest); !s.ok()) {  // atomic, no copy
    (void)ctx_.store.MarkReleasePruned(release_.id);
    return s;
  }
  release_.path = dest;
  if (auto s = ctx_.store.SetReleasePath(release_.id, dest); !s.ok()) return s;
  if (manifest_.is_image_runtime()) {
    if (auto s = PrepareImage(); !s.ok()) {
      (void)ctx_.store.MarkReleasePruned(release_.id);
      return s;
    }
  }
  d_.release_id = release_.id;
  Save();
  Emit(Stage::kRelease, "info", fmt::format("release {} at {}", release_.number, dest));
  return Status::Ok();
}

Status Deployer::PrepareImage() {
  ImageRequest req{release_.path, manifest_.dockerfile, manifest_.image_tar, manifest_.image,
                   ImageTag(app_.name, release_)};
  Emit(Stage::kRelease, "info",
       !req.dockerfile.empty()  ? "building image " + req.tag + " from " + req.dockerfile
       : !req.image_tar.empty() ? "loading image tarball " + req.image_tar + " as " + req.tag
                                : "tagging image " + req.image + " as " + req.tag);
  auto sink = [this](os::OutputStream, std::string_view line) {
    ctx_.events.Append(d_.id, "release", "log", std::string(line), "stdout");
  };
  return agent().PrepareImage(req, sink);
}

Status Deployer::StartInstance() {
  if (swarm()) return StartService();
  auto instance = LaunchInstance(ctx_, app_, release_, manifest_, "starting");
  if (!instance.ok()) return instance.status();
  new_instance_ = *instance;
  Emit(Stage::kStart, "info",
       new_instance_->container_id.empty()
           ? fmt::format("started release {} as pid {} on port {} (node {})", release_.number,
                         new_instance_->pid, new_instance_->port, node_)
           : fmt::format("started container slipway-{}-{} ({}) on {}:{} (node {})", app_.name,
                         release_.number, new_instance_->container_id.substr(0, 12),
                         ctx_.AddressOf(node_), new_instance_->port, node_));
  return Status::Ok();
}

Status Deployer::StartService() {
  ServiceSpec spec = MakeServiceSpec(app_, release_, manifest_);
  Instance rec;
  rec.app_id = app_.id;
  rec.release_id = release_.id;
  rec.runtime = "swarm";
  rec.state = "starting";
  auto created = ctx_.store.CreateInstance(rec);
  if (!created.ok()) return created.status();
  new_instance_ = *created;
  auto id = agent().DeployService(spec);
  if (!id.ok()) {
    new_instance_->state = "stopped";
    (void)ctx_.store.UpdateInstance(*new_instance_);
    return id.status();
  }
  new_instance_->container_id = *id;
  (void)ctx_.store.UpdateInstance(*new_instance_);
  Emit(Stage::kStart, "info",
       fmt::format("service {} → {} ({} replicas, {}, rollback on failure)", spec.name, spec.image,
                   spec.replicas, spec.order));
  return Status::Ok();
}

Status Deployer::ProbeAll(const std::vector<TaskView>& tasks) {
  int probed = 0;
  for (const auto& t : tasks) {
    // The same set the gateway routes to: a task still starting (or already being replaced)
    // is Swarm's business, not a verify failure.
    if (t.desired != "running" || t.state != "running" || t.port == 0 ||
        !agent().TaskHealthy(t.container_id)) {
      continue;
    }
    auto p = agent().Probe(t.port, manifest_.health_path, milliseconds(1000));
    if (!p.healthy()) {
      return {Code::kUnhealthy,
              fmt::format("task {} on port {}: {}", t.id.substr(0, 12), t.port,
                          p.status ? "HTTP " + std::to_string(p.status) : p.error)};
    }
    ++probed;
  }
  if (probed == 0) return {Code::kUnhealthy, "no task is running"};
  return Status::Ok();
}

// Follows Swarm's rolling update until it converges on the new image, reporting every task
// state change and keeping the gateway pool on the healthy tasks all along.
Status Deployer::VerifyService() {
  const std::string service = ServiceName(app_.name);
  const std::string image = ImageTag(app_.name, release_);
  auto per_task = manifest_.update_monitor + manifest_.health_timeout;
  auto deadline = ctx_.clock.Now() + manifest_.health_timeout + per_task * manifest_.replicas;
  std::map<std::string, std::string> seen;
  for (;;) {
    auto tasks = SyncServicePool(ctx_, app_.name, service);
    if (!tasks.ok()) return tasks.status();
    int ready = 0, stale = 0;
    for (const auto& t : *tasks) {
      std::string key = t.state + "/" + t.desired;
      if (seen[t.id] != key) {
        seen[t.id] = key;
        Emit(Stage::kVerify, "info",
             fmt::format("task {}.{} {} {} (desired {}){}", t.slot, t.id.substr(0, 12),
                         t.image.substr(t.image.rfind(':') + 1), t.state, t.desired,
                         t.message.empty() ? "" : ": " + t.message));
      }
      if (t.desired != "running") continue;
      if (t.image != image)
        ++stale;
      else if (t.state == "running" && agent().TaskHealthy(t.container_id))
        ++ready;
    }
    auto svc = agent().InspectService(service);
    if (!svc.ok()) return svc.status();
    if (svc->update_state == "rollback_completed" || svc->update_state == "rollback_started") {
      if (svc->update_state == "rollback_completed") {
        runtime_rolled_back_ = true;
        (void)SyncServicePool(ctx_, app_.name, service);
        return {Code::kUnhealthy, "Swarm rolled the update back: " + svc->update_message};
      }
    } else if (svc->update_state == "paused" || svc->update_state == "rollback_paused") {
      return {Code::kUnhealthy, "Swarm paused the update: " + svc->update_message};
    } else if (ready >= manifest_.replicas && stale == 0 &&
               (svc->update_state.empty() || svc->update_state == "completed")) {
      Emit(Stage::kVerify, "info",
           fmt::format("{} converged: {} of {} tasks on {} healthy", service, ready,
                       manifest_.replicas, image));
      return ProbeAll(*tasks);
    }
    if (ctx_.clock.Now() >= deadline || cancel_.load()) {
      return {Code::kUnhealthy,
              fmt::format("{} did not converge in time ({} of {} tasks healthy, update {})",
                          service, ready, manifest_.replicas,
                          svc->update_state.empty() ? "-" : svc->update_state)};
    }
    ctx_.clock.SleepFor(milliseconds(200));
  }
}

void Deployer::EmitLogTail(Stage stage) {
  auto lines = agent().RecentOutput(HandleOf(*new_instance_),
                                    InstanceLogPath(ctx_.paths, app_.name, new_instance_->id), 20);
  for (const auto& l : lines) ctx_.events.Append(d_.id, ToString(stage), "log", l, "stderr");
}

Status Deployer::Verify() {
  if (swarm()) return VerifyService();
  auto handle = HandleOf(*new_instance_);
  auto deadline = ctx_.clock.Now() + manifest_.health_timeout;
  ProbeResult last;
  // Poll fast at first (most apps listen within milliseconds), backing off to 20 ms: a
  // local probe is cheap, and a coarser step would add its own delay to every deploy.
  milliseconds pause(2);
  for (;;) {
    if (!agent().IsRunning(handle)) {
      EmitLogTail(Stage::kVerify);
      return {Code::kUnhealthy, "the instance exited before it became healthy"};
    }
    last = agent().Probe(handle.port, manifest_.health_path, milliseconds(1000));
    if (last.healthy()) break;
    if (ctx_.clock.Now() >= deadline || cancel_.load()) {
      EmitLogTail(Stage::kVerify);
      return {Code::kUnhealthy,
              fmt::format("{} did not answer 2xx within {} ms (last: {})", manifest_.health_path,
                          manifest_.health_timeout.count(),
                          last.status ? "HTTP " + std::to_string(last.status) : last.error)};
    }
    ctx_.clock.SleepFor(pause);
    pause = std::min(pause * 2, milliseconds(20));
  }
  Emit(Stage::kVerify, "info", fmt::format("{} answered {}", manifest_.health_path, last.status));
  std::vector<long long> latencies;
  for (int i = 0; i < manifest_.probes; ++i) {
    auto p = agent().Probe(handle.port, manifest_.health_path,
                           std::max(manifest_.max_latency * 10, milliseconds(1000)));
    if (!p.healthy()) {
      return {Code::kUnhealthy,
              fmt::format("health probe {} failed: {}", i + 1,
                          p.status ? "HTTP " + std::to_string(p.status) : p.error)};
    }
    latencies.push_back(p.latency.count());
  }
  std::sort(latencies.begin(), latencies.end());
  long long median = latencies[latencies.size() / 2];
  Emit(Stage::kVerify, "info",
       fmt::format("{} probes healthy, median latency {:.2f} ms (limit {} ms)", manifest_.probes,
                   median / 1000.0, manifest_.max_latency.count()));
  if (median > manifest_.max_latency.count() * 1000) {
    return {Code::kUnhealthy, fmt::format("health latency {:.1f} ms is over max_latency {} ms",
                                          median / 1000.0, manifest_.max_latency.count())};
  }
  if (manifest_.max_memory_bytes > 0) {
    long long rss = agent().MemoryBytes(handle);
    Emit(Stage::kVerify, "info", "resident memory " + Mib(rss));
    if (rss > manifest_.max_memory_bytes) {
      return {Code::kUnhealthy, fmt::format("memory {} is over max_memory {}", Mib(rss),
                                            Mib(manifest_.max_memory_bytes))};
    }
  }
  return Status::Ok();
}

Status Deployer::Switch() {
  if (swarm()) {
    // Swarm replaced the tasks itself and the gateway pool followed them during verify.
    if (auto s = ctx_.store.SetCurrentRelease(app_.id, release_.id); !s.ok()) return s;
    new_instance_->state = "serving";
    (void)ctx_.store.UpdateInstance(*new_instance_);
    if (previous_ && previous_->instance.runtime != "swarm") {
      Instance old = previous_->instance;
      old.state = "standby";
      (void)ctx_.store.UpdateInstance(old);
    }
    ctx_.serving.Set(app_.id, Serving{*new_instance_, nullptr});
    Emit(Stage::kSwitch, "info",
         fmt::format("gateway follows the tasks of {} (release {})", ServiceName(app_.name),
                     release_.number));
    return Status::Ok();
  }
  auto target =
      TargetOf(ctx_, fmt::format("{}-r{}-i{}", app_.name, release_.number, new_instance_->id),
               *new_instance_);
  if (!target.ok()) return target.status();
  new_target_ = *target;
  if (auto s = ctx_.store.SetCurrentRelease(app_.id, release_.id); !s.ok()) return s;
  new_instance_->state = "serving";
  (void)ctx_.store.UpdateInstance(*new_instance_);
  if (previous_) {
    Instance old = previous_->instance;
    old.state = "standby";
    (void)ctx_.store.UpdateInstance(old);
  }
  ctx_.router.Switch(app_.name, new_target_);
  ctx_.serving.Set(app_.id, Serving{*new_instance_, new_target_});
  Emit(Stage::kSwitch, "info",
       fmt::format("gateway now sends {} to release {} (port {})", app_.name, release_.number,
                   new_instance_->port));
  return Status::Ok();
}

Status Deployer::WatchOnce() {
  if (swarm()) {
    auto tasks = SyncServicePool(ctx_, app_.name, ServiceName(app_.name));
    Status s = tasks.ok() ? ProbeAll(*tasks) : tasks.status();
    if (s.ok()) {
      watch_failures_ = 0;
      return s;
    }
    return ++watch_failures_ < 2 ? Status::Ok()
                                 : Status(Code::kUnhealthy, "after the update: " + s.message());
  }
  auto handle = HandleOf(*new_instance_);
  if (!agent().IsRunning(handle)) return {Code::kUnhealthy, "the new instance exited"};
  auto p = agent().Probe(handle.port, manifest_.health_path, milliseconds(1000));
  if (p.healthy()) {
    watch_failures_ = 0;
    return Status::Ok();
  }
  // Two failures in a row, so one slow probe on a busy machine does not undo a deploy.
  if (++watch_failures_ < 2) return Status::Ok();
  return {Code::kUnhealthy, fmt::format("health check failed after the switch ({})",
                                        p.status ? "HTTP " + std::to_string(p.status) : p.error)};
}

Status Deployer::Drain() {
  if (previous_ && previous_->instance.runtime == "swarm" && swarm()) {
    Instance old = previous_->instance;
    if (old.id != new_instance_->id) {
      old.state = "stopped";  // the record; the service lives on with new tasks
      (void)ctx_.store.UpdateInstance(old);
    }
    Emit(Stage::kDrain, "info",
         "Swarm stopped the previous tasks after their replacements were healthy");
    return Status::Ok();
  }
  if (!previous_) {
    Emit(Stage::kDrain, "info", "no previous instance to drain");
    return Status::Ok();
  }
  auto deadline = ctx_.clock.Now() + manifest_.drain_timeout;
  while (previous_->target && previous_->target->inflight() > 0 && ctx_.clock.Now() < deadline) {
    ctx_.clock.SleepFor(milliseconds(10));
  }
  std::int64_t left = previous_->target ? previous_->target->inflight() : 0;
  Emit(Stage::kDrain, "info",
       left ? fmt::format("drain timeout: stopping with {} requests in flight", left)
            : "previous instance has no requests in flight; stopping it");
  ctx_.On(previous_->instance.node)
      .StopInstance(HandleOf(previous_->instance), std::chrono::seconds(10));
  Instance old = previous_->instance;
  old.state = "stopped";
  (void)ctx_.store.UpdateInstance(old);
  return Status::Ok();
}

void Deployer::SwitchBack() {
  if (swarm() && previous_ && previous_->instance.runtime == "swarm") {
    Emit(Stage::kWatch, "info",
         "asking Swarm to roll " + ServiceName(app_.name) + " back to the previous spec");
    (void)agent().RollbackService(ServiceName(app_.name));
    (void)ctx_.store.SetCurrentRelease(app_.id, previous_->instance.release_id);
    Instance old = previous_->instance;
    old.state = "serving";
    (void)ctx_.store.UpdateInstance(old);
    new_instance_->state = "stopped";
    (void)ctx_.store.UpdateInstance(*new_instance_);
    ctx_.serving.Set(app_.id, previous_);
    return;
  }
  if (previous_) {
    ctx_.router.Switch(app_.name, previous_->target);
    (void)ctx_.store.SetCurrentRelease(app_.id, previous_->instance.release_id);
    Instance old = previous_->instance;
    old.state = "serving";
    (void)ctx_.store.UpdateInstance(old);
    ctx_.serving.Set(app_.id, previous_);
    Emit(Stage::kWatch, "info", "switched the gateway back to the previous release");
  } else {
    ctx_.router.Switch(app_.name, nullptr);
    (void)ctx_.store.SetCurrentRelease(app_.id, std::nullopt);
    ctx_.serving.Set(app_.id, std::nullopt);
    Emit(Stage::kWatch, "info", "no previous release: the app is not served");
  }
  DiscardNew();
}

void Deployer::DiscardNew() {
  if (!new_instance_) return;
  if (swarm()) {
    new_instance_->state = "stopped";
    (void)ctx_.store.UpdateInstance(*new_instance_);
    if (runtime_rolled_back_) return;  // Swarm already went back
    bool had_service = previous_ && previous_->instance.runtime == "swarm";
    Emit(machine_.stage(), "info",
         had_service ? "rolling the service back to its previous spec"
                     : "removing the service that never became healthy");
    if (had_service) {
      (void)agent().RollbackService(ServiceName(app_.name));
    } else {
      agent().StopInstance(HandleOf(*new_instance_), std::chrono::seconds(5));
    }
    return;
  }
  agent().StopInstance(HandleOf(*new_instance_), std::chrono::seconds(5));
  new_instance_->state = "stopped";
  (void)ctx_.store.UpdateInstance(*new_instance_);
  Emit(machine_.stage(), "info",
       fmt::format("stopped the new instance (pid {})", new_instance_->pid));
}

void Deployer::PruneReleases() {
  auto releases = ctx_.store.ListReleases(app_.id, false);
  if (!releases.ok()) return;
  int kept = 0;
  for (const auto& r : *releases) {
    if (r.id == release_.id || ++kept <= manifest_.keep - 1) continue;
    if (!ctx_.Reachable(r.node)) continue;  // pruned once its node is back
    if (auto s = ctx_.On(r.node).RemovePath(r.path); !s.ok())
      spdlog::warn("release {} of {}: {}", r.number, app_.name, s.message());
    if (auto m = Manifest::FromJson(r.manifest_json); m.ok() && m->is_image_runtime()) {
      (void)ctx_.On(r.node).RemoveImage(ImageTag(app_.name, r));
    }
    (void)ctx_.store.MarkReleasePruned(r.id);
    Emit(Stage::kDone, "info", fmt::format("pruned release {}", r.number));
  }
  RemoveBuildDir();
}

}  // namespace slipway
