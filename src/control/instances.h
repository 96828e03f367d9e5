#pragma once
// Starting and addressing instances of a release, shared by the Deployer (start stage) and
// the Controller (recovery after a restart, app restarts).
#include <string>

#include "control/context.h"
#include "manifest/manifest.h"

namespace slipway {

// The image tag of a container release: slipway/<app>:<n>-<sha7>.
std::string ImageTag(const std::string& app, const Release& release);

InstanceHandle HandleOf(const Instance& i);

std::string InstanceLogPath(const Paths& paths, const std::string& app, std::int64_t instance_id);

// Allocates a port on `node` (one of the release's nodes), records the instance (state
// `state`), starts it through that node's agent and records its pid / container id. On a
// start failure the record is marked stopped.
//
// The instance gets `injection` (its variables over the manifest's env, its network,
// aliases and limits); null = the app's current one, looked up through ctx.injection (none
// when that is null), so that recovery and restarts start what a deployment would. A failed
// lookup fails the launch before anything is recorded.
Result<Instance> LaunchInstance(Context& ctx, const App& app, const Release& release,
                                const Manifest& manifest, const std::string& state,
                                const std::string& node, const Injection* injection = nullptr);
// Stops `instance` through its node's agent and records it stopped. When the node is not
// connected the record is left as it is and false returned: the supervisor's sweep stops the
// instance once its node is back (Controller::SweepLeftovers). A failed record write is
// logged.
bool StopAndRecord(Context& ctx, Instance& instance, std::chrono::milliseconds grace);

// The gateway target of an instance: its node's address and its port. kUnavailable when the
// node's address is unknown.
Result<std::shared_ptr<gateway::Target>> TargetOf(const Context& ctx, const std::string& id,
                                                  const Instance& instance);

// Service name of a swarm app.
std::string ServiceName(const std::string& app);
ServiceSpec MakeServiceSpec(const App& app, const Release& release, const Manifest& m);

// Points the app's gateway pool at the service's tasks that are running, meant to run and
// healthy (each on its own host port). Returns every task, for progress reporting.
Result<std::vector<TaskView>> SyncServicePool(Context& ctx, const std::string& app,
                                              const std::string& service);

}  // namespace slipway
