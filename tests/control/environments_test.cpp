#include "control/environments.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "store/sqlite_store.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

const std::string kSecret = "s3cr3t-value-never-shown";
const std::string kFile = "file-content-never-shown";

class EnvironmentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-env");
    auto s = OpenSqliteStore((dir_ / "db").string(), clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    envs_ = std::make_unique<Environments>(*store_);
  }
  void TearDown() override {
    envs_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // An environment "staging" with a variable, a secret and a file.
  Environment Staging() {
    EnvironmentChange c;
    c.vars = {{"LOG_LEVEL", "debug"}};
    c.secrets = {{"DB_PASSWORD", kSecret}};
    c.files = {{"config/app.ini", kFile}};
    auto e = envs_->Create("staging", c, actor_);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? *e : Environment{};
  }

  App CreateApp(const std::string& name, const std::string& environment) {
    App a;
    a.name = name;
    a.repo = "https://git.example/" + name + ".git";
    a.secret = "webhook-secret";
    a.environment = environment;
    auto created = store_->CreateApp(a);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : a;
  }

  Code CreateCode(const std::string& name, const EnvironmentChange& c) {
    return envs_->Create(name, c, actor_).status().code();
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Environments> envs_;
  Actor actor_{"alice", "127.0.0.1", std::nullopt};
};

TEST(EnvironmentValidation, NamesFollowTheDocumentedShapes) {
  for (std::string ok : std::vector<std::string>{"staging", "0", "a.b_c-d", std::string(64, 'a')})
    EXPECT_TRUE(ValidateEnvironmentName(ok).ok()) << ok;
  for (std::string bad : std::vector<std::string>{"", "Staging", "-x", ".x", "_x", "a/b", "a b",
                                                  std::string(65, 'a')})
    EXPECT_FALSE(ValidateEnvironmentName(bad).ok()) << bad;
  for (std::string ok : std::vector<std::string>{"A", "_x", "db_Password2", std::string(128, 'K'),
                                                 "port", "HOSTNAME"})
    EXPECT_TRUE(ValidateVariableName(ok).ok()) << ok;
  for (std::string bad :
       std::vector<std::string>{"", "2X", "A-B", "A.B", "A B", "É", std::string(129, 'K'), "PORT",
                                "HOST", "SLIPWAY_APP", "SLIPWAY_"})
    EXPECT_EQ(ValidateVariableName(bad).code(), Code::kInvalid) << bad;
}

TEST(EnvironmentValidation, FilePathsStayInsideTheRelease) {
  for (std::string ok :
       std::vector<std::string>{"a", "config/app.ini", ".env", "a/..b/c..", std::string(255, 'f')})
    EXPECT_TRUE(ValidateFilePath(ok).ok()) << ok;
  for (std::string bad : std::vector<std::string>{
           "", "/etc/passwd", "../x", "a/../../x", "a/..", "..", "a//b", "a/", "./a", "a/./b",
           "a\\b", std::string("a\0b", 3), "a\nb", std::string(256, 'f')})
    EXPECT_EQ(ValidateFilePath(bad).code(), Code::kInvalid) << bad;
}

TEST_F(EnvironmentsTest, RefusesBadInputWithOneClearMessageAndStoresNothing) {
  auto invalid = [&](EnvironmentChange c, const std::string& words) {
    auto r = envs_->Create("bad", c, actor_);
    ASSERT_EQ(r.status().code(), Code::kInvalid) << words;
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
  };
  invalid({.vars = {{"PORT", "1"}}}, "set by Slipway");
  invalid({.secrets = {{"SLIPWAY_TOKEN", "x"}}}, "set by Slipway");
  invalid({.vars = {{"1X", "1"}}}, "not a valid variable name");
  invalid({.vars = {{"BIG", std::string(64 * 1024 + 1, 'v')}}}, "larger than 64 KiB");
  invalid({.secrets = {{"NUL", std::string("a\0b", 3)}}}, "NUL");
  invalid({.files = {{"../x", "x"}}}, "'..'");
  invalid({.files = {{"/etc/x", "x"}}}, "relative");
  invalid({.files = {{"big", std::string(1024 * 1024 + 1, 'f')}}}, "larger than 1 MiB");
  invalid({.files = {{"a", "x"}, {"a/b", "y"}}}, "directory");
  invalid({.vars = {{"X", "1"}}, .secrets = {{"X", "2"}}}, "both as a variable and as a secret");
  EnvironmentChange many;
  for (int i = 0; i < 257; ++i) many.vars["V" + std::to_string(i)] = "x";
  invalid(many, "at most 256 variables");
  EnvironmentChange files;
  for (int i = 0; i < 65; ++i) files.files["f" + std::to_string(i)] = "x";
  invalid(files, "at most 64 files");
  EnvironmentChange total;
  for (int i = 0; i < 5; ++i) total.files["f" + std::to_string(i)] = std::string(1024 * 1024, 'x');
  invalid(total, "4 MiB");
  EXPECT_EQ(CreateCode("Bad Name", {}), Code::kInvalid);
  EXPECT_EQ(CreateCode("bad", {.unset = {"X"}}), Code::kInvalid);
  EXPECT_TRUE(envs_->List()->empty());
}

TEST_F(EnvironmentsTest, LimitsHoldAtTheirEdges) {
  EnvironmentChange c;
  for (int i = 0; i < 256; ++i) c.secrets["S" + std::to_string(i)] = "v";
  c.vars["MAX"] = std::string(64 * 1024, 'v');
  for (int i = 0; i < 4; ++i) c.files["f" + std::to_string(i)] = std::string(1024 * 1024, 'x');
  ASSERT_TRUE(envs_->Create("edge", c, actor_).ok());
  auto more = envs_->Change("edge", {.files = {{"one-more-byte", "x"}}}, actor_);
  EXPECT_EQ(more.status().code(), Code::kInvalid);
  EXPECT_EQ(envs_->Get("edge")->files.size(), 4u);  // nothing changed
}

TEST_F(EnvironmentsTest, ViewShowsVariablesButNeverASecretValueOrAFileContent) {
  Environment e = Staging();
  nlohmann::json view = Environments::View(e);
  std::string text = view.dump();
  EXPECT_EQ(text.find(kSecret), std::string::npos) << text;
  EXPECT_EQ(text.find(kFile), std::string::npos) << text;
  EXPECT_EQ(view["name"], "staging");
  EXPECT_EQ(view["vars"]["LOG_LEVEL"], "debug");
  EXPECT_EQ(view["secrets"], nlohmann::json::array({"DB_PASSWORD"}));
  EXPECT_EQ(view["files"], nlohmann::json::array({"config/app.ini"}));
  EXPECT_GT(view["created_ms"].get<long long>(), 0);
  EXPECT_GT(view["updated_ms"].get<long long>(), 0);
  auto list = envs_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(Environments::View(list->front()).dump().find(kSecret), std::string::npos);
}

TEST_F(EnvironmentsTest, InjectionCarriesVariablesSecretsFilesAndTheValuesToRedact) {
  Staging();
  auto in = envs_->InjectionOf("staging");
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(in->env,
            (std::map<std::string, std::string>{{"DB_PASSWORD", kSecret}, {"LOG_LEVEL", "debug"}}));
  EXPECT_EQ(in->files, (std::map<std::string, std::string>{{"config/app.ini", kFile}}));
  EXPECT_EQ(in->secrets, std::vector<std::string>{kSecret});
  EXPECT_EQ(envs_->InjectionOf("gone").status().code(), Code::kNotFound);

  EnvironmentInjection adapter(*envs_);
  App none;
  auto empty = adapter.For(none);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->env.empty() && empty->files.empty() && empty->secrets.empty());
  App shared;
  shared.environment = "staging";
  EXPECT_EQ(adapter.For(shared)->env.at("LOG_LEVEL"), "debug");
  shared.environment = "gone";
  EXPECT_EQ(adapter.For(shared).status().code(), Code::kNotFound);
}

TEST_F(EnvironmentsTest, ChangeSetsMovesAndUnsetsKeys) {
  Staging();
  // A variable set as a secret becomes one (and the other way round).
  auto e = envs_->Change("staging",
                         {.vars = {{"DB_PASSWORD", "plain"}}, .secrets = {{"LOG_LEVEL", "hidden"}}},
                         actor_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->vars, (std::map<std::string, std::string>{{"DB_PASSWORD", "plain"}}));
  EXPECT_EQ(e->secrets, (std::map<std::string, std::string>{{"LOG_LEVEL", "hidden"}}));
  e = envs_->Change("staging", {.unset = {"DB_PASSWORD", "config/app.ini"}}, actor_);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(e->vars.empty());
  EXPECT_TRUE(e->files.empty());
  EXPECT_EQ(envs_->Change("staging", {.unset = {"NOPE"}}, actor_).status().code(), Code::kNotFound);
  EXPECT_EQ(
      envs_->Change("staging", {.vars = {{"A", "1"}}, .unset = {"A"}}, actor_).status().code(),
      Code::kInvalid);
  EXPECT_EQ(envs_->Change("staging", {}, actor_).status().code(), Code::kInvalid);
  EXPECT_EQ(envs_->Change("nosuch", {.vars = {{"A", "1"}}}, actor_).status().code(),
            Code::kNotFound);
  EXPECT_EQ(CreateCode("staging", {}), Code::kConflict);
}

TEST_F(EnvironmentsTest, EveryChangeIsAuditedByKeyNeverByValue) {
  Staging();
  ASSERT_TRUE(envs_->Change("staging", {.secrets = {{"API_KEY", kSecret + "-2"}}}, actor_).ok());
  ASSERT_TRUE(envs_->Change("staging", {.unset = {"API_KEY"}}, actor_).ok());
  ASSERT_TRUE(envs_->Delete("staging", actor_).ok());
  auto audit = store_->ListAudit({});
  ASSERT_TRUE(audit.ok());
  std::vector<std::string> actions;
  for (const auto& a : *audit) {
    actions.insert(actions.begin(), a.action);  // oldest first
    EXPECT_EQ(a.target, "env/staging");
    EXPECT_EQ(a.actor, "alice");
    EXPECT_EQ(a.detail_json.find(kSecret), std::string::npos) << a.detail_json;
    EXPECT_EQ(a.detail_json.find(kFile), std::string::npos) << a.detail_json;
  }
  EXPECT_EQ(actions,
            (std::vector<std::string>{"env.create", "env.set", "env.unset", "env.delete"}));
  EXPECT_NE(audit->at(2).detail_json.find("API_KEY"), std::string::npos);  // the env.set
}

TEST_F(EnvironmentsTest, DeleteIsRefusedWhileAnAppOrSandboxReferencesIt) {
  Staging();
  App app = CreateApp("shop", "staging");
  auto refused = envs_->Delete("staging", actor_);
  EXPECT_EQ(refused.code(), Code::kConflict);
  EXPECT_NE(refused.message().find("app 'shop'"), std::string::npos) << refused.message();

  app.environment = "";
  ASSERT_TRUE(store_->UpdateAppSettings(app).ok());
  Sandbox s;
  s.name = "qa-login";
  s.environment = "staging";
  ASSERT_TRUE(store_->CreateSandbox(s).ok());
  refused = envs_->Delete("staging", actor_);
  EXPECT_EQ(refused.code(), Code::kConflict);
  EXPECT_NE(refused.message().find("sandbox 'qa-login'"), std::string::npos) << refused.message();

  ASSERT_TRUE(store_->DeleteSandbox("qa-login").ok());
  EXPECT_TRUE(envs_->Delete("staging", actor_).ok());
  EXPECT_EQ(envs_->Get("staging").status().code(), Code::kNotFound);
  EXPECT_EQ(envs_->Delete("staging", actor_).code(), Code::kNotFound);
}

TEST_F(EnvironmentsTest, ConcurrentSetsNeverLoseOneAnother) {
  ASSERT_TRUE(envs_->Create("shared", {}, actor_).ok());
  constexpr int kThreads = 6, kKeys = 20;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        std::string key = "T" + std::to_string(t) + "_K" + std::to_string(k);
        EnvironmentChange c;
        (k % 2 ? c.secrets : c.vars)[key] = "v";
        EXPECT_TRUE(envs_->Change("shared", c, actor_).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto e = envs_->Get("shared");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->vars.size() + e->secrets.size(), std::size_t{kThreads * kKeys});
}

}  // namespace
}  // namespace slipway
