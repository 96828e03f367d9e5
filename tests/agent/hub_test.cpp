// The agent protocol end to end in one process: NodeHub (control plane) ↔ encoded frames ↔
// NodeClient + OpExecutor (node) ↔ a scripted worker. Links are pumped by hand where the
// test needs to cut them, or by the in-process pipe where it does not.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "agent/executor.h"
#include "agent/hub.h"
#include "agent/in_process.h"
#include "agent/node_client.h"
#include "agent/wire.h"
#include "core/clock.h"
#include "support/fake_agent.h"

namespace slipway {
namespace {
using namespace std::chrono_literals;
using nlohmann::json;

// A worker whose RunStep prints `lines` lines, then blocks until cancelled when `block`.
class ScriptedAgent final : public testing::FakeAgent {
 public:
  std::atomic<int> steps{0};
  int lines = 3;
  std::atomic<bool> block{false};
  std::atomic<bool> started{false};
  std::atomic<int> late{0};  // lines to print while blocked

  Result<os::RunResult> RunStep(const StepRequest& step, const os::LineSink& sink) override {
    ++steps;
    for (int i = 1; i <= lines; ++i) sink(os::OutputStream::kStdout, "line " + std::to_string(i));
    started = true;
    os::RunResult r;
    r.exit_code = 0;
    int printed = 0;
    while (block && !(step.cancel && step.cancel->load())) {
      while (printed < late) sink(os::OutputStream::kStdout, "late " + std::to_string(++printed));
      std::this_thread::sleep_for(5ms);
    }
    if (step.cancel && step.cancel->load()) r.cancelled = true;
    return r;
  }
  Result<std::string> Resolve(const std::string& cache, const std::string& ref) override {
    if (cache != "/data/cache/hello.git") return Invalid("unexpected path " + cache);
    return "sha-of-" + ref;
  }
  Result<int> AllocatePort() override { return 4242; }
};

StepRequest Step(const std::atomic<bool>* cancel = nullptr) {
  StepRequest s;
  s.command = "make";
  s.cwd = "/data/builds/hello/1";
  s.timeout = 10s;
  s.cancel = cancel;
  return s;
}

NodeHubOptions Options(std::chrono::milliseconds lease = 60s) {
  NodeHubOptions o;
  o.root = "/data";
  o.term = 7;
  o.heartbeat = 50ms;
  o.silence = 2s;
  o.op_lease = lease;
  return o;
}

TEST(Wire, PathsStayUnderTheRoot) {
  EXPECT_EQ(*wire::ToWire("/data", "/data/cache/a.git"), "cache/a.git");
  EXPECT_FALSE(wire::ToWire("/data", "/database/x").ok());
  EXPECT_FALSE(wire::ToWire("/data", "/etc/passwd").ok());
  EXPECT_EQ(*wire::FromWire("/node", "cache/a.git"), "/node/cache/a.git");
  EXPECT_FALSE(wire::FromWire("/node", "/etc/passwd").ok());
  EXPECT_FALSE(wire::FromWire("/node", "cache/../../etc").ok());
  EXPECT_FALSE(wire::FromWire("/node", "..").ok());
  EXPECT_TRUE(wire::FromWire("/node", "a..b/c").ok());
}

class InProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = std::make_unique<NodeHub>(SystemClock::Instance(), Options());
    hub_->Start();
    InProcessNodeOptions o{"n1", {"beta", "region=eu"}, "/data", "", &worker_};
    node_ = InProcessNode::Start(*hub_, o);
    ASSERT_TRUE(node_->WaitWelcomed(5s));
  }
  void TearDown() override {
    node_.reset();
    hub_->Stop();
  }
  ScriptedAgent worker_;
  std::unique_ptr<NodeHub> hub_;
  std::unique_ptr<InProcessNode> node_;
};

TEST_F(InProcess, CallsTravelAsOpsWithPathsMapped) {
  Agent& a = hub_->AgentFor("n1");
  auto sha = a.Resolve("/data/cache/hello.git", "main");
  ASSERT_TRUE(sha.ok()) << sha.status().ToString();
  EXPECT_EQ(*sha, "sha-of-main");
  EXPECT_EQ(a.AllocatePort().value(), 4242);
  // A path outside the data directory never leaves the control plane.
  EXPECT_EQ(a.Resolve("/etc/cache", "main").status().code(), Code::kInvalid);
}

TEST_F(InProcess, OutputArrivesInOrderAndErrorsKeepTheirCode) {
  worker_.lines = 200;
  std::vector<std::string> got;
  auto r = hub_->AgentFor("n1").RunStep(
      Step(), [&](os::OutputStream, std::string_view l) { got.emplace_back(l); });
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(got[i], "line " + std::to_string(i + 1));
  // FakeAgent's Fetch fails with kUnavailable: the code crosses the wire.
  auto s = hub_->AgentFor("n1").Fetch("https://u:pw@example.com/r.git", "/data/cache/x.git",
                                      nullptr, nullptr);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_EQ(s.message(), "fake agent");
}

TEST_F(InProcess, CancelStopsARunningOp) {
  worker_.block = true;
  std::atomic<bool> cancel{false};
  auto fut = std::async(std::launch::async,
                        [&] { return hub_->AgentFor("n1").RunStep(Step(&cancel), nullptr); });
  while (!worker_.started) std::this_thread::sleep_for(5ms);
  cancel = true;
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  auto r = fut.get();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
}

TEST_F(InProcess, NodeViewAndPlacement) {
  auto v = hub_->Get("n1");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->connected);
  EXPECT_EQ(hub_->Match({"beta"}), std::vector<std::string>{"n1"});
  EXPECT_EQ(hub_->Match({"beta", "region=eu"}), std::vector<std::string>{"n1"});
  EXPECT_TRUE(hub_->Match({"gamma"}).empty());
  EXPECT_TRUE(hub_->Match({"beta"}, {"n1"}).empty());
}

// ---- a link pumped by hand, so that it can be cut and restored --------------------------

class HandLink final : public NodeLink {
 public:
  bool Send(std::string text) override {
    std::lock_guard lock(mu);
    if (closed) return false;
    to_node.push_back(std::move(text));
    return true;
  }
  void Close(int, std::string) override {
    std::lock_guard lock(mu);
    closed = true;
  }
  std::string remote_address() const override { return "10.0.0.9"; }
  std::mutex mu;
  std::deque<std::string> to_node;
  bool closed = false;
};

struct HandNode {
  explicit HandNode(Agent& worker) : executor(worker, {"/node", "", 4096, 1u << 20, 2s}) {}
  protocol::Hello hello() {
    protocol::Hello h;
    h.node = "n2";
    h.agent_version = "test";
    h.labels = {"beta"};
    return h;
  }
  OpExecutor executor;
  NodeClient client{executor, hello()};
  std::mutex mu;
  std::deque<std::string> to_hub;
  bool up = true;
  OpExecutor::Send send = [this](const std::string& t) {
    std::lock_guard lock(mu);
    if (!up) return false;
    to_hub.push_back(t);
    return true;
  };
};

// Moves frames both ways until `done`; a cut link drops nothing on the node side (its
// executor keeps the frames), only the hub's in-flight ones.
class Pump {
 public:
  Pump(NodeHub& hub, HandNode& node) : hub_(hub), node_(node) { Connect(); }
  ~Pump() { Stop(); }
  void Connect() {
    link_ = std::make_shared<HandLink>();
    session_ = hub_.Accept(link_);
    {
      std::lock_guard lock(node_.mu);
      node_.up = true;
      node_.to_hub.clear();
    }
    session_->OnText(node_.client.Hello());
    running_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
  void Cut() {
    Stop();
    {
      std::lock_guard lock(node_.mu);
      node_.up = false;
    }
    node_.client.Disconnected();
    session_->OnClose();
  }
  void Stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    while (running_) {
      std::deque<std::string> down, up;
      {
        std::lock_guard lock(link_->mu);
        down.swap(link_->to_node);
      }
      for (auto& t : down) (void)node_.client.OnText(t, node_.send);
      {
        std::lock_guard lock(node_.mu);
        up.swap(node_.to_hub);
      }
      for (auto& t : up) session_->OnText(t);
      if (auto beat = node_.client.Heartbeat(std::chrono::steady_clock::now()))
        session_->OnText(*beat);
      std::this_thread::sleep_for(1ms);
    }
  }
  NodeHub& hub_;
  HandNode& node_;
  std::shared_ptr<HandLink> link_;
  std::shared_ptr<NodeHub::Session> session_;
  std::atomic<bool> running_{false};
  std::thread thread_;
};

TEST(HandLink, EventsProducedWhileCutArriveOnceAfterReconnect) {
  ScriptedAgent worker;
  worker.lines = 0;
  worker.block = true;
  NodeHub hub(SystemClock::Instance(), Options());
  hub.Start();
  HandNode node(worker);
  Pump pump(hub, node);
  std::vector<std::string> got;
  std::mutex got_mu;
  std::atomic<bool> cancel{false};
  auto fut = std::async(std::launch::async, [&] {
    return hub.AgentFor("n2").RunStep(Step(&cancel), [&](os::OutputStream, std::string_view l) {
      std::lock_guard lock(got_mu);
      got.emplace_back(l);
    });
  });
  while (!worker.started) std::this_thread::sleep_for(5ms);
  auto received = [&] {
    std::lock_guard lock(got_mu);
    return got.size();
  };
  auto buffered = [&] {
    auto last = node.executor.LastSeq();
    return last.empty() ? std::uint64_t{0} : last.begin()->second;
  };
  worker.late = 3;  // delivered live
  for (int i = 0; i < 1000 && received() < 3; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_EQ(received(), 3u);
  pump.Cut();
  EXPECT_FALSE(hub.Get("n2")->connected);
  // Output produced while the link is down stays in the node's outbox.
  worker.late = 8;
  for (int i = 0; i < 1000 && buffered() < 8; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_EQ(buffered(), 8u);
  pump.Connect();
  EXPECT_TRUE(hub.Get("n2")->connected);
  for (int i = 0; i < 1000 && received() < 8; ++i) std::this_thread::sleep_for(2ms);
  cancel = true;
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(fut.get().ok());
  EXPECT_EQ(worker.steps.load(), 1);  // the re-sent op did not run twice
  std::lock_guard lock(got_mu);
  std::vector<std::string> want;
  for (int i = 1; i <= 8; ++i) want.push_back("late " + std::to_string(i));
  EXPECT_EQ(got, want);  // every line once, in order, across the cut
}

TEST(HandLink, AnOpOnASilentNodeFailsWithNodeLostWithinTheLease) {
  ScriptedAgent worker;
  worker.block = true;
  NodeHub hub(SystemClock::Instance(), Options(400ms));
  hub.Start();
  HandNode node(worker);
  Pump pump(hub, node);
  auto fut =
      std::async(std::launch::async, [&] { return hub.AgentFor("n2").RunStep(Step(), nullptr); });
  while (!worker.started) std::this_thread::sleep_for(5ms);
  pump.Cut();
  auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  auto r = fut.get();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "node n2 lost");
  worker.block = false;
  hub.Stop();
}

// The nodes API tells an op waiting for a slot (queued, never sent) from one the node runs.
TEST(HandLink, NodeViewTellsQueuedFromRunningOps) {
  ScriptedAgent worker;
  worker.block = true;
  auto options = Options();
  options.max_ops_per_node = 1;
  NodeHub hub(SystemClock::Instance(), options);
  hub.Start();
  HandNode node(worker);
  Pump pump(hub, node);
  auto first =
      std::async(std::launch::async, [&] { return hub.AgentFor("n2").RunStep(Step(), nullptr); });
  while (!worker.started) std::this_thread::sleep_for(5ms);
  auto second =
      std::async(std::launch::async, [&] { return hub.AgentFor("n2").RunStep(Step(), nullptr); });
  std::vector<OpView> ops;
  for (int i = 0; i < 1000 && ops.size() < 2; ++i) {
    std::this_thread::sleep_for(2ms);
    ops = hub.Get("n2")->ops;
  }
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].state, "running");
  EXPECT_EQ(ops[0].kind, "run_step");
  EXPECT_EQ(ops[1].state, "queued");
  worker.block = false;
  ASSERT_EQ(first.wait_for(5s), std::future_status::ready);
  ASSERT_EQ(second.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(hub.Get("n2")->ops.empty());
  hub.Stop();
}

TEST(Executor, IdempotentOpsAndStaleTerms) {
  ScriptedAgent worker;
  OpExecutor ex(worker, {"/node", "", 4096, 1u << 20, 2s});
  std::mutex mu;
  std::vector<protocol::Frame> out;
  ex.Connected([&](const std::string& t) {
    std::lock_guard lock(mu);
    out.push_back(*protocol::Decode(t));
    return true;
  });
  ex.OnFrame(protocol::Welcome{"n", 5, 100, 1000});
  protocol::Op op{"op-1",
                  5,
                  "run_step",
                  {{"command", "x"}, {"cwd", "b"}, {"env", json::object()}, {"timeout_ms", 1000}},
                  5000};
  ex.OnFrame(op);
  auto results = [&] {
    std::lock_guard lock(mu);
    int n = 0;
    for (const auto& f : out) n += std::holds_alternative<protocol::OpResult>(f);
    return n;
  };
  for (int i = 0; i < 500 && results() < 1; ++i) std::this_thread::sleep_for(2ms);
  ex.OnFrame(op);  // a re-send: answered with the first result, not run again
  EXPECT_EQ(results(), 2);
  EXPECT_EQ(worker.steps.load(), 1);
  protocol::Op stale = op;
  stale.op_id = "op-2";
  stale.term = 4;
  ex.OnFrame(stale);
  std::lock_guard lock(mu);
  const auto& last = std::get<protocol::OpResult>(out.back());
  EXPECT_EQ(last.op_id, "op-2");
  EXPECT_EQ(last.error, "stale term");
  EXPECT_EQ(worker.steps.load(), 1);
}

TEST(Executor, PathsThatEscapeTheRootAreRefused) {
  ScriptedAgent worker;
  OpExecutor ex(worker, {"/node", "", 4096, 1u << 20, 2s});
  std::mutex mu;
  std::vector<protocol::Frame> out;
  ex.Connected([&](const std::string& t) {
    std::lock_guard lock(mu);
    out.push_back(*protocol::Decode(t));
    return true;
  });
  ex.OnFrame(protocol::Op{"op-1", 1, "remove_path", {{"path", "../../etc"}}, 5000});
  ex.OnFrame(
      protocol::Op{"op-2", 1, "read_file", {{"path", "/etc/shadow"}, {"max_bytes", 10}}, 5000});
  ex.OnFrame(protocol::Op{"op-3", 1, "no_such_kind", json::object(), 5000});
  ex.OnFrame(protocol::Op{"op-4", 1, "probe", {{"port", "not a number"}}, 5000});
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(mu);
      if (out.size() >= 4) break;
    }
    std::this_thread::sleep_for(2ms);
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(out.size(), 4u);
  for (const auto& f : out) {
    const auto& r = std::get<protocol::OpResult>(f);
    EXPECT_FALSE(r.ok) << r.op_id;
  }
}

}  // namespace
}  // namespace slipway

namespace slipway {
namespace {

// A link that records how it was closed.
class ClosingLink final : public NodeLink {
 public:
  bool Send(std::string text) override {
    std::lock_guard lock(mu);
    sent.push_back(std::move(text));
    return closed_code == 0;
  }
  void Close(int code, std::string reason) override {
    std::lock_guard lock(mu);
    if (!closed_code) closed_code = code, closed_reason = std::move(reason);
  }
  std::string remote_address() const override { return "10.0.0.7"; }
  std::mutex mu;
  std::vector<std::string> sent;
  int closed_code = 0;
  std::string closed_reason;
};

std::string HelloText(const std::string& name) {
  protocol::Hello h;
  h.node = name;
  h.agent_version = "test";
  return protocol::Encode(h);
}

TEST(Enrollment, ANodeNameBelongsToItsFirstTokenAndLocalIsReserved) {
  NodeHub hub(SystemClock::Instance(), Options());
  auto first = std::make_shared<ClosingLink>();
  auto s1 = hub.Accept(first, false, {11, 0});
  s1->OnText(HelloText("beta"));
  EXPECT_EQ(first->closed_code, 0);
  EXPECT_EQ(hub.Get("beta")->token_id, 11);
  // Another token cannot take the name over; the real node stays connected.
  auto impostor = std::make_shared<ClosingLink>();
  auto s2 = hub.Accept(impostor, false, {12, 0});
  s2->OnText(HelloText("beta"));
  EXPECT_EQ(impostor->closed_code, 4003);
  EXPECT_EQ(first->closed_code, 0);
  EXPECT_TRUE(hub.Get("beta")->connected);
  for (const char* reserved : {"local", "LOCAL", "Local."}) {
    auto link = std::make_shared<ClosingLink>();
    hub.Accept(link, false, {11, 0})->OnText(HelloText(reserved));
    EXPECT_EQ(link->closed_code, 4003) << reserved;
  }
  // A name restored from the store keeps its owner after a restart.
  hub.SetOwner("gamma", 21);
  auto other = std::make_shared<ClosingLink>();
  hub.Accept(other, false, {22, 0})->OnText(HelloText("gamma"));
  EXPECT_EQ(other->closed_code, 4003);
  s1->OnClose();
}

TEST(Enrollment, ANodeCannotAnswerForAnotherNodesOp) {
  NodeHub hub(SystemClock::Instance(), Options());
  hub.Start();
  auto a = std::make_shared<ClosingLink>();
  auto b = std::make_shared<ClosingLink>();
  auto sa = hub.Accept(a, false, {41, 0});
  auto sb = hub.Accept(b, false, {42, 0});
  sa->OnText(HelloText("na"));
  sb->OnText(HelloText("nb"));
  auto fut = std::async(std::launch::async, [&] { return hub.AgentFor("na").AllocatePort(); });
  std::string op_id;
  for (int i = 0; i < 500 && op_id.empty(); ++i) {
    std::this_thread::sleep_for(2ms);
    std::lock_guard lock(a->mu);
    for (const auto& t : a->sent) {
      auto f = protocol::Decode(t);
      if (f.ok() && std::holds_alternative<protocol::Op>(*f))
        op_id = std::get<protocol::Op>(*f).op_id;
    }
  }
  ASSERT_FALSE(op_id.empty());
  sb->OnText(protocol::Encode(protocol::OpResult{op_id, true, "", {{"port", 1}}}));
  EXPECT_EQ(fut.wait_for(100ms), std::future_status::timeout);  // nb's word is not taken
  sa->OnText(protocol::Encode(protocol::OpResult{op_id, true, "", {{"port", 7}}}));
  ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(fut.get().value(), 7);
  sa->OnClose();
  sb->OnClose();
  hub.Stop();
}

TEST(Enrollment, RevokedOrExpiredTokensCutTheirLinks) {
  NodeHub hub(SystemClock::Instance(), Options());
  hub.Start();
  auto revoked = std::make_shared<ClosingLink>();
  auto s1 = hub.Accept(revoked, false, {31, 0});
  s1->OnText(HelloText("n31"));
  auto expiring = std::make_shared<ClosingLink>();
  auto s2 = hub.Accept(expiring, false, {32, SystemClock::Instance().WallMillis() + 300});
  s2->OnText(HelloText("n32"));
  hub.DisconnectToken(31);
  EXPECT_EQ(revoked->closed_code, 4004);
  for (int i = 0; i < 200 && !expiring->closed_code; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(expiring->closed_code, 4004);
  s1->OnClose();
  s2->OnClose();
  hub.Stop();
}

}  // namespace
}  // namespace slipway
