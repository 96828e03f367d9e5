// The Controller's stop/start/supervisor decisions against a scripted local node: a NodeHub
// with the in-process "local" node running ops on a ScriptedAgent, a real SQLite store,
// router, event log and serving state. The Controller runs with no deployment workers, so
// what it queues stays queued and can be looked at; its supervisor loop runs for real.
#include "control/controller.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "agent/hub.h"
#include "agent/in_process.h"
#include "control/deployer.h"
#include "store/sqlite_store.h"
#include "support/fake_agent.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {
using namespace std::chrono_literals;
using testing::ScriptedAgent;

constexpr const char* kManifest =
    "build: [\"make\"]\n"
    "run: {command: ./server}\n"
    "health: {path: /health, timeout: 1s, probes: 1}\n"
    "deploy: {watch_window: 0s, drain_timeout: 1s}\n";

const Actor kUser = SystemActor("tester");

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-controller");
    auto store = OpenSqliteStore((dir_ / "slipway.db").string(), clock_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    NodeHubOptions options;
    options.root = dir_.string();
    hub_ = std::make_unique<NodeHub>(SystemClock::Instance(), options);
    hub_->Start();
    InProcessNodeOptions o;
    o.name = kLocalNode;
    o.data_dir = dir_.string();
    o.worker = &worker_;
    node_ = InProcessNode::Start(*hub_, o);
    ASSERT_TRUE(node_->WaitWelcomed(5s));
    worker_.SetManifest(kManifest);
    events_ = std::make_unique<EventLog>(*store_);
    ctx_ = std::make_unique<Context>(Context{*store_, hub_->AgentFor(kLocalNode), router_, clock_,
                                             *events_, serving_, Paths{dir_.string()}, hub_.get()});
    hello_port_ = DeployApp("hello");
    zulu_port_ = DeployApp("zulu");  // the witness: its supervision marks each pass
    StartController();
  }

  void TearDown() override {
    controller_.reset();
    node_.reset();
    hub_->Stop();
    ctx_.reset();
    events_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A control plane (re)starting on the same store: recovery, then the supervisor loop.
  void StartController() {
    controller_.reset();
    serving_.Set(AppId("hello"), std::nullopt);
    serving_.Set(AppId("zulu"), std::nullopt);
    controller_ = std::make_unique<Controller>(*ctx_, ControllerOptions{0});
    controller_->Start();
  }

  // Creates the app and deploys it on the local node; returns the port it is served on.
  int DeployApp(const std::string& name) {
    App app;
    app.name = name;
    app.repo = "https://git.example.com/" + name + ".git";
    app.secret = "secret-123";
    auto created = store_->CreateApp(app);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    gateway::Route route;
    route.app = name;
    route.hosts = {name + ".localhost"};
    router_.SetRoute(route);
    Deployment d;
    d.app_id = created->id;
    d.app = name;
    d.type = "manual";
    d.ref = "main";
    auto queued = store_->CreateDeployment(d);
    EXPECT_TRUE(queued.ok()) << queued.status().ToString();
    std::atomic<bool> cancel{false};
    auto done = Deployer(*ctx_, *queued, cancel).Run();
    EXPECT_EQ(done.status, DeployStatus::kSucceeded) << done.error;
    auto serving = serving_.Get(created->id);
    return serving ? serving->first().port : 0;
  }

  std::int64_t AppId(const std::string& name) { return store_->GetApp(name)->id; }
  bool Stopped(const std::string& name) { return store_->GetApp(name)->stopped; }

  // Waits for `n` more supervisor passes. Each asks whether the witness's instance runs, and
  // apps are passed over by name, so a pass that reached "zulu" is done with "hello": the
  // second pass counted from now started after now.
  void WaitPasses(int n) {
    std::string port = std::to_string(zulu_port_);
    int seen = worker_.Count("IsRunning", port);
    ASSERT_TRUE(worker_.WaitForCount("IsRunning", &port, seen + n, 10s)) << "no supervisor pass";
  }

  // Waits until a supervisor pass has seen hello's instance dead and dealt with it: the
  // pass asks about "hello" (which answers not running), then about "zulu".
  void WaitCrashNoticed() {
    std::string hello = std::to_string(hello_port_), zulu = std::to_string(zulu_port_);
    int asked = worker_.Count("IsRunning", hello);
    ASSERT_TRUE(worker_.WaitForCount("IsRunning", &hello, asked + 1, 10s)) << "no pass";
    int witnessed = worker_.Count("IsRunning", zulu);
    ASSERT_TRUE(worker_.WaitForCount("IsRunning", &zulu, witnessed + 1, 10s)) << "no pass";
  }

  std::vector<Deployment> Restarts(DeployStatus status) {
    auto all = store_->ListDeployments({AppId("hello"), status, 100});
    EXPECT_TRUE(all.ok());
    std::vector<Deployment> out;
    for (const auto& d : *all)
      if (d.type == "restart") out.push_back(d);
    return out;
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<NodeHub> hub_;
  ScriptedAgent worker_{kLocalNode, 20000};
  std::unique_ptr<InProcessNode> node_;
  std::unique_ptr<EventLog> events_;
  gateway::Router router_;
  ServingState serving_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<Controller> controller_;
  int hello_port_ = 0;
  int zulu_port_ = 0;
};

// Recovery adopts what runs: both apps serve again after the control plane starts.
TEST_F(ControllerTest, RecoveryAdoptsTheRunningInstances) {
  ASSERT_TRUE(serving_.Get(AppId("hello")));
  EXPECT_EQ(serving_.Get(AppId("hello"))->first().port, hello_port_);
  EXPECT_EQ(serving_.Get(AppId("zulu"))->first().port, zulu_port_);
  ASSERT_TRUE(router_.Current("hello"));
  EXPECT_EQ(router_.Current("hello")->port(), hello_port_);
  EXPECT_EQ(worker_.Count("StartInstance"), 2);  // nothing started again
}

// The supervisor would restart the dead instance, but a stop comes first: after it, no pass
// queues a restart and the app stays stopped, unrouted.
TEST_F(ControllerTest, AStopWinsOverTheSupervisorsRestart) {
  worker_.Crash(hello_port_);
  ASSERT_TRUE(controller_->StopApp("hello", kUser).ok());
  WaitPasses(2);
  EXPECT_TRUE(Restarts(DeployStatus::kQueued).empty());
  EXPECT_TRUE(Stopped("hello"));
  EXPECT_FALSE(serving_.Get(AppId("hello")));
  EXPECT_EQ(router_.Current("hello"), nullptr);
  EXPECT_EQ(worker_.Count("StartInstance"), 2);
}

// A restart the supervisor queued for a dead instance is cancelled by a stop.
TEST_F(ControllerTest, AStopCancelsTheSupervisorsQueuedRestart) {
  worker_.Crash(hello_port_);
  WaitCrashNoticed();
  auto queued = Restarts(DeployStatus::kQueued);
  ASSERT_EQ(queued.size(), 1u);
  ASSERT_TRUE(controller_->StopApp("hello", kUser).ok());
  auto d = store_->GetDeployment(queued.front().id);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->status, DeployStatus::kCancelled);
  EXPECT_EQ(d->error, "the app was stopped by tester");
  EXPECT_TRUE(Restarts(DeployStatus::kQueued).empty());
  EXPECT_TRUE(Stopped("hello"));
}

// A user's queued restart of a running app is cancelled by a stop too.
TEST_F(ControllerTest, AStopCancelsAQueuedRestart) {
  auto q = controller_->StartApp("hello", true, kUser);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  ASSERT_TRUE(controller_->StopApp("hello", kUser).ok());
  EXPECT_EQ(store_->GetDeployment(q->id)->status, DeployStatus::kCancelled);
  EXPECT_TRUE(Stopped("hello"));
  EXPECT_EQ(worker_.Stopped(), std::vector<int>{hello_port_});
}

// Starting a stopped app queues one restart deployment of its release (a second start
// replaces it), and the supervisor adds none of its own.
TEST_F(ControllerTest, AStartOfAStoppedAppQueuesExactlyOneRestart) {
  ASSERT_TRUE(controller_->StopApp("hello", kUser).ok());
  auto q = controller_->StartApp("hello", false, kUser);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->type, "restart");
  EXPECT_EQ(q->release_id, store_->GetApp("hello")->current_release_id);
  EXPECT_FALSE(Stopped("hello"));
  WaitPasses(2);
  auto queued = Restarts(DeployStatus::kQueued);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued.front().id, q->id);
  auto again = controller_->StartApp("hello", false, kUser);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  queued = Restarts(DeployStatus::kQueued);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued.front().id, again->id);
}

// stop, start (queued), stop: whatever the second stop answers, the app must not end up
// with its start cancelled yet marked running, which a control-plane restart would then
// bring back up against the user's last word.
TEST_F(ControllerTest, AStopAfterAQueuedStartLeavesTheAppStopped) {
  ASSERT_TRUE(controller_->StopApp("hello", kUser).ok());
  auto start = controller_->StartApp("hello", false, kUser);
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  Status second = controller_->StopApp("hello", kUser);
  auto d = store_->GetDeployment(start->id);
  ASSERT_TRUE(d.ok());
  if (d->status == DeployStatus::kQueued) {
    EXPECT_FALSE(second.ok()) << "a stop that succeeded left the start queued";
    GTEST_SUCCEED() << "the second stop changed nothing";
    return;
  }
  EXPECT_EQ(d->status, DeployStatus::kCancelled);
  EXPECT_TRUE(Stopped("hello")) << "the start was cancelled (stop answered: " << second.ToString()
                                << ") but the app is not marked stopped";
  int started = worker_.Count("StartInstance");
  StartController();
  EXPECT_EQ(worker_.Count("StartInstance"), started) << "recovery started the stopped app";
  EXPECT_FALSE(serving_.Get(AppId("hello")));
}

}  // namespace
}  // namespace slipway
