#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "store/migrations.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-store");
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    auto s = OpenSqliteStore((dir_ / "db").string(), clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  App MakeApp(const std::string& name) {
    App a;
    a.name = name;
    a.repo = "/srv/" + name;
    a.secret = "secret-123";
    auto r = store_->CreateApp(a);
    EXPECT_TRUE(r.ok());
    return *r;
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, AppsAreUniqueAndSurviveReopen) {
  App a = MakeApp("hello");
  App dup;
  dup.name = "hello";
  EXPECT_EQ(store_->CreateApp(dup).status().code(), Code::kConflict);
  Open();  // migrations run again without harm
  auto back = store_->GetApp("hello");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id, a.id);
  EXPECT_EQ(back->secret, "secret-123");
  EXPECT_EQ(store_->GetApp("nope").status().code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, DeploymentsUpdateAndFilter) {
  App a = MakeApp("hello");
  Deployment d;
  d.app_id = a.id;
  d.ref = "main";
  auto created = store_->CreateDeployment(d);
  ASSERT_TRUE(created.ok());
  created->status = DeployStatus::kFailed;
  created->stage = Stage::kVerify;
  created->error = "verify: unhealthy";
  ASSERT_TRUE(store_->UpdateDeployment(*created).ok());
  auto back = store_->GetDeployment(created->id);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->status, DeployStatus::kFailed);
  EXPECT_EQ(back->stage, Stage::kVerify);
  EXPECT_EQ(back->app, "hello");
  auto failed = store_->ListDeployments({a.id, DeployStatus::kFailed, 10});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->size(), 1u);
  auto running = store_->ListDeployments({std::nullopt, DeployStatus::kRunning, 10});
  EXPECT_TRUE(running->empty());
}

TEST_F(SqliteStoreTest, EventSeqsAreDenseUnderConcurrentAppends) {
  App a = MakeApp("hello");
  Deployment d;
  d.app_id = a.id;
  auto dep = store_->CreateDeployment(d);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Event e;
        e.deployment_id = dep->id;
        e.text = std::to_string(t);
        ASSERT_TRUE(store_->AppendEvent(e).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto all = store_->ListEvents(dep->id, 0, 1000);
  ASSERT_EQ(all->size(), 200u);
  for (std::size_t i = 0; i < all->size(); ++i)
    EXPECT_EQ((*all)[i].seq, static_cast<std::int64_t>(i + 1));
  auto after = store_->ListEvents(dep->id, 150, 10);
  ASSERT_EQ(after->size(), 10u);
  EXPECT_EQ(after->front().seq, 151);
}

TEST_F(SqliteStoreTest, ReleasesAreNumberedPerApp) {
  App a = MakeApp("a"), b = MakeApp("b");
  Release r;
  r.app_id = a.id;
  r.commit = "abc";
  EXPECT_EQ(store_->CreateRelease(r)->number, 1);
  EXPECT_EQ(store_->CreateRelease(r)->number, 2);
  r.app_id = b.id;
  auto b1 = store_->CreateRelease(r);
  EXPECT_EQ(b1->number, 1);
  ASSERT_TRUE(store_->MarkReleasePruned(b1->id).ok());
  EXPECT_TRUE(store_->ListReleases(b.id, false)->empty());
  EXPECT_EQ(store_->ListReleases(b.id, true)->size(), 1u);
  auto list = store_->ListReleases(a.id, false);
  EXPECT_EQ(list->front().number, 2) << "newest first";
}

TEST_F(SqliteStoreTest, DeliveriesAreDeduplicated) {
  WebhookDelivery d{"gitea", "uuid-1", "hello", "push", "queued", std::nullopt, 0};
  EXPECT_TRUE(store_->RecordDelivery(d).ok());
  EXPECT_EQ(store_->RecordDelivery(d).code(), Code::kConflict);
  d.provider = "github";
  EXPECT_TRUE(store_->RecordDelivery(d).ok()) << "ids are per provider";
}

TEST_F(SqliteStoreTest, DeliveryAndItsDeploymentAreOneTransaction) {
  App a = MakeApp("hello");
  Deployment d;
  d.app_id = a.id;
  WebhookDelivery delivery{"gitea", "uuid-7", "hello", "push", "queued", std::nullopt, 0};
  auto first = store_->CreateDeploymentForDelivery(d, delivery);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto replay = store_->CreateDeploymentForDelivery(d, delivery);
  EXPECT_EQ(replay.status().code(), Code::kConflict);
  EXPECT_EQ(store_->ListDeployments({a.id, std::nullopt, 10})->size(), 1u)
      << "a replay writes nothing";
  d.app_id = 9999;  // violates the foreign key: the delivery must not stay behind alone
  delivery.delivery_id = "uuid-8";
  EXPECT_FALSE(store_->CreateDeploymentForDelivery(d, delivery).ok());
  EXPECT_TRUE(store_->RecordDelivery(delivery).ok())
      << "the failed attempt left no delivery record";
}

TEST_F(SqliteStoreTest, InstancesAndAudit) {
  App a = MakeApp("hello");
  Instance i{0, a.id, 1, "process", 123, 456, 8000, "cid", "serving", 0};
  auto created = store_->CreateInstance(i);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(store_->ListLiveInstances(a.id)->size(), 1u);
  EXPECT_EQ(store_->ListLiveInstances(a.id)->front().container_id, "cid");
  created->state = "stopped";
  ASSERT_TRUE(store_->UpdateInstance(*created).ok());
  EXPECT_TRUE(store_->ListLiveInstances(0)->empty());
  AuditEvent e{0, 0, "alice", "app.create", "app/hello", "{}", "10.0.0.9", "ok", "hello"};
  ASSERT_TRUE(store_->AppendAudit(e).ok());
  e.actor = "bob";
  e.app = "other";
  e.outcome = "denied";
  ASSERT_TRUE(store_->AppendAudit(e).ok());
  auto audit = store_->ListAudit({});
  ASSERT_EQ(audit->size(), 2u);
  EXPECT_EQ(audit->front().actor, "bob");
  EXPECT_EQ(audit->front().outcome, "denied");
  auto by_app = store_->ListAudit({"hello", "", 0, 10});
  ASSERT_EQ(by_app->size(), 1u);
  EXPECT_EQ(by_app->front().source, "10.0.0.9");
  EXPECT_EQ(store_->ListAudit({"", "bob", 0, 10})->size(), 1u);
  EXPECT_TRUE(store_->ListAudit({"", "", clock_.WallMillis() + 1, 10})->empty());
}

TEST_F(SqliteStoreTest, TokensAreFoundByHashAndRevoked) {
  ApiToken t;
  t.name = "ci";
  t.role = "backend";
  t.hash = "abc123";
  auto created = store_->CreateToken(t);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(store_->CreateToken(t).status().code(), Code::kConflict);
  auto found = store_->FindTokenByHash("abc123");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->name, "ci");
  EXPECT_EQ(found->revoked_ms, 0);
  ASSERT_TRUE(store_->RevokeToken("ci", 42).ok());
  EXPECT_EQ(store_->FindTokenByHash("abc123")->revoked_ms, 42);
  EXPECT_EQ(store_->RevokeToken("ci", 43).code(), Code::kNotFound);
  EXPECT_EQ(store_->FindTokenByHash("nope").status().code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, DeletingAUserEndsItsSessions) {
  ASSERT_TRUE(store_->CreateUser({0, "alice", "qa", "local", "$argon2id$x", 0}).ok());
  ASSERT_TRUE(store_->CreateSession({"h1", "alice", "qa", "127.0.0.1", 1, 100}).ok());
  ASSERT_TRUE(store_->GetSession("h1").ok());
  ASSERT_TRUE(store_->DeleteUser("alice").ok());
  EXPECT_EQ(store_->GetSession("h1").status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->CreateSession({"h2", "bob", "qa", "", 1, 100}).ok());
  ASSERT_TRUE(store_->DeleteExpiredSessions(100).ok());
  EXPECT_EQ(store_->GetSession("h2").status().code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, SealsSecretsOnDiskAndReadsThemBack) {
  // An app written in the clear before sealing existed...
  App a;
  a.name = "legacy";
  a.repo = "https://user:clear-repo-password@git.example/r.git";
  a.secret = "clear-webhook-secret";
  ASSERT_TRUE(store_->CreateApp(a).ok());
  store_.reset();
  auto box = crypto::SecretBox::LoadOrCreate((dir_ / "key").string());
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  // ...is sealed when the store opens with a key, and new apps are sealed as written.
  auto s = OpenSqliteStore((dir_ / "db").string(), clock_, &*box);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  store_ = std::move(*s);
  a.name = "fresh";
  a.secret = "fresh-webhook-secret";
  ASSERT_TRUE(store_->CreateApp(a).ok());
  EXPECT_EQ(store_->GetApp("legacy")->secret, "clear-webhook-secret");
  EXPECT_EQ(store_->GetApp("fresh")->repo, a.repo);
  store_.reset();  // checkpoints the WAL into the file
  std::string bytes;
  for (const char* f : {"db", "db-wal"}) {
    std::ifstream in(dir_ / f, std::ios::binary);
    bytes += std::string(std::istreambuf_iterator<char>(in), {});
  }
  for (const char* secret : {"clear-repo-password", "clear-webhook-secret", "fresh-webhook-secret"})
    EXPECT_EQ(bytes.find(secret), std::string::npos) << secret;
}

TEST_F(SqliteStoreTest, DeletingAnAppCascades) {
  App a = MakeApp("hello");
  Deployment d;
  d.app_id = a.id;
  auto dep = store_->CreateDeployment(d);
  ASSERT_TRUE(store_->DeleteApp(a.id).ok());
  EXPECT_EQ(store_->GetDeployment(dep->id).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteApp(a.id).code(), Code::kNotFound);
}

TEST_F(SqliteStoreTest, GatewayModeIsRecordedAndSurvivesReopen) {
  App a = MakeApp("hello");
  auto fresh = store_->GetApp("hello");
  EXPECT_EQ(fresh->gateway.mode, GatewayMode::kOpen);
  EXPECT_EQ(fresh->gateway.max_ms, 30000);
  EXPECT_EQ(fresh->gateway.message, "");
  ASSERT_TRUE(store_->SetAppGateway(a.id, {GatewayMode::kMaintenance, 30000, "back <soon>"}).ok());
  Open();
  auto back = store_->GetApp("hello");
  EXPECT_EQ(back->gateway.mode, GatewayMode::kMaintenance);
  EXPECT_EQ(back->gateway.message, "back <soon>");
  ASSERT_TRUE(store_->SetAppGateway(a.id, {GatewayMode::kPaused, 1500, ""}).ok());
  auto listed = store_->ListApps();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().gateway.mode, GatewayMode::kPaused);
  EXPECT_EQ(listed->front().gateway.max_ms, 1500);
  EXPECT_EQ(store_->SetAppGateway(a.id + 100, {}).code(), Code::kNotFound);
}

// A database written before migration 5 gains the gateway columns; its apps serve normally.
TEST_F(SqliteStoreTest, MigrationFiveOpensOlderApps) {
  store_.reset();
  std::filesystem::remove(dir_ / "db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "db").string().c_str(), &db), SQLITE_OK);
  std::string sql =
      "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL);";
  for (const auto& m : SqliteMigrations()) {
    if (m.number > 4) continue;
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
  auto old = store_->GetApp("old");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->gateway.mode, GatewayMode::kOpen);
  EXPECT_EQ(old->gateway.max_ms, 30000);
  ASSERT_TRUE(store_->SetAppGateway(old->id, {GatewayMode::kPaused, 2000, ""}).ok());
}

TEST(SqliteStoreOpen, UnwritablePathIsUnavailable) {
  testing::FakeClock clock;
  auto s = OpenSqliteStore("/nonexistent-dir/x/db", clock);
  EXPECT_EQ(s.status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace slipway
