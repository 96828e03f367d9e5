// The swarm runtime: one service, on the Docker of the deployment's (single) node; Swarm
// replaces the tasks itself and the gateway pool follows them.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>

#include "control/deployer.h"
#include "control/deployer_util.h"
#include "control/instances.h"

namespace slipway {
using std::chrono::milliseconds;

Status Deployer::StartService() {
  ServiceSpec spec = MakeServiceSpec(app_, release_, manifest_);
  Instance rec;
  rec.app_id = app_.id;
  rec.release_id = release_.id;
  rec.runtime = "swarm";
  rec.state = "starting";
  rec.node = units_.front().node;
  auto created = ctx_.store.CreateInstance(rec);
  if (!created.ok()) return created.status();
  units_.front().instance = *created;
  auto id = agent(units_.front()).DeployService(spec);
  if (!id.ok()) {
    units_.front().instance->state = "stopped";
    (void)ctx_.store.UpdateInstance(*units_.front().instance);
    return id.status();
  }
  units_.front().instance->container_id = *id;
  (void)ctx_.store.UpdateInstance(*units_.front().instance);
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
        !agent(units_.front()).TaskHealthy(t.container_id)) {
      continue;
    }
    auto p = agent(units_.front()).Probe(t.port, manifest_.health_path, milliseconds(1000));
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
      else if (t.state == "running" && agent(units_.front()).TaskHealthy(t.container_id))
        ++ready;
    }
    auto svc = agent(units_.front()).InspectService(service);
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

Status Deployer::SwitchService() {
  Instance& next = *units_.front().instance;
  if (auto s = ctx_.store.SetCurrentRelease(app_.id, release_.id); !s.ok()) return s;
  next.state = "serving";
  if (auto s = ctx_.store.UpdateInstance(next); !s.ok()) return s;
  if (previous_ && previous_->runtime() != "swarm") {
    for (Instance old : previous_->instances) {
      old.state = "standby";
      if (auto s = ctx_.store.UpdateInstance(old); !s.ok()) return s;
    }
  }
  ctx_.serving.Set(app_.id, Serving{{next}, {}});
  Emit(Stage::kSwitch, "info",
       fmt::format("gateway follows the tasks of {} (release {})", ServiceName(app_.name),
                   release_.number));
  return Status::Ok();
}

Status Deployer::WatchService() {
  auto tasks = SyncServicePool(ctx_, app_.name, ServiceName(app_.name));
  Status s = tasks.ok() ? ProbeAll(*tasks) : tasks.status();
  if (s.ok()) {
    service_watch_failures_ = 0;
    return s;
  }
  return ++service_watch_failures_ < 2
             ? Status::Ok()
             : Status(Code::kUnhealthy, "after the update: " + s.message());
}

void Deployer::DiscardService() {
  Instance& next = *units_.front().instance;
  next.state = "stopped";
  (void)ctx_.store.UpdateInstance(next);
  if (runtime_rolled_back_) return;  // Swarm already went back
  bool had_service = previous_ && previous_->runtime() == "swarm";
  Emit(machine_.stage(), "info",
       had_service ? "rolling the service back to its previous spec"
                   : "removing the service that never became healthy");
  if (had_service) {
    (void)agent(units_.front()).RollbackService(ServiceName(app_.name));
  } else {
    agent(units_.front()).StopInstance(HandleOf(next), std::chrono::seconds(5));
  }
}

}  // namespace slipway
