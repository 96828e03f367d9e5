// Environments, sandboxes, templates, snapshots and the apps' new columns in the SQLite
// store (migration 9).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "store/migrations.h"
#include "store/sqlite_store.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

class SqliteSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-sandbox-store");
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string DbPath() const { return (dir_ / "db").string(); }
  void Open(const crypto::SecretBox* box = nullptr) {
    store_.reset();
    auto s = OpenSqliteStore(DbPath(), clock_, box);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void OpenWithKey() {
    auto box = crypto::SecretBox::LoadOrCreate((dir_ / "key").string());
    ASSERT_TRUE(box.ok()) << box.status().ToString();
    box_.emplace(std::move(*box));
    Open(&*box_);
  }
  // The bytes of the database file and its write-ahead log, as they are now.
  std::string DiskBytes() const {
    std::string bytes;
    for (const char* f : {"db", "db-wal"}) {
      std::ifstream in(dir_ / f, std::ios::binary);
      bytes += std::string(std::istreambuf_iterator<char>(in), {});
    }
    return bytes;
  }
  static Environment MakeEnvironment(const std::string& name) {
    Environment e;
    e.name = name;
    e.vars = {{"LOG_LEVEL", "plain-var-value-31337"}, {"REGION", "eu"}};
    e.secrets = {{"DB_PASSWORD", "s3cret-value-9f2e"}, {"API_KEY", "key-0042"}};
    e.files = {{"config/app.ini", "file-content-7c1d\n[db]\nhost=x\n"}};
    return e;
  }
  static Sandbox MakeSandbox(const std::string& name) {
    Sandbox s;
    s.name = name;
    s.template_name = "web";
    s.environment = "staging";
    s.entry = "frontend";
    s.port = 8081;
    s.status = "deploying";
    SandboxService front;
    front.name = "frontend";
    front.branch = "feature/login";
    front.port = 9001;
    front.memory_bytes = 256LL << 20;
    front.cpus = 0.5;
    SandboxService api;
    api.name = "api";
    api.route = "upstream";
    api.port = 9002;
    s.services = {front, api};
    s.memory_bytes = 1LL << 30;
    s.cpus = 1.5;
    s.expire_after_ms = 3600 * 1000;
    s.created_by = "alice";
    s.config_json = R"({"rendered":"x"})";
    s.last_active_ms = 77;
    return s;
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::optional<crypto::SecretBox> box_;
  std::unique_ptr<Store> store_;
};

void ExpectSameServices(const std::vector<SandboxService>& a,
                        const std::vector<SandboxService>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].branch, b[i].branch);
    EXPECT_EQ(a[i].route, b[i].route);
    EXPECT_EQ(a[i].port, b[i].port);
    EXPECT_EQ(a[i].commit, b[i].commit);
    EXPECT_EQ(a[i].memory_bytes, b[i].memory_bytes);
    EXPECT_DOUBLE_EQ(a[i].cpus, b[i].cpus);
  }
}

void ExpectSameSandbox(const Sandbox& a, const Sandbox& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.template_name, b.template_name);
  EXPECT_EQ(a.environment, b.environment);
  EXPECT_EQ(a.entry, b.entry);
  EXPECT_EQ(a.port, b.port);
  EXPECT_EQ(a.status, b.status);
  ExpectSameServices(a.services, b.services);
  EXPECT_EQ(a.memory_bytes, b.memory_bytes);
  EXPECT_DOUBLE_EQ(a.cpus, b.cpus);
  EXPECT_EQ(a.expire_after_ms, b.expire_after_ms);
  EXPECT_EQ(a.created_by, b.created_by);
  EXPECT_EQ(a.config_json, b.config_json);
  EXPECT_EQ(a.created_ms, b.created_ms);
  EXPECT_EQ(a.updated_ms, b.updated_ms);
  EXPECT_EQ(a.last_active_ms, b.last_active_ms);
  EXPECT_EQ(a.expired_ms, b.expired_ms);
}

TEST_F(SqliteSandboxTest, EnvironmentsRoundTripByName) {
  auto created = store_->CreateEnvironment(MakeEnvironment("staging"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_GT(created->id, 0);
  EXPECT_EQ(created->created_ms, clock_.WallMillis()) << "zero times are taken as now";
  EXPECT_EQ(created->updated_ms, clock_.WallMillis());
  EXPECT_EQ(store_->CreateEnvironment(MakeEnvironment("staging")).status().code(), Code::kConflict);
  ASSERT_TRUE(store_->CreateEnvironment(Environment{0, "alpha", {}, {}, {}, 5, 6}).ok());

  Open();  // survives a reopen; migrations run again without harm
  auto back = store_->GetEnvironment("staging");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  Environment want = MakeEnvironment("staging");
  EXPECT_EQ(back->id, created->id);
  EXPECT_EQ(back->vars, want.vars);
  EXPECT_EQ(back->secrets, want.secrets);
  EXPECT_EQ(back->files, want.files);
  EXPECT_EQ(back->created_ms, created->created_ms);

  clock_.Advance(std::chrono::seconds(5));
  Environment changed = *back;
  changed.vars = {{"ONLY", "one"}};
  changed.secrets.erase("API_KEY");
  changed.files["b.txt"] = "";
  changed.updated_ms = 0;
  ASSERT_TRUE(store_->UpdateEnvironment(changed).ok());
  auto updated = store_->GetEnvironment("staging");
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->vars, changed.vars);
  EXPECT_EQ(updated->secrets, changed.secrets);
  EXPECT_EQ(updated->files, changed.files);
  EXPECT_EQ(updated->created_ms, created->created_ms);
  EXPECT_EQ(updated->updated_ms, created->created_ms + 5000);

  auto list = store_->ListEnvironments();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpha") << "by name";
  EXPECT_EQ((*list)[0].created_ms, 5) << "given times are kept";
  EXPECT_EQ((*list)[1].secrets, changed.secrets);
}

TEST_F(SqliteSandboxTest, MissingEnvironmentIsNotFound) {
  EXPECT_EQ(store_->GetEnvironment("nope").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->UpdateEnvironment(MakeEnvironment("nope")).code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteEnvironment("nope").code(), Code::kNotFound);
  ASSERT_TRUE(store_->CreateEnvironment(MakeEnvironment("staging")).ok());
  ASSERT_TRUE(store_->DeleteEnvironment("staging").ok());
  EXPECT_EQ(store_->GetEnvironment("staging").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteEnvironment("staging").code(), Code::kNotFound);
  EXPECT_TRUE(store_->CreateEnvironment(MakeEnvironment("staging")).ok())
      << "the name is free again";
}

TEST_F(SqliteSandboxTest, TextThatIsNotUtf8IsInvalidAndNothingIsStored) {
  Environment e = MakeEnvironment("binary");
  e.files["blob.bin"] = std::string("\xff\xfe\x00\x01", 4);
  EXPECT_EQ(store_->CreateEnvironment(e).status().code(), Code::kInvalid);
  EXPECT_EQ(store_->GetEnvironment("binary").status().code(), Code::kNotFound);
}

TEST_F(SqliteSandboxTest, SandboxesRoundTripEveryField) {
  auto created = store_->CreateSandbox(MakeSandbox("feat-login"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_GT(created->id, 0);
  EXPECT_EQ(created->created_ms, clock_.WallMillis());
  EXPECT_EQ(created->updated_ms, clock_.WallMillis());
  EXPECT_EQ(created->last_active_ms, 77);
  EXPECT_EQ(store_->CreateSandbox(MakeSandbox("feat-login")).status().code(), Code::kConflict);

  Open();
  auto back = store_->GetSandbox("feat-login");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameSandbox(*back, *created);
  EXPECT_EQ(back->services[0].route, "sandbox") << "the default route";
  EXPECT_EQ(store_->GetSandbox("nope").status().code(), Code::kNotFound);
}

TEST_F(SqliteSandboxTest, UpdateSandboxWritesServicesAndState) {
  auto created = store_->CreateSandbox(MakeSandbox("feat-login"));
  ASSERT_TRUE(created.ok());
  clock_.Advance(std::chrono::seconds(2));
  Sandbox s = *created;
  s.services[0].commit = "0123456789abcdef0123456789abcdef01234567";
  s.services[1].route = "sandbox";
  s.services[1].branch = "fix/api";
  SandboxService worker;
  worker.name = "worker";
  worker.port = 9003;
  s.services.push_back(worker);
  s.status = "running";
  s.template_name = "";
  s.environment = "other";
  s.entry = "api";
  s.port = 8090;
  s.memory_bytes = 0;
  s.cpus = 0.25;
  s.expire_after_ms = 1;
  s.created_by = "bob";
  s.config_json = "{}";
  s.last_active_ms = 1234;
  s.expired_ms = 5678;
  s.updated_ms = 0;
  s.created_ms = 1;  // not written
  ASSERT_TRUE(store_->UpdateSandbox(s).ok());

  auto back = store_->GetSandbox("feat-login");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  s.created_ms = created->created_ms;
  s.updated_ms = created->created_ms + 2000;
  ExpectSameSandbox(*back, s);

  Sandbox missing = MakeSandbox("nope");
  EXPECT_EQ(store_->UpdateSandbox(missing).code(), Code::kNotFound);
}

TEST_F(SqliteSandboxTest, SandboxesListByNameAndDelete) {
  ASSERT_TRUE(store_->CreateSandbox(MakeSandbox("zeta")).ok());
  Sandbox empty;
  empty.name = "alpha";
  ASSERT_TRUE(store_->CreateSandbox(empty).ok());
  auto list = store_->ListSandboxes();
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpha");
  EXPECT_TRUE((*list)[0].services.empty());
  EXPECT_EQ((*list)[0].status, "creating");
  EXPECT_EQ((*list)[1].services.size(), 2u);

  ASSERT_TRUE(store_->DeleteSandbox("zeta").ok());
  EXPECT_EQ(store_->DeleteSandbox("zeta").code(), Code::kNotFound);
  EXPECT_EQ(store_->GetSandbox("zeta").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->ListSandboxes()->size(), 1u);
}

TEST_F(SqliteSandboxTest, TemplatesRoundTrip) {
  SandboxTemplate t{0, "web", R"({"services":[{"name":"frontend"}]})", "alice", 0, 0};
  auto created = store_->CreateTemplate(t);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_GT(created->id, 0);
  EXPECT_EQ(created->created_ms, clock_.WallMillis());
  EXPECT_EQ(store_->CreateTemplate(t).status().code(), Code::kConflict);
  ASSERT_TRUE(store_->CreateTemplate({0, "api", "{}", "bob", 0, 0}).ok());

  clock_.Advance(std::chrono::seconds(1));
  SandboxTemplate changed = *created;
  changed.body_json = R"({"services":[]})";
  changed.updated_ms = 0;
  ASSERT_TRUE(store_->UpdateTemplate(changed).ok());
  auto back = store_->GetTemplate("web");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id, created->id);
  EXPECT_EQ(back->body_json, changed.body_json);
  EXPECT_EQ(back->created_by, "alice");
  EXPECT_EQ(back->created_ms, created->created_ms);
  EXPECT_EQ(back->updated_ms, created->created_ms + 1000);

  auto list = store_->ListTemplates();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "api");

  ASSERT_TRUE(store_->DeleteTemplate("web").ok());
  EXPECT_EQ(store_->GetTemplate("web").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteTemplate("web").code(), Code::kNotFound);
  EXPECT_EQ(store_->UpdateTemplate(changed).code(), Code::kNotFound);
}

TEST_F(SqliteSandboxTest, SnapshotsListNewestFirstPerSandbox) {
  auto a1 = store_->CreateSnapshot({0, "a", R"({"n":1})", "alice", 0});
  ASSERT_TRUE(a1.ok()) << a1.status().ToString();
  EXPECT_EQ(a1->created_ms, clock_.WallMillis());
  auto b1 = store_->CreateSnapshot({0, "b", R"({"n":2})", "bob", 0});
  auto a2 = store_->CreateSnapshot({0, "a", R"({"n":3})", "alice", 0});
  ASSERT_TRUE(b1.ok() && a2.ok());

  auto of_a = store_->ListSnapshots("a");
  ASSERT_TRUE(of_a.ok()) << of_a.status().ToString();
  ASSERT_EQ(of_a->size(), 2u);
  EXPECT_EQ((*of_a)[0].id, a2->id) << "newest first";
  EXPECT_EQ((*of_a)[0].body_json, R"({"n":3})");
  EXPECT_EQ((*of_a)[1].id, a1->id);
  EXPECT_EQ(store_->ListSnapshots("")->size(), 3u);
  EXPECT_TRUE(store_->ListSnapshots("c")->empty());

  auto got = store_->GetSnapshot(b1->id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->sandbox, "b");
  EXPECT_EQ(got->body_json, R"({"n":2})");
  EXPECT_EQ(got->created_by, "bob");

  ASSERT_TRUE(store_->DeleteSnapshot(b1->id).ok());
  EXPECT_EQ(store_->GetSnapshot(b1->id).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->DeleteSnapshot(b1->id).code(), Code::kNotFound);
  auto a3 = store_->CreateSnapshot({0, "b", "{}", "", 0});
  EXPECT_GT(a3->id, a2->id) << "ids are never reused";
}

TEST_F(SqliteSandboxTest, AppsCarryUpstreamEnvironmentAndSandbox) {
  App a;
  a.name = "sandbox-feat-api";
  a.repo = "/srv/api";
  a.upstream = "http://10.0.0.5:8080";
  a.environment = "staging";
  a.sandbox = "feat";
  auto created = store_->CreateApp(a);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto back = store_->GetApp("sandbox-feat-api");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->upstream, a.upstream);
  EXPECT_EQ(back->environment, "staging");
  EXPECT_EQ(back->sandbox, "feat");

  App changed = *back;
  changed.upstream = "http://10.0.0.6:8080";
  changed.environment = "";
  changed.sandbox = "other";  // not a setting: stays
  ASSERT_TRUE(store_->UpdateAppSettings(changed).ok());
  auto by_id = store_->GetAppById(created->id);
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->upstream, "http://10.0.0.6:8080");
  EXPECT_EQ(by_id->environment, "");
  EXPECT_EQ(by_id->sandbox, "feat");
  auto listed = store_->ListApps();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().upstream, "http://10.0.0.6:8080");

  changed.id = created->id + 100;
  EXPECT_EQ(store_->UpdateAppSettings(changed).code(), Code::kNotFound);
}

TEST_F(SqliteSandboxTest, SealsEnvironmentSecretsFilesAndSnapshotsAtRest) {
  OpenWithKey();
  ASSERT_TRUE(store_->CreateEnvironment(MakeEnvironment("staging")).ok());
  Environment changed = MakeEnvironment("staging");
  changed.secrets["TOKEN"] = "updated-secret-e1e1";
  ASSERT_TRUE(store_->UpdateEnvironment(changed).ok());
  ASSERT_TRUE(store_->CreateSnapshot({0, "a", R"({"DB":"snapshot-secret-5a5a"})", "", 0}).ok());

  auto back = store_->GetEnvironment("staging");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->secrets, changed.secrets);
  EXPECT_EQ(back->files, changed.files);
  EXPECT_EQ(store_->ListSnapshots("a")->front().body_json, R"({"DB":"snapshot-secret-5a5a"})");

  const char* kSecrets[] = {"s3cret-value-9f2e", "updated-secret-e1e1", "file-content-7c1d",
                            "snapshot-secret-5a5a"};
  std::string live = DiskBytes();  // with the WAL as written
  EXPECT_NE(live.find("plain-var-value-31337"), std::string::npos) << "vars are plain";
  for (const char* secret : kSecrets) EXPECT_EQ(live.find(secret), std::string::npos) << secret;
  store_.reset();  // checkpoints the WAL into the file
  std::string closed = DiskBytes();
  EXPECT_NE(closed.find("plain-var-value-31337"), std::string::npos);
  for (const char* secret : kSecrets) EXPECT_EQ(closed.find(secret), std::string::npos) << secret;

  Open();  // without the key, sealed values cannot be read
  EXPECT_EQ(store_->GetEnvironment("staging").status().code(), Code::kUnavailable);
  EXPECT_EQ(store_->ListSnapshots("").status().code(), Code::kUnavailable);
}

TEST_F(SqliteSandboxTest, SealsEnvironmentsWrittenInTheClearAtOpen) {
  ASSERT_TRUE(store_->CreateEnvironment(MakeEnvironment("staging")).ok());
  ASSERT_TRUE(store_->CreateSnapshot({0, "a", R"({"DB":"snapshot-secret-5a5a"})", "", 0}).ok());
  store_.reset();
  ASSERT_NE(DiskBytes().find("s3cret-value-9f2e"), std::string::npos) << "no key: in the clear";

  OpenWithKey();
  auto back = store_->GetEnvironment("staging");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->secrets, MakeEnvironment("staging").secrets);
  EXPECT_EQ(store_->ListSnapshots("a")->front().body_json, R"({"DB":"snapshot-secret-5a5a"})");
  store_.reset();
  std::string bytes = DiskBytes();
  for (const char* secret : {"s3cret-value-9f2e", "file-content-7c1d", "snapshot-secret-5a5a"})
    EXPECT_EQ(bytes.find(secret), std::string::npos) << secret;
}

// A database written at version 8 gains the sandbox tables and app columns; its apps keep
// their data and read '' for the new columns.
TEST_F(SqliteSandboxTest, MigrationNineOpensAVersionEightDatabase) {
  store_.reset();
  for (const char* f : {"db", "db-wal", "db-shm"}) std::filesystem::remove(dir_ / f);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  std::string sql =
      "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL);";
  for (const auto& m : SqliteMigrations()) {
    if (m.number > 8) continue;
    sql += m.sql;
    sql += "INSERT INTO schema_migrations VALUES (" + std::to_string(m.number) + ", 0);";
  }
  sql +=
      "INSERT INTO apps (name, repo, branch, secret, hosts, path_prefix, created_ms, stopped, "
      "gateway_mode) VALUES ('old', '/srv/old', 'main', 'secret-123', '[\"old.example\"]', "
      "'/old', 1, 1, 'paused');";
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);

  Open();
  auto old = store_->GetApp("old");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->repo, "/srv/old");
  EXPECT_EQ(old->secret, "secret-123");
  EXPECT_EQ(old->hosts, std::vector<std::string>{"old.example"});
  EXPECT_EQ(old->path_prefix, "/old");
  EXPECT_TRUE(old->stopped);
  EXPECT_EQ(old->gateway.mode, GatewayMode::kPaused);
  EXPECT_EQ(old->upstream, "");
  EXPECT_EQ(old->environment, "");
  EXPECT_EQ(old->sandbox, "");
  EXPECT_TRUE(store_->ListEnvironments()->empty());
  EXPECT_TRUE(store_->ListSandboxes()->empty());
  EXPECT_TRUE(store_->ListTemplates()->empty());
  EXPECT_TRUE(store_->ListSnapshots("")->empty());
  EXPECT_TRUE(store_->ListPorts()->empty());
  ASSERT_TRUE(store_->CreateEnvironment(MakeEnvironment("staging")).ok());
  ASSERT_TRUE(store_->CreateSandbox(MakeSandbox("feat")).ok());
  EXPECT_EQ(*store_->ReservePort("gateway", "sandbox/feat", 8081, 8999, {}), 8081);

  sqlite3* check = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &check), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(check, "SELECT MAX(number) FROM schema_migrations", -1, &q, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 9);
  sqlite3_finalize(q);
  sqlite3_close(check);
}

}  // namespace
}  // namespace slipway
