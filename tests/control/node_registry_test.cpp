// NodeRegistry over a real SQLite store and a NodeHub with in-process nodes: records follow
// connections, rows merge record and live view, drain/remove keep their contracts.
#include "control/node_registry.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "agent/in_process.h"
#include "store/sqlite_store.h"
#include "support/fake_agent.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

using namespace std::chrono_literals;

class NodeRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-nodes");
    auto s = OpenSqliteStore((dir_ / "db").string(), clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    NodeHubOptions o;
    o.root = "/data";
    hub_ = std::make_unique<NodeHub>(SystemClock::Instance(), o);
    hub_->Start();
    registry_ = std::make_unique<NodeRegistry>(*store_, *hub_, clock_);
    registry_->Attach();
    local_ = Connect("local", {});
  }
  void TearDown() override {
    local_.reset();
    n1_.reset();
    hub_->Stop();
    registry_.reset();
    hub_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<InProcessNode> Connect(const std::string& name, std::vector<std::string> labels) {
    std::vector<std::string> labels_copy = labels;
    auto n = InProcessNode::Start(*hub_, {name, std::move(labels), "/data", "", &worker_});
    EXPECT_TRUE(n->WaitWelcomed(5s));
    // The hub tells the registry after its welcome: wait for the record of this hello.
    std::string want = nlohmann::json(labels_copy).dump();
    for (int i = 0; i < 500; ++i) {
      auto r = store_->GetNode(name);
      if (r.ok() && r->labels_json == want && r->last_seen_ms == clock_.WallMillis()) break;
      std::this_thread::sleep_for(10ms);
    }
    return n;
  }
  NodeRow Row(const std::string& name) {
    auto row = registry_->Show(name);
    EXPECT_TRUE(row.ok()) << row.status().ToString();
    return row.ok() ? *row : NodeRow{};
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  testing::FakeAgent worker_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<NodeHub> hub_;
  std::unique_ptr<NodeRegistry> registry_;
  std::unique_ptr<InProcessNode> local_;
  std::unique_ptr<InProcessNode> n1_;
};

TEST_F(NodeRegistryTest, AConnectedNodeIsRecordedAndListedUp) {
  n1_ = Connect("n1", {"beta", "region=eu"});
  auto rows = registry_->List();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].name, "local");
  const NodeRow& n1 = (*rows)[1];
  EXPECT_EQ(n1.name, "n1");
  EXPECT_STREQ(n1.state(), "up");
  EXPECT_EQ(n1.labels, (std::vector<std::string>{"beta", "region=eu"}));
  EXPECT_EQ(n1.agent_version, "in-process");
  EXPECT_EQ(n1.capabilities["docker"], true);
  EXPECT_EQ(n1.first_seen_ms, clock_.WallMillis());
  auto record = store_->GetNode("n1");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->labels_json, R"(["beta","region=eu"])");
}

TEST_F(NodeRegistryTest, ADisconnectedNodeStaysRecordedDownWithItsLastSighting) {
  n1_ = Connect("n1", {});
  clock_.Advance(5s);
  n1_.reset();
  NodeRow row = Row("n1");
  EXPECT_STREQ(row.state(), "down");
  EXPECT_EQ(row.last_seen_ms, clock_.WallMillis());
  EXPECT_LT(row.first_seen_ms, row.last_seen_ms);
}

TEST_F(NodeRegistryTest, DrainIsKeptAcrossReconnectsAndSoIsTheEnrollmentToken) {
  n1_ = Connect("n1", {});
  auto record = store_->GetNode("n1");
  ASSERT_TRUE(record.ok());
  record->token_id = 42;
  ASSERT_TRUE(store_->UpsertNode(*record).ok());
  auto drained = registry_->Drain("n1", true);
  ASSERT_TRUE(drained.ok());
  EXPECT_TRUE(drained->drained);
  EXPECT_TRUE(registry_->IsDrained("n1"));
  n1_.reset();
  n1_ = Connect("n1", {"again"});
  NodeRow row = Row("n1");
  EXPECT_TRUE(row.drained);
  EXPECT_EQ(row.token_id, 42);
  EXPECT_EQ(row.labels, std::vector<std::string>{"again"});
  ASSERT_TRUE(registry_->Drain("n1", false).ok());
  EXPECT_FALSE(registry_->IsDrained("n1"));
}

TEST_F(NodeRegistryTest, UnknownNodesAreNotFoundAndLocalIsNeverRemoved) {
  EXPECT_EQ(registry_->Show("nosuch").status().code(), Code::kNotFound);
  EXPECT_EQ(registry_->Drain("nosuch", true).status().code(), Code::kNotFound);
  EXPECT_EQ(registry_->Remove("nosuch").code(), Code::kNotFound);
  EXPECT_FALSE(registry_->IsDrained("nosuch"));
  EXPECT_EQ(registry_->Remove("local").code(), Code::kInvalid);
  EXPECT_STREQ(Row("local").state(), "up");
}

TEST_F(NodeRegistryTest, RemoveForgetsTheNode) {
  n1_ = Connect("n1", {});
  ASSERT_TRUE(registry_->Remove("n1").ok());
  EXPECT_EQ(store_->GetNode("n1").status().code(), Code::kNotFound);
  n1_.reset();  // the link's end reaches the hub: a removed node is no longer shown
  EXPECT_EQ(registry_->Show("n1").status().code(), Code::kNotFound);
  auto rows = registry_->List();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].name, "local");
  EXPECT_EQ(registry_->Remove("n1").code(), Code::kNotFound);
}

}  // namespace
}  // namespace slipway
