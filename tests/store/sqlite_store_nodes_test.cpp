// Node records and the control-plane term in the SQLite store (migration 6).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

#include "store/migrations.h"
#include "store/sqlite_store.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

class SqliteNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-nodes");
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string DbPath() const { return (dir_ / "db").string(); }
  void Open() {
    store_.reset();
    auto s = OpenSqliteStore(DbPath(), clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  static NodeRecord MakeNode(const std::string& name) {
    NodeRecord n;
    n.name = name;
    n.labels_json = R"(["gpu","eu"])";
    n.address = "10.0.0.7";
    n.agent_version = "0.9.0";
    n.capabilities_json = R"({"docker":true})";
    n.token_id = 3;
    return n;
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteNodesTest, UpsertInsertsThenGetAndListByName) {
  EXPECT_TRUE(store_->ListNodes()->empty());
  auto b = store_->UpsertNode(MakeNode("node-b"));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->name, "node-b");
  EXPECT_EQ(b->first_seen_ms, clock_.WallMillis()) << "zero times are taken as now";
  EXPECT_EQ(b->last_seen_ms, clock_.WallMillis());
  NodeRecord a = MakeNode("node-a");
  a.first_seen_ms = 5;
  a.last_seen_ms = 6;
  ASSERT_TRUE(store_->UpsertNode(a).ok());

  auto got = store_->GetNode("node-b");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->labels_json, R"(["gpu","eu"])");
  EXPECT_EQ(got->address, "10.0.0.7");
  EXPECT_EQ(got->agent_version, "0.9.0");
  EXPECT_EQ(got->capabilities_json, R"({"docker":true})");
  EXPECT_EQ(got->token_id, 3);
  EXPECT_FALSE(got->drained);

  auto list = store_->ListNodes();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "node-a");
  EXPECT_EQ((*list)[0].first_seen_ms, 5);
  EXPECT_EQ((*list)[0].last_seen_ms, 6);
  EXPECT_EQ((*list)[1].name, "node-b");
}

TEST_F(SqliteNodesTest, UpdateReplacesAnnouncementButKeepsDrainedAndFirstSeen) {
  NodeRecord n = MakeNode("n1");
  n.first_seen_ms = 100;
  n.last_seen_ms = 100;
  ASSERT_TRUE(store_->UpsertNode(n).ok());
  ASSERT_TRUE(store_->SetNodeDrained("n1", true).ok());

  NodeRecord again = MakeNode("n1");
  again.labels_json = "[]";
  again.address = "192.168.1.2";
  again.agent_version = "1.0.0";
  again.capabilities_json = "{}";
  again.token_id = 9;
  again.drained = false;       // ignored on update
  again.first_seen_ms = 5000;  // ignored on update
  again.last_seen_ms = 5000;
  auto up = store_->UpsertNode(again);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  for (const NodeRecord& r : {*up, *store_->GetNode("n1")}) {
    EXPECT_EQ(r.labels_json, "[]");
    EXPECT_EQ(r.address, "192.168.1.2");
    EXPECT_EQ(r.agent_version, "1.0.0");
    EXPECT_EQ(r.capabilities_json, "{}");
    EXPECT_EQ(r.token_id, 9);
    EXPECT_TRUE(r.drained) << "drained survives a re-announce";
    EXPECT_EQ(r.first_seen_ms, 100);
    EXPECT_EQ(r.last_seen_ms, 5000);
  }
  EXPECT_EQ(store_->ListNodes()->size(), 1u);
}

TEST_F(SqliteNodesTest, DrainTouchDeleteAndNotFound) {
  NodeRecord n = MakeNode("n1");
  n.last_seen_ms = 10;
  ASSERT_TRUE(store_->UpsertNode(n).ok());

  ASSERT_TRUE(store_->SetNodeDrained("n1", true).ok());
  EXPECT_TRUE(store_->GetNode("n1")->drained);
  ASSERT_TRUE(store_->SetNodeDrained("n1", true).ok()) << "draining twice is fine";
  ASSERT_TRUE(store_->SetNodeDrained("n1", false).ok());
  EXPECT_FALSE(store_->GetNode("n1")->drained);

  ASSERT_TRUE(store_->TouchNode("n1", 777).ok());
  EXPECT_EQ(store_->GetNode("n1")->last_seen_ms, 777);
  ASSERT_TRUE(store_->TouchNode("n1", 777).ok()) << "same time again still finds the node";

  EXPECT_EQ(store_->GetNode("ghost").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->SetNodeDrained("ghost", true).code(), Code::kNotFound);
  EXPECT_EQ(store_->TouchNode("ghost", 1).code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteNode("ghost").code(), Code::kNotFound);

  ASSERT_TRUE(store_->DeleteNode("n1").ok());
  EXPECT_EQ(store_->GetNode("n1").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteNode("n1").code(), Code::kNotFound);
  EXPECT_TRUE(store_->ListNodes()->empty());
}

TEST_F(SqliteNodesTest, NodesSurviveReopen) {
  ASSERT_TRUE(store_->UpsertNode(MakeNode("n1")).ok());
  ASSERT_TRUE(store_->SetNodeDrained("n1", true).ok());
  Open();
  auto back = store_->GetNode("n1");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->drained);
  EXPECT_EQ(back->address, "10.0.0.7");
}

TEST_F(SqliteNodesTest, TermIncrementsAndSurvivesReopen) {
  EXPECT_EQ(*store_->CurrentTerm(), 0u);
  EXPECT_EQ(*store_->NextTerm(), 1u);
  EXPECT_EQ(*store_->CurrentTerm(), 1u);
  EXPECT_EQ(*store_->NextTerm(), 2u);
  Open();
  EXPECT_EQ(*store_->CurrentTerm(), 2u);
  EXPECT_EQ(*store_->NextTerm(), 3u);
  EXPECT_EQ(*store_->CurrentTerm(), 3u);
}

// Appends 50 terms from `store` to `out`, failing the test on any error.
void Take50Terms(Store& store, std::vector<std::uint64_t>& out) {
  for (int i = 0; i < 50; ++i) {
    auto t = store.NextTerm();
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    out.push_back(*t);
  }
}

void ExpectOneToHundredOnce(const std::vector<std::uint64_t>& a,
                            const std::vector<std::uint64_t>& b) {
  std::set<std::uint64_t> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  ASSERT_EQ(a.size() + b.size(), 100u);
  EXPECT_EQ(all.size(), 100u) << "every caller got a distinct term";
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), 100u);
}

TEST_F(SqliteNodesTest, ConcurrentNextTermCallsGetDistinctValues) {
  std::vector<std::uint64_t> a, b;
  std::thread ta([&] { Take50Terms(*store_, a); });
  std::thread tb([&] { Take50Terms(*store_, b); });
  ta.join();
  tb.join();
  ExpectOneToHundredOnce(a, b);
  EXPECT_EQ(*store_->CurrentTerm(), 100u);
}

// Two stores on one file (as two server processes would be) share no mutex: SQLite's own
// write lock must keep the terms distinct.
TEST_F(SqliteNodesTest, NextTermIsAtomicAcrossConnections) {
  auto other = OpenSqliteStore(DbPath(), clock_);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::vector<std::uint64_t> a, b;
  std::thread ta([&] { Take50Terms(*store_, a); });
  std::thread tb([&] { Take50Terms(**other, b); });
  ta.join();
  tb.join();
  ExpectOneToHundredOnce(a, b);
  EXPECT_EQ(*(*other)->CurrentTerm(), 100u);
}

// A database written at version 5 gains the nodes and term tables (and every later
// migration) and keeps its apps.
TEST_F(SqliteNodesTest, MigrationSixOpensAVersionFiveDatabase) {
  store_.reset();
  std::filesystem::remove(dir_ / "db");
  std::filesystem::remove(dir_ / "db-wal");
  std::filesystem::remove(dir_ / "db-shm");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  std::string sql =
      "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL);";
  for (const auto& m : SqliteMigrations()) {
    if (m.number > 5) continue;
    sql += m.sql;
    sql += "INSERT INTO schema_migrations VALUES (" + std::to_string(m.number) + ", 0);";
  }
  sql +=
      "INSERT INTO apps (name, repo, branch, secret, created_ms) "
      "VALUES ('old', '/srv/old', 'main', 'secret-123', 1);";
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);

  Open();
  EXPECT_TRUE(store_->GetApp("old").ok());
  EXPECT_TRUE(store_->ListNodes()->empty());
  EXPECT_EQ(*store_->CurrentTerm(), 0u);
  EXPECT_EQ(*store_->NextTerm(), 1u);
  ASSERT_TRUE(store_->UpsertNode(MakeNode("n1")).ok());
  EXPECT_TRUE(store_->GetNode("n1").ok());

  sqlite3* check = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &check), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(check, "SELECT MAX(number) FROM schema_migrations", -1, &q, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), static_cast<int>(SqliteMigrations().back().number));
  sqlite3_finalize(q);
  sqlite3_close(check);
}

}  // namespace
}  // namespace slipway
