// The Deployer's second half for processes and containers: start and verify an instance on
// each node, switch the gateway to all of them, watch, drain the previous ones, or undo.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "control/deployer.h"
#include "control/deployer_util.h"
#include "control/instances.h"

namespace slipway {
using std::chrono::milliseconds;

Status Deployer::StartInstance(Unit& u) {
  auto instance = LaunchInstance(ctx_, app_, release_, manifest_, "starting", u.node, &injection_);
  if (!instance.ok()) return instance.status();
  u.instance = *instance;
  const Instance& i = *u.instance;
  Emit(Stage::kStart, "info",
       i.container_id.empty()
           ? fmt::format("started release {} as pid {} on port {} (node {})", release_.number,
                         i.pid, i.port, u.node)
           : fmt::format("started container slipway-{}-{} ({}) on {}:{} (node {})", app_.name,
                         release_.number, i.container_id.substr(0, 12), ctx_.AddressOf(u.node),
                         i.port, u.node));
  return Status::Ok();
}

void Deployer::EmitLogTail(Unit& u, Stage stage) {
  auto lines = agent(u).RecentOutput(HandleOf(*u.instance),
                                     InstanceLogPath(ctx_.paths, app_.name, u.instance->id), 20);
  auto sink = SinkFor(u, ToString(stage), true);  // tagged and redacted like build output
  for (const auto& l : lines) sink(os::OutputStream::kStderr, l);
}

Status Deployer::Verify(Unit& u) {
  auto handle = HandleOf(*u.instance);
  auto deadline = ctx_.clock.Now() + manifest_.health_timeout;
  ProbeResult last;
  // Poll fast at first (most apps listen within milliseconds), backing off to 20 ms: a
  // local probe is cheap, and a coarser step would add its own delay to every deploy.
  milliseconds pause(2);
  for (;;) {
    if (!agent(u).IsRunning(handle)) {
      if (!ctx_.Reachable(u.node)) return {Code::kUnavailable, "node " + u.node + " lost"};
      EmitLogTail(u, Stage::kVerify);
      return {Code::kUnhealthy, "the instance exited before it became healthy"};
    }
    last = agent(u).Probe(handle.port, manifest_.health_path, milliseconds(1000));
    if (last.healthy()) break;
    if (ctx_.clock.Now() >= deadline || cancel_.load()) {
      EmitLogTail(u, Stage::kVerify);
      return {Code::kUnhealthy,
              fmt::format("{} did not answer 2xx within {} ms (last: {})", manifest_.health_path,
                          manifest_.health_timeout.count(), ProbeText(last.status, last.error))};
    }
    ctx_.clock.SleepFor(pause);
    pause = std::min(pause * 2, milliseconds(20));
  }
  Emit(Stage::kVerify, "info",
       fmt::format("{}{} answered {}", Tag(u), manifest_.health_path, last.status));
  if (auto s = CheckLatency(u); !s.ok()) return s;
  return CheckMemory(u);
}

Status Deployer::CheckLatency(Unit& u) {
  auto handle = HandleOf(*u.instance);
  std::vector<long long> latencies;
  for (int i = 0; i < manifest_.probes; ++i) {
    auto p = agent(u).Probe(handle.port, manifest_.health_path,
                            std::max(manifest_.max_latency * 10, milliseconds(1000)));
    if (!p.healthy()) {
      return {Code::kUnhealthy,
              fmt::format("health probe {} failed: {}", i + 1, ProbeText(p.status, p.error))};
    }
    latencies.push_back(p.latency.count());
  }
  std::sort(latencies.begin(), latencies.end());
  long long median = latencies[latencies.size() / 2];
  Emit(Stage::kVerify, "info",
       fmt::format("{}{} probes healthy, median latency {:.2f} ms (limit {} ms)", Tag(u),
                   manifest_.probes, median / 1000.0, manifest_.max_latency.count()));
  if (median > manifest_.max_latency.count() * 1000) {
    return {Code::kUnhealthy, fmt::format("health latency {:.1f} ms is over max_latency {} ms",
                                          median / 1000.0, manifest_.max_latency.count())};
  }
  return Status::Ok();
}

Status Deployer::CheckMemory(Unit& u) {
  if (manifest_.max_memory_bytes <= 0) return Status::Ok();
  long long rss = agent(u).MemoryBytes(HandleOf(*u.instance));
  Emit(Stage::kVerify, "info", Tag(u) + "resident memory " + Mib(rss));
  if (rss > manifest_.max_memory_bytes) {
    return {Code::kUnhealthy, fmt::format("memory {} is over max_memory {}", Mib(rss),
                                          Mib(manifest_.max_memory_bytes))};
  }
  return Status::Ok();
}

// Records first (current release, instance states), then the gateway: a failed write
// leaves the previous instances serving and the pipeline undoes the new ones.
Status Deployer::Switch() {
  if (swarm()) return SwitchService();
  Serving next;
  for (auto& u : units_) {
    if (!u.target) {  // a rollout made the canaries' targets already (their figures go on)
      auto target = TargetOf(
          ctx_, fmt::format("{}-r{}-i{}", app_.name, release_.number, u.instance->id), *u.instance);
      if (!target.ok()) return target.status();
      u.target = *target;
    }
    next.targets.push_back(u.target);
  }
  if (auto s = ctx_.store.SetCurrentRelease(app_.id, release_.id); !s.ok()) return s;
  for (auto& u : units_) {
    u.instance->state = "serving";
    if (auto s = ctx_.store.UpdateInstance(*u.instance); !s.ok()) return s;
    next.instances.push_back(*u.instance);
  }
  if (previous_) {
    for (Instance old : previous_->instances) {
      old.state = "standby";
      if (auto s = ctx_.store.UpdateInstance(old); !s.ok()) return s;
    }
  }
  RouteTo(ctx_.router, app_.name, next.targets);
  ctx_.serving.Set(app_.id, next);
  std::string where;
  for (const auto& i : next.instances)
    where += fmt::format("{}{}:{}", where.empty() ? "" : ", ", i.node, i.port);
  Emit(Stage::kSwitch, "info",
       fmt::format("gateway now sends {} to release {} ({})", app_.name, release_.number, where));
  return Status::Ok();
}

Status Deployer::WatchOnce() {
  if (swarm()) return WatchService();
  for (auto& u : units_) {
    if (auto s = WatchUnit(u); !s.ok()) return Status(s.code(), Tag(u) + s.message());
  }
  return Status::Ok();
}

Status Deployer::WatchUnit(Unit& u) {
  auto handle = HandleOf(*u.instance);
  if (!agent(u).IsRunning(handle)) {
    if (!ctx_.Reachable(u.node)) return {Code::kUnavailable, "node " + u.node + " lost"};
    return {Code::kUnhealthy, "the new instance exited"};
  }
  auto p = agent(u).Probe(handle.port, manifest_.health_path, milliseconds(1000));
  if (p.healthy()) {
    u.watch_failures = 0;
    return Status::Ok();
  }
  // Two failures in a row, so one slow probe on a busy machine does not undo a deploy.
  if (++u.watch_failures < 2) return Status::Ok();
  return {Code::kUnhealthy,
          fmt::format("health check failed after the switch ({})", ProbeText(p.status, p.error))};
}

// Waits (up to drain_timeout) until no request is in flight on any previous instance, then
// stops each on its node.
Status Deployer::Drain() {
  if (previous_ && previous_->runtime() == "swarm" && swarm()) {
    Instance old = previous_->first();
    if (old.id != units_.front().instance->id) {
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
  auto inflight = [this] {
    std::int64_t n = 0;
    for (const auto& t : previous_->targets) n += t ? t->inflight() : 0;
    return n;
  };
  auto deadline = ctx_.clock.Now() + manifest_.drain_timeout;
  while (inflight() > 0 && ctx_.clock.Now() < deadline) ctx_.clock.SleepFor(milliseconds(10));
  std::int64_t left = inflight();
  Emit(Stage::kDrain, "info",
       left ? fmt::format("drain timeout: stopping with {} requests in flight", left)
            : "previous instances have no requests in flight; stopping them");
  for (Instance old : previous_->instances) {
    if (!StopAndRecord(ctx_, old, std::chrono::seconds(10)))
      Emit(Stage::kDrain, "info",
           "node " + old.node +
               " is not connected: its previous instance "
               "is stopped when it is back");
  }
  return Status::Ok();
}

void Deployer::SwitchBack() {
  if (swarm() && previous_ && previous_->runtime() == "swarm") {
    Emit(Stage::kWatch, "info",
         "asking Swarm to roll " + ServiceName(app_.name) + " back to the previous spec");
    (void)agent(units_.front()).RollbackService(ServiceName(app_.name));
  } else if (previous_) {
    RouteTo(ctx_.router, app_.name, previous_->targets);
    Emit(Stage::kWatch, "info", "switched the gateway back to the previous release");
  } else {
    ctx_.router.Switch(app_.name, nullptr);
    Emit(Stage::kWatch, "info", "no previous release: the app is not served");
  }
  // The gateway is back first; the records follow. A failed write is logged loudly: the
  // next start reconciles from what runs (recovery adopts the current release's instances).
  auto check = [this](const Status& s) {
    if (!s.ok()) spdlog::error("deployment {}: switching back: {}", d_.id, s.ToString());
  };
  check(ctx_.store.SetCurrentRelease(
      app_.id, previous_ ? std::optional(previous_->first().release_id) : std::nullopt));
  if (previous_) {
    for (Instance old : previous_->instances) {
      old.state = "serving";
      check(ctx_.store.UpdateInstance(old));
    }
  }
  ctx_.serving.Set(app_.id, previous_);
  if (swarm() && previous_ && previous_->runtime() == "swarm") {
    units_.front().instance->state = "stopped";  // the rollback above replaced its tasks
    check(ctx_.store.UpdateInstance(*units_.front().instance));
    return;
  }
  DiscardNew();
}

void Deployer::DiscardNew() {
  if (swarm()) {
    if (!units_.empty() && units_.front().instance) DiscardService();
    return;
  }
  for (auto& u : units_) {
    if (!u.instance || u.instance->state == "stopped") continue;
    bool stopped = StopAndRecord(ctx_, *u.instance, std::chrono::seconds(5));
    Emit(machine_.stage(), "info",
         stopped ? fmt::format("{}stopped the new instance (pid {})", Tag(u), u.instance->pid)
                 : Tag(u) + "node not connected: the new instance is stopped when it is back");
  }
}

// Keeps `keep` releases (the new one included); a release on a node that is not connected
// waits until a later deployment finds every one of its nodes back.
void Deployer::PruneReleases() {
  auto releases = ctx_.store.ListReleases(app_.id, false);
  if (!releases.ok()) return;
  int kept = 0;
  for (const auto& r : *releases) {
    if (r.id == release_.id || ++kept <= manifest_.keep - 1) continue;
    if (!std::all_of(r.nodes.begin(), r.nodes.end(),
                     [this](const std::string& n) { return ctx_.Reachable(n); }))
      continue;
    auto m = Manifest::FromJson(r.manifest_json);
    for (const auto& node : r.nodes) {
      if (auto s = ctx_.On(node).RemovePath(r.path); !s.ok())
        spdlog::warn("release {} of {} on node {}: {}", r.number, app_.name, node, s.message());
      if (m.ok() && m->is_image_runtime()) (void)ctx_.On(node).RemoveImage(ImageTag(app_.name, r));
    }
    (void)ctx_.store.MarkReleasePruned(r.id);
    Emit(Stage::kDone, "info", fmt::format("pruned release {}", r.number));
  }
}

}  // namespace slipway
