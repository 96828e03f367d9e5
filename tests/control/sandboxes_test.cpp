// The Sandboxes service against a real SQLite store, router and Controller (no deployment
// workers: what it queues stays queued), a fake port host and a FakeClock for expiry.
#include "control/sandboxes.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

#include "agent/hub.h"
#include "agent/in_process.h"
#include "control/controller.h"
#include "control/environments.h"
#include "store/sqlite_store.h"
#include "support/fake_agent.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {
using namespace std::chrono_literals;
using testing::FakeClock;
using testing::ScriptedAgent;

const Actor kUser = SystemActor("tester");
constexpr long long kDay = 24LL * 3600 * 1000;

// Opens nothing; remembers what is open and refuses the ports in `busy`.
class FakePorts final : public PortHost {
 public:
  Result<int> Open(const std::string&, int port, const std::string& set) override {
    std::lock_guard lock(mu);
    if (busy.count(port)) return Unavailable("address in use");
    if (open.count(port)) return Unavailable("already open here");
    open[port] = set;
    return port;
  }
  void Close(int port) override {
    std::lock_guard lock(mu);
    open.erase(port);
  }
  std::uint64_t Requests(int port) const override {
    std::lock_guard lock(mu);
    auto it = requests.find(port);
    return it == requests.end() ? 0 : it->second;
  }
  mutable std::mutex mu;
  std::set<int> busy;
  std::map<int, std::string> open;
  std::map<int, std::uint64_t> requests;
};

class SandboxesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-sandboxes");
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
    events_ = std::make_unique<EventLog>(*store_);
    ctx_ = std::make_unique<Context>(Context{*store_, hub_->AgentFor(kLocalNode), router_, clock_,
                                             *events_, serving_, Paths{dir_.string()}, hub_.get()});
    controller_ = std::make_unique<Controller>(*ctx_, ControllerOptions{0});
    envs_ = std::make_unique<Environments>(*store_);
    SandboxOptions so;
    so.gateway_lo = 28081;
    so.gateway_hi = 28199;
    so.service_lo = 29001;
    so.service_hi = 29199;
    sandboxes_ = std::make_unique<Sandboxes>(*ctx_, *controller_, *envs_, ports_, so);
    ctx_->injection = sandboxes_.get();
    AddApp("entry", "http://entry.localhost:8080");
    AddApp("account", "http://account.localhost:8080");
    AddApp("payment", "");
  }

  void TearDown() override {
    sandboxes_.reset();
    controller_.reset();
    node_.reset();
    hub_->Stop();
    ctx_.reset();
    events_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void AddApp(const std::string& name, const std::string& upstream) {
    App app;
    app.name = name;
    app.repo = "https://git.example.com/" + name + ".git";
    app.secret = "secret-123";
    app.upstream = upstream;
    ASSERT_TRUE(store_->CreateApp(app).ok());
  }

  static SandboxSpec Spec(const std::string& name,
                          std::vector<std::pair<std::string, std::string>> services) {
    SandboxSpec spec;
    spec.name = name;
    for (auto& [svc, branch] : services) spec.services.push_back({svc, branch});
    return spec;
  }

  // The routes the router holds for the sandbox, by listener set.
  std::map<std::string, const gateway::Route*> RoutesOf(const std::string& sandbox) {
    snapshot_ = router_.Snapshot();
    std::map<std::string, const gateway::Route*> out;
    for (const auto& r : snapshot_->routes())
      if (r.owner == "sandbox/" + sandbox) out[r.listener + "|" + r.name] = &r;
    return out;
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<NodeHub> hub_;
  ScriptedAgent worker_{kLocalNode};
  std::unique_ptr<InProcessNode> node_;
  std::unique_ptr<EventLog> events_;
  gateway::Router router_;
  ServingState serving_;
  std::unique_ptr<Context> ctx_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<Environments> envs_;
  FakePorts ports_;
  std::unique_ptr<Sandboxes> sandboxes_;
  std::shared_ptr<const gateway::RouteTable> snapshot_;
};

TEST_F(SandboxesTest, UpstreamOnlySandboxGetsPortsAndRoutesAndIsRunning) {
  auto s = sandboxes_->Create(Spec("qa", {{"entry", ""}, {"account", ""}}), kUser);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->status, "running");
  EXPECT_EQ(s->entry, "entry");
  EXPECT_GE(s->port, 28081);
  ASSERT_EQ(s->services.size(), 2u);
  EXPECT_GE(s->services[0].port, 29001);
  EXPECT_NE(s->services[0].port, s->services[1].port);
  EXPECT_EQ(ports_.open.size(), 3u);
  EXPECT_EQ(ports_.open[s->port], "sandbox/qa");
  auto routes = RoutesOf("qa");
  ASSERT_EQ(routes.size(), 3u);
  const gateway::Route* own = routes["sandbox/qa|sandbox/qa"];
  ASSERT_NE(own, nullptr);
  ASSERT_NE(own->target, nullptr);
  EXPECT_EQ(own->target->host(), "entry.localhost");
  auto reserved = store_->ListPorts();
  ASSERT_TRUE(reserved.ok());
  EXPECT_EQ(reserved->size(), 3u);
}

TEST_F(SandboxesTest, BranchServiceBecomesAnAppWithAQueuedDeploymentAndHeaderRoutes) {
  auto s = sandboxes_->Create(Spec("feat", {{"entry", ""}, {"account", "feature-login"}}), kUser);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->status, "deploying");
  auto app = store_->GetApp("sandbox-feat-account");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->sandbox, "feat");
  EXPECT_EQ(app->branch, "feature-login");
  EXPECT_EQ(app->repo, "https://git.example.com/account.git");
  DeploymentFilter f;
  f.app_id = app->id;
  auto ds = store_->ListDeployments(f);
  ASSERT_TRUE(ds.ok());
  ASSERT_EQ(ds->size(), 1u);
  EXPECT_EQ(ds->front().ref, "feature-login");
  auto routes = RoutesOf("feat");
  // entry port + 2 service ports + header and baggage routes for account on the shared port
  EXPECT_EQ(routes.size(), 5u);
  const gateway::Route* header = routes["|sandbox-feat-account@header"];
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(header->follow, "sandbox-feat-account");
  ASSERT_EQ(header->when.size(), 1u);
  EXPECT_EQ(header->when[0].value, "feat");
  EXPECT_EQ(header->hosts, std::vector<std::string>{"account.localhost"});
}

TEST_F(SandboxesTest, InjectionPointsEveryServiceAtItsPortAndSharesTheLimits) {
  SandboxSpec spec = Spec("inj", {{"entry", "main"}, {"account", "feature"}});
  spec.memory_bytes = 512LL << 20;
  auto s = sandboxes_->Create(spec, kUser);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto app = store_->GetApp("sandbox-inj-account");
  ASSERT_TRUE(app.ok());
  auto inj = sandboxes_->For(*app);
  ASSERT_TRUE(inj.ok()) << inj.status().ToString();
  EXPECT_EQ(inj->env["ENTRY_URL"], "http://127.0.0.1:" + std::to_string(s->services[0].port));
  EXPECT_EQ(inj->env["ACCOUNT_URL"], "http://127.0.0.1:" + std::to_string(s->services[1].port));
  EXPECT_EQ(inj->env["SLIPWAY_SANDBOX"], "inj");
  EXPECT_EQ(inj->network, "sandbox-inj");
  EXPECT_EQ(inj->aliases, std::vector<std::string>{"sandbox-inj-account"});
  EXPECT_EQ(inj->memory_bytes, 256LL << 20);  // shared by its two branch services
}

TEST_F(SandboxesTest, ABusyPortIsSkippedAndHandedBack) {
  ports_.busy = {28081, 28082};
  auto s = sandboxes_->Create(Spec("busy", {{"entry", ""}}), kUser);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->port, 28083);
  auto reserved = store_->ListPorts();
  ASSERT_TRUE(reserved.ok());
  for (const auto& p : *reserved) EXPECT_FALSE(p.port == 28081 || p.port == 28082);
}

TEST_F(SandboxesTest, TwentyConcurrentCreatesGetTwentyDistinctPorts) {
  std::vector<std::thread> threads;
  std::vector<Result<Sandbox>> results(20, Internal("not run"));
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&, i] {
      results[i] = sandboxes_->Create(Spec("c" + std::to_string(i), {{"entry", ""}}), kUser);
    });
  for (auto& t : threads) t.join();
  std::set<int> seen;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    seen.insert(r->port);
    seen.insert(r->services[0].port);
  }
  EXPECT_EQ(seen.size(), 40u);
}

TEST_F(SandboxesTest, DeleteLeavesNoAppPortRouteOrRecord) {
  auto s = sandboxes_->Create(Spec("gone", {{"entry", ""}, {"account", "feature"}}), kUser);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(sandboxes_->Delete("gone", kUser).ok());
  EXPECT_EQ(store_->GetApp("sandbox-gone-account").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->GetSandbox("gone").status().code(), Code::kNotFound);
  EXPECT_TRUE(ports_.open.empty());
  EXPECT_TRUE(store_->ListPorts()->empty());
  EXPECT_TRUE(RoutesOf("gone").empty());
  EXPECT_EQ(sandboxes_->Delete("gone", kUser).code(), Code::kNotFound);
}

TEST_F(SandboxesTest, RouteFlipsTheServicePortBetweenSandboxAndUpstream) {
  auto s = sandboxes_->Create(Spec("flip", {{"entry", ""}, {"account", "feature"}}), kUser);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto svc_route = [&] { return RoutesOf("flip")["sandbox/flip/account|sandbox/flip/account"]; };
  ASSERT_NE(svc_route(), nullptr);
  EXPECT_EQ(svc_route()->follow, "sandbox-flip-account");
  auto flipped = sandboxes_->Route("flip", "account", "upstream", kUser);
  ASSERT_TRUE(flipped.ok()) << flipped.status().ToString();
  ASSERT_NE(svc_route(), nullptr);
  EXPECT_EQ(svc_route()->follow, "");
  ASSERT_NE(svc_route()->target, nullptr);
  EXPECT_EQ(svc_route()->target->host(), "account.localhost");
  EXPECT_EQ(RoutesOf("flip").count("|sandbox-flip-account@header"), 0u);
  EXPECT_EQ(sandboxes_->Route("flip", "entry", "sandbox", kUser).status().code(), Code::kInvalid);
  EXPECT_EQ(sandboxes_->Route("flip", "nope", "upstream", kUser).status().code(), Code::kNotFound);
  EXPECT_EQ(sandboxes_->Route("flip", "account", "elsewhere", kUser).status().code(),
            Code::kInvalid);
}

TEST_F(SandboxesTest, CarelessInputIsRefusedAndNothingIsLeft) {
  EXPECT_EQ(sandboxes_->Create(Spec("../x", {{"entry", ""}}), kUser).status().code(),
            Code::kInvalid);
  EXPECT_EQ(sandboxes_->Create(Spec(std::string(200, 'a'), {{"entry", ""}}), kUser).status().code(),
            Code::kInvalid);
  EXPECT_EQ(sandboxes_->Create(Spec("x", {}), kUser).status().code(), Code::kInvalid);
  EXPECT_EQ(sandboxes_->Create(Spec("x", {{"ghost", "main"}}), kUser).status().code(),
            Code::kNotFound);
  // payment has no upstream: it can only come from a branch
  EXPECT_EQ(sandboxes_->Create(Spec("x", {{"payment", ""}}), kUser).status().code(),
            Code::kInvalid);
  EXPECT_EQ(sandboxes_->Create(Spec("x", {{"entry", "bad..ref"}}), kUser).status().code(),
            Code::kInvalid);
  EXPECT_EQ(sandboxes_->Create(Spec("x", {{"entry", ""}, {"entry", ""}}), kUser).status().code(),
            Code::kInvalid);
  SandboxSpec spec = Spec("x", {{"entry", ""}});
  spec.entry = "account";
  EXPECT_EQ(sandboxes_->Create(spec, kUser).status().code(), Code::kInvalid);
  spec = Spec("x", {{"entry", ""}});
  spec.environment = "missing";
  EXPECT_EQ(sandboxes_->Create(spec, kUser).status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->ListSandboxes()->empty());
  EXPECT_TRUE(store_->ListPorts()->empty());
  ASSERT_TRUE(sandboxes_->Create(Spec("dup", {{"entry", ""}}), kUser).ok());
  EXPECT_EQ(sandboxes_->Create(Spec("dup", {{"entry", ""}}), kUser).status().code(),
            Code::kConflict);
  EXPECT_EQ(store_->ListPorts()->size(), 2u);  // the first one's only
}

TEST_F(SandboxesTest, IdleSandboxExpiresThenIsDeletedAfterRetention) {
  auto s = sandboxes_->Create(Spec("idle", {{"entry", ""}}), kUser);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  clock_.Advance(std::chrono::milliseconds(13 * kDay));
  sandboxes_->JanitorOnce();
  EXPECT_EQ(store_->GetSandbox("idle")->status, "running");
  clock_.Advance(std::chrono::milliseconds(1 * kDay));
  sandboxes_->JanitorOnce();
  auto expired = store_->GetSandbox("idle");
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(expired->status, "expired");
  EXPECT_EQ(ports_.open.size(), 2u);  // an expired sandbox keeps its ports until deleted
  clock_.Advance(std::chrono::milliseconds(7 * kDay - 1));
  sandboxes_->JanitorOnce();
  EXPECT_TRUE(store_->GetSandbox("idle").ok());
  clock_.Advance(std::chrono::milliseconds(1));
  sandboxes_->JanitorOnce();
  EXPECT_EQ(store_->GetSandbox("idle").status().code(), Code::kNotFound);
  EXPECT_TRUE(ports_.open.empty());
  EXPECT_TRUE(store_->ListPorts()->empty());
}

TEST_F(SandboxesTest, ResumeBringsAnExpiredSandboxBack) {
  auto s = sandboxes_->Create(Spec("back", {{"entry", ""}}), kUser);
  ASSERT_TRUE(s.ok());
  clock_.Advance(std::chrono::milliseconds(15 * kDay));
  sandboxes_->JanitorOnce();
  ASSERT_EQ(store_->GetSandbox("back")->status, "expired");
  auto resumed = sandboxes_->Resume("back", kUser);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  clock_.Advance(std::chrono::milliseconds(10 * kDay));
  sandboxes_->JanitorOnce();
  EXPECT_NE(store_->GetSandbox("back")->status, "expired");
}

TEST_F(SandboxesTest, TemplatesCreateSandboxesAndCloneKeepsRoutes) {
  nlohmann::json body = {
      {"services", {{{"name", "entry"}}, {{"name", "account"}, {"branch", "f"}}}},
      {"entry", "entry"}};
  ASSERT_TRUE(sandboxes_->SaveTemplate("tpl", body, true, kUser).ok());
  EXPECT_EQ(sandboxes_->SaveTemplate("tpl", body, true, kUser).status().code(), Code::kConflict);
  SandboxSpec spec;
  spec.name = "fromtpl";
  spec.template_name = "tpl";
  auto s = sandboxes_->Create(spec, kUser);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->services.size(), 2u);
  EXPECT_EQ(s->services[1].branch, "f");
  ASSERT_TRUE(sandboxes_->Route("fromtpl", "account", "upstream", kUser).ok());
  auto clone = sandboxes_->Clone("fromtpl", "copy", kUser);
  ASSERT_TRUE(clone.ok()) << clone.status().ToString();
  EXPECT_NE(clone->port, s->port);
  EXPECT_EQ(clone->services[1].route, "upstream");
  EXPECT_EQ(clone->services[1].branch, "f");
  // no release yet: a snapshot cannot pin a commit
  EXPECT_EQ(sandboxes_->Snapshot("copy", kUser).status().code(), Code::kConflict);
}

TEST_F(SandboxesTest, ATemplateIsCheckedAsTheSandboxesMadeFromIt) {
  nlohmann::json body = {{"services", {{{"name", "entry"}}}}, {"environment", "missing"}};
  EXPECT_EQ(sandboxes_->SaveTemplate("t1", body, true, kUser).status().code(), Code::kNotFound);
  body = {{"services", {{{"name", "entry"}, {"memory_bytes", 2LL << 30}}}},
          {"memory_bytes", 1LL << 30}};
  EXPECT_EQ(sandboxes_->SaveTemplate("t2", body, true, kUser).status().code(), Code::kInvalid);
  body = {{"services", {{{"name", "entry"}, {"cpus", "two"}}}}};
  EXPECT_EQ(sandboxes_->SaveTemplate("t3", body, true, kUser).status().code(), Code::kInvalid);
  body = {{"services", {{{"name", "entry"}}}}, {"entry", "account"}};
  EXPECT_EQ(sandboxes_->SaveTemplate("t4", body, true, kUser).status().code(), Code::kInvalid);
  EXPECT_TRUE(store_->ListTemplates()->empty());
}

// `qa` + `login-account` and `qa-login` + `account` name the same app: the second create is
// refused and takes nothing from the first.
TEST_F(SandboxesTest, ACollidingCreateLeavesTheOtherSandboxsApp) {
  AddApp("login-account", "http://login-account.localhost:8080");
  auto first = sandboxes_->Create(Spec("qa-login", {{"account", "feature"}}), kUser);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = sandboxes_->Create(Spec("qa", {{"login-account", "main"}}), kUser);
  EXPECT_EQ(second.status().code(), Code::kConflict);
  auto app = store_->GetApp("sandbox-qa-login-account");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->sandbox, "qa-login");
  EXPECT_FALSE(store_->GetSandbox("qa").ok());
  EXPECT_EQ(store_->ListPorts()->size(), 2u);  // qa-login's only
}

}  // namespace
}  // namespace slipway
