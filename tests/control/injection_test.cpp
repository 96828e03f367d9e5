// Redact, and the rules an Injection is held to before a deployment uses it.
#include "control/injection.h"

#include <gtest/gtest.h>

namespace slipway {
namespace {

TEST(Redact, ReplacesEveryOccurrenceOfEachSecret) {
  EXPECT_EQ(Redact("token=hunter22 again hunter22.", {"hunter22"}), "token=*** again ***.");
  EXPECT_EQ(Redact("a=s3cr3t b=p4ssw0rd", {"s3cr3t", "p4ssw0rd"}), "a=*** b=***");
  EXPECT_EQ(Redact("nothing here", {"hunter22"}), "nothing here");
  EXPECT_EQ(Redact("", {"hunter22"}), "");
  EXPECT_EQ(Redact("hunter22hunter22", {"hunter22"}), "******");
}

TEST(Redact, LeavesSecretsShorterThanFourBytesAlone) {
  EXPECT_EQ(Redact("abc is not hidden, abcd is", {"abc", "abcd", ""}), "abc is not hidden, *** is");
}

TEST(Redact, ReplacesLongerSecretsFirst) {
  // Shorter first would leave "***-suffix" and show what follows the short one.
  EXPECT_EQ(Redact("key=prefix-suffix", {"prefix", "prefix-suffix"}), "key=***");
  EXPECT_EQ(Redact("key=prefix-suffix", {"prefix-suffix", "prefix"}), "key=***");
  EXPECT_EQ(Redact("prefix and prefix-suffix", {"prefix", "prefix-suffix"}), "*** and ***");
}

TEST(Redact, HandlesASecretThatContainsItsOwnReplacement) {
  EXPECT_EQ(Redact("x ***a*** y", {"***a***"}), "x *** y");
  EXPECT_EQ(Redact("aaaaaaaa", {"aaaa"}), "******");
}

TEST(InjectEnv, OverridesTheManifestButNotTheServersNames) {
  Injection in;
  in.env = {{"DB_URL", "postgres://db"}, {"FOO", "injected"},      {"PORT", "1"},
            {"HOST", "0.0.0.0"},         {"SLIPWAY_APP", "other"}, {"SLIPWAYS", "fine"}};
  std::map<std::string, std::string> env = {{"FOO", "manifest"}, {"HOST", "127.0.0.2"}};
  InjectEnv(in, env);
  EXPECT_EQ(env, (std::map<std::string, std::string>{{"DB_URL", "postgres://db"},
                                                     {"FOO", "injected"},
                                                     {"HOST", "127.0.0.2"},
                                                     {"SLIPWAYS", "fine"}}));
}

TEST(ValidateInjection, TakesRelativeFilesAndValidNames) {
  Injection in;
  in.files = {{".env", "A=1"}, {"config/app.json", "{}"}, {"a..b/c", "x"}};
  in.network = "sandbox-feat-1";
  in.aliases = {"api", "api.sandbox", "web_1"};
  EXPECT_TRUE(ValidateInjection(in).ok());
  EXPECT_TRUE(ValidateInjection(Injection{}).ok());
}

TEST(ValidateInjection, RefusesFilePathsThatLeaveTheRelease) {
  for (const std::string& path :
       std::vector<std::string>{"/etc/passwd", "../up", "a/../../b", "a/..", "", "a//b", "./a",
                                "a/", std::string("a\0b", 3)}) {
    Injection in;
    in.files = {{path, "secret-content"}};
    Status s = ValidateInjection(in);
    EXPECT_EQ(s.code(), Code::kInvalid) << path;
    EXPECT_EQ(s.message().find("secret-content"), std::string::npos) << s.message();
  }
}

TEST(ValidateInjection, RefusesMoreThan64Files) {
  Injection in;
  for (int i = 0; i < 64; ++i) in.files["f" + std::to_string(i)] = "x";
  EXPECT_TRUE(ValidateInjection(in).ok());
  in.files["one-more"] = "x";
  EXPECT_EQ(ValidateInjection(in).code(), Code::kInvalid);
}

TEST(ValidateInjection, RefusesBadNetworkNamesAndAliases) {
  for (const std::string& name : std::vector<std::string>{"Upper", "-lead", "has space",
                                                          "semi;colon", std::string(64, 'a')}) {
    Injection in;
    in.network = name;
    EXPECT_EQ(ValidateInjection(in).code(), Code::kInvalid) << name;
    in.network = "ok";
    in.aliases = {name};
    EXPECT_EQ(ValidateInjection(in).code(), Code::kInvalid) << name;
  }
  Injection in;
  in.network = std::string(63, 'a');
  EXPECT_TRUE(ValidateInjection(in).ok());
}

}  // namespace
}  // namespace slipway
