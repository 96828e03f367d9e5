#include "control/auth_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "store/sqlite_store.h"
#include "support/fake_agent.h"
#include "support/fake_clock.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

class AuthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-auth");
    auto s = OpenSqliteStore((dir_ / "db").string(), clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    options_.login_repo = "https://git.example/login.git";
    options_.login_role = Role::kQa;
    auth_ = std::make_unique<AuthService>(*store_, agent_, clock_, options_);
  }
  void TearDown() override {
    auth_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  testing::FakeClock clock_;
  testing::FakeAgent agent_;
  AuthOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuthService> auth_;
};

TEST_F(AuthServiceTest, FirstStartWritesAPrivateAdminTokenOnce) {
  std::string file = (dir_ / "admin.token").string();
  auto said = auth_->Bootstrap("", file);
  ASSERT_TRUE(said.ok()) << said.status().ToString();
  EXPECT_NE(said->find(file), std::string::npos);
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  std::string token;
  std::ifstream(file) >> token;
  auto who = auth_->Authenticate(token, "");
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->role, Role::kAdmin);
  EXPECT_EQ(*auth_->Bootstrap("", file), "");  // a token exists: nothing more
  EXPECT_EQ(store_->ListTokens()->size(), 1u);
}

TEST_F(AuthServiceTest, BootstrapTokenFromTheEnvironmentBecomesAnAdminToken) {
  const std::string env = "bootstrap-token-0123456789";
  ASSERT_TRUE(auth_->Bootstrap(env, "").ok());
  ASSERT_TRUE(auth_->Bootstrap(env, "").ok());
  EXPECT_EQ(store_->ListTokens()->size(), 1u);
  EXPECT_EQ(auth_->Authenticate(env, "")->role, Role::kAdmin);
  EXPECT_EQ(auth_->Bootstrap("short", "").status().code(), Code::kInvalid);
}

TEST_F(AuthServiceTest, ExpiredRevokedAndUnknownTokensAreRefused) {
  auto t = auth_->CreateToken("ci", "backend", hours(1), "test");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(auth_->Authenticate(t->token, "")->role, Role::kBackend);
  clock_.Advance(hours(2));
  auto expired = auth_->Authenticate(t->token, "");
  EXPECT_EQ(expired.status().code(), Code::kUnauthorized);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);
  auto forever = auth_->CreateToken("forever", "viewer", std::chrono::milliseconds(0), "test");
  ASSERT_TRUE(store_->RevokeToken("forever", clock_.WallMillis()).ok());
  EXPECT_NE(auth_->Authenticate(forever->token, "").status().message().find("revoked"),
            std::string::npos);
  EXPECT_EQ(auth_->Authenticate("slw_made-up", "").status().code(), Code::kUnauthorized);
  EXPECT_EQ(auth_->Authenticate("", "").status().code(), Code::kUnauthorized);
  EXPECT_EQ(auth_->CreateToken("bad name", "admin", hours(1), "t").status().code(), Code::kInvalid);
  EXPECT_EQ(auth_->CreateToken("x", "root", hours(1), "t").status().code(), Code::kInvalid);
}

TEST_F(AuthServiceTest, LocalUserLogsInAndIsLockedOutAfterTenFailures) {
  ASSERT_TRUE(auth_->CreateUser("bob", "backend", "correct horse battery", "local").ok());
  EXPECT_EQ(store_->GetUser("bob")->password_hash.find("correct"), std::string::npos);
  auto ok = auth_->Login("bob", "correct horse battery", "10.0.0.1");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto who = auth_->Authenticate(ok->session_token, "");
  EXPECT_EQ(who->name, "bob");
  EXPECT_EQ(who->kind, "session");
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(auth_->Login("bob", "wrong", "10.0.0.1").status().code(), Code::kUnauthorized);
  EXPECT_EQ(auth_->Login("bob", "correct horse battery", "10.0.0.2").status().code(),
            Code::kRateLimited);
  clock_.Advance(minutes(6));
  EXPECT_TRUE(auth_->Login("bob", "correct horse battery", "10.0.0.2").ok());
  EXPECT_EQ(agent_.credential_checks, 0) << "a local user is never sent to the git host";
}

TEST_F(AuthServiceTest, OneAddressIsRateLimited) {
  for (int i = 0; i < options_.max_attempts_per_minute; ++i)
    (void)auth_->Login("user" + std::to_string(i), "pw", "10.9.9.9");
  EXPECT_EQ(auth_->Login("another", "pw", "10.9.9.9").status().code(), Code::kRateLimited);
  EXPECT_EQ(auth_->Login("another", "pw", "10.9.9.8").status().code(), Code::kUnauthorized);
}

TEST_F(AuthServiceTest, GitCredentialLoginKeepsCredentialsForTheSessionOnly) {
  agent_.git_users["alice"] = "git-pass";
  auto login = auth_->Login("alice", "git-pass", "10.0.0.1");
  ASSERT_TRUE(login.ok()) << login.status().ToString();
  EXPECT_EQ(login->role, Role::kQa);
  EXPECT_EQ(store_->GetUser("alice")->source, "git");
  EXPECT_EQ(store_->GetUser("alice")->password_hash, "");
  auto who = auth_->Authenticate("", login->session_token);
  ASSERT_TRUE(who.ok());
  EXPECT_TRUE(who->via_cookie);
  auto creds = auth_->GitCredentialsFor(*who);
  ASSERT_TRUE(creds);
  EXPECT_EQ(creds->password, "git-pass");
  ASSERT_TRUE(auth_->Logout(*who).ok());
  EXPECT_FALSE(auth_->GitCredentialsFor(*who));
  EXPECT_EQ(auth_->Authenticate("", login->session_token).status().code(), Code::kUnauthorized);
}

TEST_F(AuthServiceTest, SessionsExpireAndAnUnreachableGitHostIsNotAFailure) {
  agent_.git_users["alice"] = "git-pass";
  auto login = auth_->Login("alice", "git-pass", "10.0.0.1");
  clock_.Advance(options_.session_ttl + minutes(1));
  EXPECT_EQ(auth_->Authenticate(login->session_token, "").status().code(), Code::kUnauthorized);
  agent_.git_host_down = true;
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(auth_->Login("alice", "git-pass", "10.0.0.3").status().code(), Code::kUnavailable);
  agent_.git_host_down = false;
  EXPECT_TRUE(auth_->Login("alice", "git-pass", "10.0.0.4").ok()) << "no lockout for an outage";
}

TEST_F(AuthServiceTest, ALoginRepositoryAnyoneMayReadLetsNobodyIn) {
  agent_.anonymous_read = true;
  auto login = auth_->Login("anyone", "whatever", "10.0.0.1");
  EXPECT_EQ(login.status().code(), Code::kUnavailable);
  EXPECT_NE(login.status().message().find("without credentials"), std::string::npos);
  EXPECT_EQ(store_->GetUser("anyone").status().code(), Code::kNotFound);
  agent_.anonymous_read = false;
  agent_.git_users["alice"] = "git-pass";
  EXPECT_TRUE(auth_->Login("alice", "git-pass", "10.0.0.1").ok());
  int checks = agent_.credential_checks;
  EXPECT_TRUE(auth_->Login("alice", "git-pass", "10.0.0.1").ok());
  EXPECT_EQ(agent_.credential_checks, checks + 1) << "the repository is probed once";
}

}  // namespace
}  // namespace slipway
