// The Deployer against scripted nodes: a NodeHub with in-process nodes (the server's own
// "local" and two nodes labelled "web"), each running ops on a ScriptedAgent, a real SQLite
// store, router, event log and serving state, and a FakeClock for every wait the pipeline
// makes. No process, socket or real sleep is involved.
#include "control/deployer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>

#include "agent/hub.h"
#include "agent/in_process.h"
#include "control/instances.h"
#include "control/rollout_board.h"
#include "store/sqlite_store.h"
#include "support/fake_agent.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {
using namespace std::chrono_literals;
using testing::ScriptedAgent;

struct ManifestOptions {
  std::string nodes;  // YAML flow list, e.g. "[web]"; "" = no placement
  std::string strategy = "parallel";
};

// Short health timeout and watch window: the FakeClock moves by every sleep the pipeline
// takes, so they only bound how many probes a failing check makes.
std::string ManifestText(const ManifestOptions& o = {}) {
  std::string text =
      "build: [\"make\"]\n"
      "test: [\"make check\"]\n"
      "run: {command: ./server}\n"
      "health: {path: /health, timeout: 200ms, probes: 2}\n"
      "deploy: {watch_window: 400ms, drain_timeout: 1s, strategy: " +
      o.strategy + "}\n";
  if (!o.nodes.empty()) text += "nodes: " + o.nodes + "\n";
  return text;
}

// An InjectionSource that answers `injection` (or `error`) and counts its calls.
class FakeInjections final : public InjectionSource {
 public:
  Result<Injection> For(const App& app) override {
    std::lock_guard lock(mu_);
    ++calls_;
    apps_.push_back(app.name);
    if (!error_.ok()) return error_;
    return injection_;
  }
  void Set(Injection injection) {
    std::lock_guard lock(mu_);
    injection_ = std::move(injection);
  }
  void Fail(Status error) {
    std::lock_guard lock(mu_);
    error_ = std::move(error);
  }
  int calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  Injection injection_;
  Status error_ = Status::Ok();
  int calls_ = 0;
  std::vector<std::string> apps_;
};

class DeployerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-deployer");
    auto store = OpenSqliteStore((dir_ / "slipway.db").string(), clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    NodeHubOptions options;
    options.root = dir_.string();
    hub_ = std::make_unique<NodeHub>(SystemClock::Instance(), options);
    hub_->Start();
    Connect(local_, {});
    Connect(web1_, {"web", "a"});
    Connect(web2_, {"web", "b"});
    events_ = std::make_unique<EventLog>(*store_);
    ctx_ = std::make_unique<Context>(Context{*store_, hub_->AgentFor(kLocalNode), router_, clock_,
                                             *events_, serving_, Paths{dir_.string()}, hub_.get(),
                                             &board_});
    App app;
    app.name = "hello";
    app.repo = "https://git.example.com/hello.git";
    app.secret = "secret-123";
    auto created = store_->CreateApp(app);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    app_ = *created;
    gateway::Route route;  // what the Controller sets up when the app is created
    route.app = app_.name;
    route.hosts = {"hello.localhost"};
    router_.SetRoute(route);
    SetManifest(ManifestText());
  }

  void TearDown() override {
    clock_.on_sleep = nullptr;
    nodes_.clear();
    hub_->Stop();
    ctx_.reset();
    events_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Connect(ScriptedAgent& worker, std::vector<std::string> labels) {
    InProcessNodeOptions o;
    o.name = worker.node();
    o.labels = std::move(labels);
    o.data_dir = dir_.string();
    o.worker = &worker;
    nodes_.push_back(InProcessNode::Start(*hub_, o));
    ASSERT_TRUE(nodes_.back()->WaitWelcomed(5s)) << worker.node();
  }

  void SetManifest(const std::string& text) {
    for (auto* w : {&local_, &web1_, &web2_}) w->SetManifest(text);
  }

  Deployment Deploy() {
    Deployment d;
    d.app_id = app_.id;
    d.app = app_.name;
    d.type = "manual";
    d.ref = "main";
    d.branch = "main";
    auto created = store_->CreateDeployment(d);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return Deployer(*ctx_, *created, cancel_).Run();
  }

  // The app's main route: its one target or its pool.
  std::vector<std::shared_ptr<gateway::Target>> RouteTargets() const {
    for (const auto& r : router_.Snapshot()->routes()) {
      if (r.app != app_.name || !r.listener.empty() || !r.when.empty()) continue;
      if (!r.pool.empty()) return r.pool;
      if (r.target) return {r.target};
    }
    return {};
  }
  std::set<int> RoutedPorts() const {
    std::set<int> ports;
    for (const auto& t : RouteTargets()) ports.insert(t->port());
    return ports;
  }
  // node → port of what ServingState says serves the app.
  std::map<std::string, int> Serving() const {
    std::map<std::string, int> out;
    if (auto s = serving_.Get(app_.id))
      for (const auto& i : s->instances) out[i.node] = i.port;
    return out;
  }
  std::string InstanceState(int port) {
    auto live = store_->ListLiveInstances(app_.id);
    if (!live.ok()) return "?";
    for (const auto& i : *live)
      if (i.port == port) return i.state;
    return "stopped";  // live instances are the ones not stopped
  }
  static int BuildDirsRemoved(const ScriptedAgent& w) {
    int n = 0;
    for (const auto& c : w.Calls())
      n += c.op == "RemovePath" && c.arg.find("/builds/hello/") != std::string::npos;
    return n;
  }
  static std::set<int> Ports(const std::vector<int>& v) { return {v.begin(), v.end()}; }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<NodeHub> hub_;
  ScriptedAgent local_{kLocalNode, 20000};
  ScriptedAgent web1_{"web-1", 21000};
  ScriptedAgent web2_{"web-2", 22000};
  std::vector<std::unique_ptr<InProcessNode>> nodes_;
  std::unique_ptr<EventLog> events_;
  gateway::Router router_;
  ServingState serving_;
  std::unique_ptr<Context> ctx_;
  std::atomic<bool> cancel_{false};
  RolloutBoard board_;
  FakeInjections injections_;
  App app_;
};

// Without labels the app runs on the server's own node only: one instance, one target.
TEST_F(DeployerTest, WithoutLabelsItRunsOnTheLocalNodeOnly) {
  auto d = Deploy();
  ASSERT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  EXPECT_EQ(local_.Count("RunStep", "make"), 1);
  EXPECT_EQ(local_.Count("RunStep", "make check"), 1);
  ASSERT_EQ(local_.Started().size(), 1u);
  EXPECT_TRUE(web1_.Calls().empty());
  EXPECT_TRUE(web2_.Calls().empty());
  int port = local_.Started().front();
  EXPECT_EQ(Serving(), (std::map<std::string, int>{{kLocalNode, port}}));
  ASSERT_EQ(RouteTargets().size(), 1u);
  EXPECT_EQ(RouteTargets().front()->port(), port);
  EXPECT_EQ(RouteTargets().front()->host(), "127.0.0.1");
  EXPECT_EQ(local_.Specs().front().env.at("HOST"), "127.0.0.1");
  EXPECT_EQ(InstanceState(port), "serving");
}

// `nodes: [web]` moves the deployment from the local node (where the manifest was read) to
// both web nodes: each builds, tests and starts its own instance, the release lists both,
// and the gateway pools the two instances.
TEST_F(DeployerTest, LabelsPlaceItOnEveryMatchingNode) {
  SetManifest(ManifestText({"[web]"}));
  auto d = Deploy();
  ASSERT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  for (auto* w : {&web1_, &web2_}) {
    EXPECT_EQ(w->Count("RunStep", "make"), 1) << w->node();
    EXPECT_EQ(w->Count("RunStep", "make check"), 1) << w->node();
    ASSERT_EQ(w->Started().size(), 1u) << w->node();
    EXPECT_EQ(w->Specs().front().env.at("HOST"), "0.0.0.0") << w->node();
  }
  EXPECT_EQ(local_.Count("RunStep"), 0);
  EXPECT_EQ(local_.Count("StartInstance"), 0);
  EXPECT_EQ(BuildDirsRemoved(local_), 1);  // its checkout, once the manifest moved the app
  ASSERT_TRUE(d.release_id);
  auto release = store_->GetRelease(*d.release_id);
  ASSERT_TRUE(release.ok());
  EXPECT_EQ(release->nodes, (std::vector<std::string>{"web-1", "web-2"}));
  int p1 = web1_.Started().front(), p2 = web2_.Started().front();
  EXPECT_EQ(Serving(), (std::map<std::string, int>{{"web-1", p1}, {"web-2", p2}}));
  EXPECT_EQ(RouteTargets().size(), 2u);
  EXPECT_EQ(RoutedPorts(), (std::set<int>{p1, p2}));
  EXPECT_EQ(InstanceState(p1), "serving");
  EXPECT_EQ(InstanceState(p2), "serving");
}

// A verify failure on one node fails the deployment naming that node; the new instances of
// both nodes are stopped and the previous release keeps serving from both.
TEST_F(DeployerTest, AVerifyFailureOnOneNodeKeepsThePreviousReleaseOnAll) {
  SetManifest(ManifestText({"[web]"}));
  auto first = Deploy();
  ASSERT_EQ(first.status, DeployStatus::kSucceeded) << first.error;
  auto before = Serving();
  auto targets = RouteTargets();
  web2_.SetHealthy(false);
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_NE(d.error.find("node web-2"), std::string::npos) << d.error;
  EXPECT_NE(d.error.find("/health"), std::string::npos) << d.error;
  ASSERT_EQ(web1_.Started().size(), 2u);
  ASSERT_EQ(web2_.Started().size(), 2u);
  int new1 = web1_.Started().back(), new2 = web2_.Started().back();
  EXPECT_EQ(Ports(web1_.Stopped()), std::set<int>{new1});
  EXPECT_EQ(Ports(web2_.Stopped()), std::set<int>{new2});
  EXPECT_EQ(InstanceState(new1), "stopped");
  EXPECT_EQ(InstanceState(new2), "stopped");
  EXPECT_EQ(Serving(), before);
  EXPECT_EQ(RouteTargets(), targets);
  EXPECT_EQ(store_->GetAppById(app_.id)->current_release_id, first.release_id);
}

// one-by-one builds node after node (by name) and stops at the first failure: the second
// node never runs the build, and nothing starts anywhere.
TEST_F(DeployerTest, OneByOneStopsAtTheFirstNodeWhoseBuildFails) {
  SetManifest(ManifestText({"[web]", "one-by-one"}));
  web1_.ScriptStep("make", ScriptedAgent::Step::kFail);
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_NE(d.error.find("node web-1"), std::string::npos) << d.error;
  EXPECT_NE(d.error.find("exited with 3"), std::string::npos) << d.error;
  EXPECT_EQ(web1_.Count("RunStep", "make"), 1);
  EXPECT_EQ(web2_.Count("RunStep"), 0);
  EXPECT_EQ(web1_.Count("StartInstance") + web2_.Count("StartInstance"), 0);
  EXPECT_EQ(BuildDirsRemoved(web1_), 1);
  EXPECT_EQ(BuildDirsRemoved(web2_), 1);
  EXPECT_FALSE(serving_.Get(app_.id));
}

// A worker that throws while a stage runs on both nodes at once fails the deployment (naming
// the node and carrying what was thrown), and nothing else: the test process goes on.
TEST_F(DeployerTest, AWorkerThatThrowsFailsTheDeploymentNotTheProcess) {
  SetManifest(ManifestText({"[web]"}));
  web2_.ScriptStep("make", ScriptedAgent::Step::kThrow);
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_NE(d.error.find("node web-2"), std::string::npos) << d.error;
  EXPECT_NE(d.error.find("boom"), std::string::npos) << d.error;
  EXPECT_EQ(web1_.Count("RunStep", "make"), 1);  // ran beside it
  EXPECT_EQ(web1_.Count("StartInstance") + web2_.Count("StartInstance"), 0);
  EXPECT_EQ(BuildDirsRemoved(web1_), 1);
  EXPECT_EQ(BuildDirsRemoved(web2_), 1);
}

// What a worker's exception is reported as: something went wrong on the node, not a
// malformed request.
TEST_F(DeployerTest, AWorkersExceptionIsNotReportedAsInvalidArgs) {
  SetManifest(ManifestText({"[web]"}));
  web2_.ScriptStep("make", ScriptedAgent::Step::kThrow);
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_EQ(d.error.find("invalid args"), std::string::npos) << d.error;
}

// A throw on a unit's own thread of a parallel stage (here from the clock, while web-2
// waits for its instance to answer) fails the deployment with "internal error" and discards
// the new instances of both nodes.
TEST_F(DeployerTest, AThrowOnAParallelUnitThreadIsAnInternalError) {
  SetManifest(ManifestText({"[web]"}));
  web2_.SetHealthy(false);
  clock_.on_sleep = [](Clock::duration) { throw std::runtime_error("clock broke"); };
  Deployment d;
  EXPECT_NO_THROW(d = Deploy());
  clock_.on_sleep = nullptr;
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_NE(d.error.find("node web-2: internal error: clock broke"), std::string::npos) << d.error;
  EXPECT_EQ(web1_.Stopped(), web1_.Started());
  EXPECT_EQ(web2_.Stopped(), web2_.Started());
  EXPECT_FALSE(serving_.Get(app_.id));
}

// The same throw with `deploy.strategy: one-by-one` (the unit runs on the deployment's own
// thread) must end the same way: Run() never throws.
TEST_F(DeployerTest, AThrowOnAOneByOneUnitIsAnInternalErrorToo) {
  SetManifest(ManifestText({"[web]", "one-by-one"}));
  web2_.SetHealthy(false);
  clock_.on_sleep = [](Clock::duration) { throw std::runtime_error("clock broke"); };
  Deployment d;
  EXPECT_NO_THROW(d = Deploy());
  clock_.on_sleep = nullptr;
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_NE(d.error.find("node web-2: internal error: clock broke"), std::string::npos) << d.error;
  auto record = store_->ListDeployments({app_.id, std::nullopt, 1});
  ASSERT_TRUE(record.ok() && !record->empty());
  EXPECT_EQ(record->front().status, DeployStatus::kFailed);
  EXPECT_EQ(web1_.Stopped(), web1_.Started());
  EXPECT_EQ(web2_.Stopped(), web2_.Started());
}

// New instances that turn unhealthy once the gateway sends them traffic are caught by the
// watch: the gateway goes back to the previous targets (the same objects, so in-flight
// counts carry on), the previous release serves again and the new instances are stopped.
TEST_F(DeployerTest, AWatchFailureSwitchesBackToThePreviousTargets) {
  SetManifest(ManifestText({"[web]"}));
  auto first = Deploy();
  ASSERT_EQ(first.status, DeployStatus::kSucceeded) << first.error;
  auto before = Serving();
  auto targets = RouteTargets();
  std::set<int> old = RoutedPorts();
  auto unhealthy_once_routed = [this, old](int port) {
    return old.count(port) > 0 || RoutedPorts().count(port) == 0;
  };
  web1_.SetHealth(unhealthy_once_routed);
  web2_.SetHealth(unhealthy_once_routed);
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kRolledBack) << d.error;
  EXPECT_NE(d.error.find("health check failed after the switch"), std::string::npos) << d.error;
  EXPECT_EQ(RouteTargets(), targets);
  EXPECT_EQ(Serving(), before);
  EXPECT_EQ(store_->GetAppById(app_.id)->current_release_id, first.release_id);
  int new1 = web1_.Started().back(), new2 = web2_.Started().back();
  EXPECT_EQ(Ports(web1_.Stopped()), std::set<int>{new1});
  EXPECT_EQ(Ports(web2_.Stopped()), std::set<int>{new2});
  EXPECT_EQ(InstanceState(new1), "stopped");
  EXPECT_EQ(InstanceState(new2), "stopped");
  for (int p : old) EXPECT_EQ(InstanceState(p), "serving") << p;
}

// A cancel that arrives after the switch (here, during the watch) no longer applies: the
// new version serves, the watch and the drain run to the end and the deployment succeeds.
TEST_F(DeployerTest, ACancelAfterTheSwitchLetsTheDeploymentFinish) {
  SetManifest(ManifestText());
  local_.SetHealth([this](int port) {
    for (const auto& t : RouteTargets())
      if (t->port() == port) cancel_ = true;  // the gateway already sends traffic here
    return true;
  });
  auto d = Deploy();
  EXPECT_TRUE(cancel_.load());
  EXPECT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  ASSERT_TRUE(serving_.Get(app_.id));
}

// A cancel while the build runs reaches the running step on its node and ends the
// deployment cancelled: nothing is tested or started, the build directories go.
TEST_F(DeployerTest, ACancelDuringTheBuildStopsItAndStartsNothing) {
  SetManifest(ManifestText({"[web]"}));
  for (auto* w : {&web1_, &web2_}) w->ScriptStep("make", ScriptedAgent::Step::kBlockUntilCancelled);
  web1_.OnStep([this](const StepRequest&) { cancel_ = true; });
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kCancelled) << d.error;
  EXPECT_EQ(web1_.Count("Cancelled", "make"), 1);  // the step itself saw the cancel
  for (auto* w : {&local_, &web1_, &web2_}) {
    EXPECT_EQ(w->Count("RunStep", "make check"), 0) << w->node();
    EXPECT_EQ(w->Count("StartInstance"), 0) << w->node();
  }
  EXPECT_EQ(BuildDirsRemoved(web1_), 1);
  EXPECT_EQ(BuildDirsRemoved(web2_), 1);
  EXPECT_FALSE(serving_.Get(app_.id));
}

// --- phased rollouts ------------------------------------------------------------------------

// Stage a (web-1) at `stage_a`, then b (web-2), the full switch.
std::string RolloutText(const std::string& stage_a) {
  return ManifestText() + "rollout:\n  stages:\n    - {nodes: [a], " + stage_a +
         "}\n    - {nodes: [b]}\n";
}

bool HasEvent(const std::vector<Event>& events, const std::string& text) {
  return std::any_of(events.begin(), events.end(),
                     [&](const Event& e) { return e.text.find(text) != std::string::npos; });
}

// A first release goes to both stages' nodes at once; the next one runs on web-1 alone, takes
// 30 % of the route as a canary against the previous instances while it bakes (web-2 still on
// the previous release), then web-2 follows and the switch moves everything.
TEST_F(DeployerTest, ARolloutGoesStageByStageWithTheCanaryWeight) {
  SetManifest(RolloutText("weight: 30, bake: 1s"));
  auto first = Deploy();
  ASSERT_EQ(first.status, DeployStatus::kSucceeded) << first.error;
  ASSERT_EQ(web1_.Started().size(), 1u);
  ASSERT_EQ(web2_.Started().size(), 1u);
  int old1 = web1_.Started().front(), old2 = web2_.Started().front();

  std::vector<std::uint32_t> weights;
  std::set<int> canary_ports;
  std::size_t web2_started_during_bake = 0;
  clock_.on_sleep = [&](auto) {
    for (const auto& r : router_.Snapshot()->routes()) {
      if (r.app != app_.name || r.sides.size() != 2 || !weights.empty()) continue;
      weights = {r.sides[0].weight, r.sides[1].weight};
      for (const auto& t : r.sides[1].targets) canary_ports.insert(t->port());
      web2_started_during_bake = web2_.Started().size();
    }
  };
  auto d = Deploy();
  clock_.on_sleep = nullptr;
  ASSERT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  EXPECT_EQ(weights, (std::vector<std::uint32_t>{70, 30}));
  ASSERT_EQ(web1_.Started().size(), 2u);
  EXPECT_EQ(canary_ports, std::set<int>{web1_.Started().back()});
  EXPECT_EQ(web2_started_during_bake, 1u) << "web-2 waits for stage a to pass";
  int new1 = web1_.Started().back(), new2 = web2_.Started().back();
  EXPECT_EQ(RoutedPorts(), (std::set<int>{new1, new2}));
  EXPECT_EQ(Ports(web1_.Stopped()), std::set<int>{old1});
  EXPECT_EQ(Ports(web2_.Stopped()), std::set<int>{old2});
  auto release = store_->GetRelease(*d.release_id);
  EXPECT_EQ(release->nodes, (std::vector<std::string>{"web-1", "web-2"}));
  auto events = *store_->ListEvents(d.id, 0, 1000);
  EXPECT_TRUE(HasEvent(events, "stage 1/2 (a): deployed on web-1; canary weight 30%"));
  EXPECT_TRUE(HasEvent(events, "stage 1/2 (a): promoted (bake passed)"));
  auto status = board_.Get(app_.name);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->value("state", ""), "succeeded");
}

// No traffic reaches the canary: every interval is inconclusive, and at max_bake the default
// policy aborts. The route is the previous instances' again, the canary is stopped, web-2
// never started the new release, and the deployment is rolled_back.
TEST_F(DeployerTest, AnInconclusiveBakeAbortsAndPutsEverythingBack) {
  SetManifest(RolloutText("weight: 30, bake: 2s, analysis: {interval: 1s, min_requests: 5}"));
  ASSERT_EQ(Deploy().status, DeployStatus::kSucceeded);
  auto before = RoutedPorts();
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kRolledBack) << d.error;
  EXPECT_NE(d.error.find("rollout: stage 1/2 (a) aborted: inconclusive after 2.0s (too little "
                         "traffic: canary 0, baseline 0 requests (min_requests 5)); "
                         "on_inconclusive: abort"),
            std::string::npos)
      << d.error;
  EXPECT_EQ(RoutedPorts(), before);
  ASSERT_EQ(web1_.Started().size(), 2u);
  EXPECT_EQ(Ports(web1_.Stopped()), std::set<int>{web1_.Started().back()});
  EXPECT_EQ(web2_.Started().size(), 1u);
  EXPECT_EQ(board_.Get(app_.name)->value("state", ""), "rolled_back");
  auto events = *store_->ListEvents(d.id, 0, 1000);
  EXPECT_TRUE(HasEvent(events, "stage 1/2 (a): interval 2: inconclusive"));
  EXPECT_TRUE(HasEvent(events, "rollout aborted: stage 1/2 (a) aborted"));
}

// A human's abort from the board ends a bake of an hour at once.
TEST_F(DeployerTest, AnAbortFromTheBoardEndsTheBakeAtOnce) {
  SetManifest(RolloutText("weight: 10, bake: 1h"));
  ASSERT_EQ(Deploy().status, DeployStatus::kSucceeded);
  auto before = RoutedPorts();
  EXPECT_EQ(board_.Request(app_.name, {RolloutCommand::Kind::kAbort, "bob"}).code(),
            Code::kConflict)
      << "nothing runs yet";
  bool asked = false;
  clock_.on_sleep = [&](auto) {
    auto s = board_.Get(app_.name);
    if (asked || !s || s->value("state", "") != "baking") return;
    EXPECT_EQ(board_.Request(app_.name, {RolloutCommand::Kind::kPromote, "al"}).code(), Code::kOk);
    asked = board_.Request(app_.name, {RolloutCommand::Kind::kAbort, "bob"}).ok();
  };
  auto started = clock_.Now();
  auto d = Deploy();
  clock_.on_sleep = nullptr;
  EXPECT_TRUE(asked);
  EXPECT_EQ(d.status, DeployStatus::kRolledBack) << d.error;
  EXPECT_NE(d.error.find("stage 1/2 (a) aborted by bob"), std::string::npos) << d.error;
  EXPECT_LT(clock_.Now() - started, std::chrono::minutes(1));
  EXPECT_EQ(RoutedPorts(), before);
  EXPECT_EQ(web2_.Started().size(), 1u);
  auto audit = store_->ListAudit({});
  ASSERT_TRUE(audit.ok());
  EXPECT_TRUE(std::any_of(audit->begin(), audit->end(), [](const AuditEvent& a) {
    return a.action == "rollout.aborted" && a.actor == "bob";
  }));
}

// --- injection -----------------------------------------------------------------------------

constexpr const char* kSecret = "hunter2-secret";

Injection SampleInjection() {
  Injection in;
  in.env = {{"DB_PASSWORD", kSecret},
            {"FOO", "injected"},
            {"PORT", "1"},
            {"HOST", "0.0.0.0"},
            {"SLIPWAY_APP", "evil"}};
  in.files = {{".env", std::string("DB_PASSWORD=") + kSecret + "\n"}, {"config/creds.json", "{}"}};
  in.secrets = {kSecret};
  return in;
}

bool AnyEventHas(Store& store, std::int64_t id, const std::string& text) {
  auto events = store.ListEvents(id, 0, 10000);
  return events.ok() && HasEvent(*events, text);
}

// The injection's variables reach the build and test steps and the instance over the
// manifest's env (PORT, HOST and SLIPWAY_* stay the server's); its files are written into
// the release with mode 0600 before the instance starts; the source is asked once.
TEST_F(DeployerTest, TheInjectionReachesTheStepsTheInstanceAndTheRelease) {
  injections_.Set(SampleInjection());
  ctx_->injection = &injections_;
  SetManifest(ManifestText() + "env: {FOO: manifest, KEEP: kept}\n");
  std::mutex mu;
  std::vector<std::map<std::string, std::string>> step_envs;
  local_.OnStep([&](const StepRequest& s) {
    std::lock_guard lock(mu);
    step_envs.push_back(s.env);
  });
  auto d = Deploy();
  ASSERT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  EXPECT_EQ(injections_.calls(), 1);
  ASSERT_EQ(step_envs.size(), 2u);  // make, make check
  for (const auto& env : step_envs) {
    EXPECT_EQ(env.at("DB_PASSWORD"), kSecret);
    EXPECT_EQ(env.at("FOO"), "injected");
    EXPECT_EQ(env.at("KEEP"), "kept");
    EXPECT_EQ(env.at("SLIPWAY_APP"), "hello");
    EXPECT_EQ(env.count("PORT"), 0u);
    EXPECT_EQ(env.count("HOST"), 0u);
  }
  ASSERT_EQ(local_.Specs().size(), 1u);
  const auto env = local_.Specs().front().env;  // a copy: Specs() returns a temporary
  EXPECT_EQ(env.at("DB_PASSWORD"), kSecret);
  EXPECT_EQ(env.at("FOO"), "injected");
  EXPECT_EQ(env.at("KEEP"), "kept");
  EXPECT_EQ(env.at("SLIPWAY_APP"), "hello");
  EXPECT_EQ(env.at("HOST"), "127.0.0.1");
  EXPECT_EQ(env.count("PORT"), 0u);
  auto release = store_->GetRelease(*d.release_id);
  ASSERT_TRUE(release.ok());
  auto files = local_.Files();
  ASSERT_EQ(files.count(release->path + "/.env"), 1u);
  EXPECT_EQ(files.at(release->path + "/.env").content,
            std::string("DB_PASSWORD=") + kSecret + "\n");
  EXPECT_EQ(files.at(release->path + "/.env").mode, 0600);
  EXPECT_EQ(files.at(release->path + "/config/creds.json").mode, 0600);
  // Written after the release was made, before the instance started.
  auto calls = local_.Calls();
  auto index = [&](const std::string& op) {
    return std::find_if(calls.begin(), calls.end(), [&](const auto& c) { return c.op == op; }) -
           calls.begin();
  };
  EXPECT_LT(index("MovePath"), index("WriteFile"));
  EXPECT_LT(index("WriteFile"), index("StartInstance"));
  EXPECT_FALSE(AnyEventHas(*store_, d.id, kSecret));
}

// Every node of the deployment gets the files in its copy of the release.
TEST_F(DeployerTest, TheInjectedFilesAreWrittenOnEveryNode) {
  injections_.Set(SampleInjection());
  ctx_->injection = &injections_;
  SetManifest(ManifestText({"[web]"}));
  auto d = Deploy();
  ASSERT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  auto release = store_->GetRelease(*d.release_id);
  for (auto* w : {&web1_, &web2_}) {
    EXPECT_EQ(w->Files().count(release->path + "/.env"), 1u) << w->node();
    EXPECT_EQ(w->Specs().front().env.at("DB_PASSWORD"), kSecret) << w->node();
  }
  EXPECT_EQ(local_.Count("WriteFile"), 0);
  EXPECT_EQ(injections_.calls(), 1);
}

// A secret a build step prints, one in the step's own command line and one in the error it
// fails with are all *** in the events, the deployment's record and its audit entry.
TEST_F(DeployerTest, ASecretPrintedByABuildStepIsRedactedEverywhere) {
  injections_.Set(SampleInjection());
  ctx_->injection = &injections_;
  std::string step = std::string("echo token ") + kSecret;
  SetManifest("build: [\"" + step + "\"]\nrun: {command: ./server}\n");
  local_.ScriptStep(step, ScriptedAgent::Step::kFail);
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_EQ(d.error.find(kSecret), std::string::npos) << d.error;
  EXPECT_NE(d.error.find("echo token ***"), std::string::npos) << d.error;
  auto events = *store_->ListEvents(d.id, 0, 10000);
  EXPECT_FALSE(HasEvent(events, kSecret));
  EXPECT_TRUE(HasEvent(events, "local: echo token ***"));  // the step's output line
  EXPECT_TRUE(HasEvent(events, "$ echo token ***"));       // the event naming the step
  auto record = store_->ListDeployments({app_.id, std::nullopt, 1});
  ASSERT_TRUE(record.ok() && !record->empty());
  EXPECT_EQ(record->front().error.find(kSecret), std::string::npos) << record->front().error;
  auto audit = store_->ListAudit({});
  ASSERT_TRUE(audit.ok());
  for (const auto& a : *audit) EXPECT_EQ(a.detail_json.find(kSecret), std::string::npos);
}

// An injection that cannot be had fails the deployment before anything is built, with the
// source's reason and code, and none of the secrets.
TEST_F(DeployerTest, AnInjectionErrorFailsTheDeploymentWithoutTheSecret) {
  auto injection = SampleInjection();
  injections_.Set(injection);
  injections_.Fail(Unavailable("the environment store cannot be read"));
  ctx_->injection = &injections_;
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_EQ(d.stage, Stage::kCheckout);
  EXPECT_NE(d.error.find("cannot inject the environment into hello: the environment store "
                         "cannot be read"),
            std::string::npos)
      << d.error;
  EXPECT_EQ(d.error.find(kSecret), std::string::npos);
  EXPECT_FALSE(AnyEventHas(*store_, d.id, kSecret));
  EXPECT_EQ(local_.Count("RunStep"), 0);
  EXPECT_EQ(local_.Count("StartInstance"), 0);
  EXPECT_EQ(BuildDirsRemoved(local_), 1);
}

// A file path that would leave the release fails the deployment before the build.
TEST_F(DeployerTest, AnInjectedFileOutsideTheReleaseFailsTheDeployment) {
  Injection injection;
  injection.files = {{"../../escape", kSecret}};
  injections_.Set(injection);
  ctx_->injection = &injections_;
  auto d = Deploy();
  EXPECT_EQ(d.status, DeployStatus::kFailed);
  EXPECT_NE(d.error.find("injected file '../../escape'"), std::string::npos) << d.error;
  EXPECT_EQ(d.error.find(kSecret), std::string::npos);
  EXPECT_EQ(local_.Count("RunStep"), 0);
  EXPECT_EQ(local_.Count("WriteFile"), 0);
}

// A container gets the network, its aliases and the injection's limits over the manifest's.
TEST_F(DeployerTest, AContainerJoinsTheInjectedNetworkWithTheInjectedLimits) {
  Injection injection = SampleInjection();
  injection.network = "sandbox-feat";
  injection.aliases = {"api", "api.feat"};
  injection.memory_bytes = 128 << 20;
  injections_.Set(injection);
  ctx_->injection = &injections_;
  SetManifest(
      "run: {runtime: container, image: hello:v1, port: 8080, memory: 64MiB, cpus: 0.5}\n"
      "health: {path: /health, timeout: 200ms, probes: 2}\n"
      "deploy: {watch_window: 400ms, drain_timeout: 1s}\n");
  auto d = Deploy();
  ASSERT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  ASSERT_EQ(local_.Specs().size(), 1u);
  const ContainerSpec c = local_.Specs().front().container;
  EXPECT_EQ(c.network, "sandbox-feat");
  EXPECT_EQ(c.aliases, (std::vector<std::string>{"api", "api.feat"}));
  EXPECT_EQ(c.memory_bytes, 128 << 20);
  EXPECT_DOUBLE_EQ(c.cpus, 0.5);  // not injected: the manifest's
  EXPECT_EQ(c.name, "slipway-hello-1");
  EXPECT_EQ(local_.Specs().front().env.at("DB_PASSWORD"), kSecret);
  // The image is prepared before the files exist: they never enter a build context.
  auto calls = local_.Calls();
  auto index = [&](const std::string& op) {
    return std::find_if(calls.begin(), calls.end(), [&](const auto& c) { return c.op == op; }) -
           calls.begin();
  };
  EXPECT_LT(index("PrepareImage"), index("WriteFile"));
}

// A restart (and so recovery's start of a release) gets the app's injection as it is now,
// files included, without a rebuild.
TEST_F(DeployerTest, ARestartGetsTheCurrentInjection) {
  auto first = Deploy();
  ASSERT_EQ(first.status, DeployStatus::kSucceeded) << first.error;
  injections_.Set(SampleInjection());
  ctx_->injection = &injections_;
  Deployment restart;
  restart.app_id = app_.id;
  restart.app = app_.name;
  restart.type = "restart";
  restart.ref = "main";
  restart.release_id = first.release_id;
  auto created = store_->CreateDeployment(restart);
  ASSERT_TRUE(created.ok());
  auto d = Deployer(*ctx_, *created, cancel_).Run();
  ASSERT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  ASSERT_EQ(local_.Specs().size(), 2u);
  EXPECT_EQ(local_.Specs().back().env.at("DB_PASSWORD"), kSecret);
  EXPECT_EQ(local_.Files().count(store_->GetRelease(*first.release_id)->path + "/.env"), 1u);
  EXPECT_EQ(injections_.calls(), 1);
}

// LaunchInstance without an injection (recovery, the supervisor's restarts) looks it up
// through the context itself; without a source there is none.
TEST_F(DeployerTest, LaunchInstanceLooksTheInjectionUpItself) {
  auto d = Deploy();
  ASSERT_EQ(d.status, DeployStatus::kSucceeded) << d.error;
  auto release = store_->GetRelease(*d.release_id);
  auto manifest = Manifest::FromJson(release->manifest_json);
  ASSERT_TRUE(release.ok() && manifest.ok());
  auto plain = LaunchInstance(*ctx_, app_, *release, *manifest, "serving", kLocalNode);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(local_.Specs().back().env.count("DB_PASSWORD"), 0u);
  injections_.Set(SampleInjection());
  ctx_->injection = &injections_;
  auto injected = LaunchInstance(*ctx_, app_, *release, *manifest, "serving", kLocalNode);
  ASSERT_TRUE(injected.ok()) << injected.status().ToString();
  EXPECT_EQ(local_.Specs().back().env.at("DB_PASSWORD"), kSecret);
  injections_.Fail(NotFound("environment 'prod' is gone"));
  auto failed = LaunchInstance(*ctx_, app_, *release, *manifest, "serving", kLocalNode);
  EXPECT_EQ(failed.status().code(), Code::kNotFound);
  EXPECT_EQ(local_.Specs().size(), 3u);  // nothing started
}

}  // namespace
}  // namespace slipway
