// Deployment notification records in the SQLite store (migration 8).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "store/sqlite_store.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

class SqliteNotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-notify-store");
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
  // An app and one deployment of it; returns the deployment's id.
  std::int64_t MakeDeployment(const std::string& app_name) {
    App a;
    a.name = app_name;
    a.repo = "/srv/" + app_name;
    auto app = store_->CreateApp(a);
    EXPECT_TRUE(app.ok()) << app.status().ToString();
    app_ids_[app_name] = app->id;
    Deployment d;
    d.app_id = app->id;
    auto created = store_->CreateDeployment(d);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created->id;
  }
  static NotificationRecord MakeRecord(std::int64_t deployment_id, const std::string& target) {
    NotificationRecord n;
    n.deployment_id = deployment_id;
    n.app = "hello";
    n.event = "succeeded";
    n.target = target;
    return n;
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::map<std::string, std::int64_t> app_ids_;
};

TEST_F(SqliteNotifyTest, CreateUpdateAndListOldestFirst) {
  std::int64_t d = MakeDeployment("hello");
  auto a = store_->CreateNotification(MakeRecord(d, "slack hooks.slack.com"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_GT(a->id, 0);
  EXPECT_EQ(a->status, "pending");
  EXPECT_EQ(a->created_ms, clock_.WallMillis()) << "zero times are taken as now";
  EXPECT_EQ(a->updated_ms, clock_.WallMillis());
  auto b = store_->CreateNotification(MakeRecord(d, "webhook 127.0.0.1"));
  ASSERT_TRUE(b.ok());

  clock_.Advance(std::chrono::seconds(3));
  NotificationRecord changed = *a;
  changed.status = "retrying";
  changed.attempts = 2;
  changed.http_status = 500;
  changed.last_error = "HTTP 500";
  changed.updated_ms = 0;
  ASSERT_TRUE(store_->UpdateNotification(changed).ok());

  Open();  // the records survive a reopen; migrations run again without harm
  auto list = store_->ListNotifications(d, 100);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  const auto& first = (*list)[0];
  EXPECT_EQ(first.id, a->id);
  EXPECT_EQ(first.deployment_id, d);
  EXPECT_EQ(first.app, "hello");
  EXPECT_EQ(first.event, "succeeded");
  EXPECT_EQ(first.target, "slack hooks.slack.com");
  EXPECT_EQ(first.status, "retrying");
  EXPECT_EQ(first.attempts, 2);
  EXPECT_EQ(first.http_status, 500);
  EXPECT_EQ(first.last_error, "HTTP 500");
  EXPECT_EQ(first.created_ms, a->created_ms);
  EXPECT_EQ(first.updated_ms, a->created_ms + 3000);
  EXPECT_EQ((*list)[1].id, b->id);
  EXPECT_EQ((*list)[1].status, "pending");

  auto limited = store_->ListNotifications(d, 1);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 1u);
  EXPECT_EQ((*limited)[0].id, a->id);
}

TEST_F(SqliteNotifyTest, ListsOnlyTheDeploymentAsked) {
  std::int64_t one = MakeDeployment("one");
  std::int64_t two = MakeDeployment("two");
  ASSERT_TRUE(store_->CreateNotification(MakeRecord(one, "teams example.com")).ok());
  ASSERT_TRUE(store_->CreateNotification(MakeRecord(two, "teams example.com")).ok());
  ASSERT_TRUE(store_->CreateNotification(MakeRecord(two, "slack hooks.slack.com")).ok());
  EXPECT_EQ(store_->ListNotifications(one, 100)->size(), 1u);
  EXPECT_EQ(store_->ListNotifications(two, 100)->size(), 2u);
  EXPECT_TRUE(store_->ListNotifications(two + 100, 100)->empty());
}

TEST_F(SqliteNotifyTest, UnknownDeploymentAndRecordAreNotFound) {
  auto orphan = store_->CreateNotification(MakeRecord(999, "webhook example.com"));
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.status().code(), Code::kNotFound);
  NotificationRecord missing = MakeRecord(1, "webhook example.com");
  missing.id = 12345;
  EXPECT_EQ(store_->UpdateNotification(missing).code(), Code::kNotFound);
}

TEST_F(SqliteNotifyTest, DeletingTheAppDeletesItsRecords) {
  std::int64_t d = MakeDeployment("hello");
  auto n = store_->CreateNotification(MakeRecord(d, "webhook example.com"));
  ASSERT_TRUE(n.ok());
  ASSERT_TRUE(store_->DeleteApp(app_ids_["hello"]).ok());
  EXPECT_TRUE(store_->ListNotifications(d, 100)->empty());
  NotificationRecord late = *n;
  late.status = "delivered";
  EXPECT_EQ(store_->UpdateNotification(late).code(), Code::kNotFound)
      << "a delivery finishing after its app was deleted is told so";
}

}  // namespace
}  // namespace slipway
