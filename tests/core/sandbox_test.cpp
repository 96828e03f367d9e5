// The pure sandbox rules: names, <SERVICE>_URL names, the expiry decision and the health
// summary.
#include "core/sandbox.h"

#include <gtest/gtest.h>

namespace slipway {
namespace {

constexpr long long kDay = 24LL * 3600 * 1000;

TEST(SandboxRules, Names) {
  EXPECT_TRUE(ValidateSandboxName("qa-login").ok());
  EXPECT_TRUE(ValidateSandboxName("a").ok());
  EXPECT_TRUE(ValidateSandboxName(std::string(32, 'a')).ok());
  for (const std::string bad : {"", "A", "1abc", "abc-", "a_b", "a/b", "../x", "a b", "é"})
    EXPECT_FALSE(ValidateSandboxName(bad).ok()) << bad;
  EXPECT_FALSE(ValidateSandboxName(std::string(33, 'a')).ok());
}

TEST(SandboxRules, ServiceUrlVariable) {
  EXPECT_EQ(ServiceUrlVar("account"), "ACCOUNT_URL");
  EXPECT_EQ(ServiceUrlVar("user-api"), "USER_API_URL");
  EXPECT_EQ(ServiceUrlVar("svc2"), "SVC2_URL");
}

TEST(SandboxRules, ExpiryCountsFromTheLastActivity) {
  Sandbox s;
  s.status = "running";
  s.created_ms = 1000;
  s.last_active_ms = 1000 + 5 * kDay;
  s.expire_after_ms = 14 * kDay;
  EXPECT_EQ(DecideExpiry(s, 1000 + 18 * kDay, 7 * kDay), ExpiryStep::kNone);
  EXPECT_EQ(DecideExpiry(s, 1000 + 19 * kDay, 7 * kDay), ExpiryStep::kExpire);
  s.expire_after_ms = 0;
  EXPECT_EQ(DecideExpiry(s, 1000 + 900 * kDay, 7 * kDay), ExpiryStep::kNone);
}

TEST(SandboxRules, ExpiredIsDeletedAfterRetention) {
  Sandbox s;
  s.status = "expired";
  s.expired_ms = 10 * kDay;
  EXPECT_EQ(DecideExpiry(s, 16 * kDay, 7 * kDay), ExpiryStep::kNone);
  EXPECT_EQ(DecideExpiry(s, 17 * kDay, 7 * kDay), ExpiryStep::kDelete);
  s.expired_ms = 0;  // never stamped: not deleted on a guess
  EXPECT_EQ(DecideExpiry(s, 900 * kDay, 7 * kDay), ExpiryStep::kNone);
}

TEST(SandboxRules, Health) {
  Sandbox s;
  s.status = "running";
  s.entry = "entry";
  ServiceHealth entry{"entry", false, true, true}, account{"account", false, true, true};
  EXPECT_EQ(SandboxHealth(s, {entry, account}), "healthy");
  account.healthy = false;
  EXPECT_EQ(SandboxHealth(s, {entry, account}), "degraded");
  entry.running = false;
  EXPECT_EQ(SandboxHealth(s, {entry, account}), "unhealthy");
  s.status = "suspended";
  EXPECT_EQ(SandboxHealth(s, {{"entry", false, true, true}}), "unhealthy");
  EXPECT_EQ(SandboxHealth(s, {}), "unhealthy");
}

}  // namespace
}  // namespace slipway
