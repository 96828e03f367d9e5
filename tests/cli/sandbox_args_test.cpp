#include "cli/sandbox_args.h"

#include <gtest/gtest.h>

namespace slipway::cli {
namespace {

using json = nlohmann::json;

TEST(ParseServiceArg, BranchAndUpstream) {
  auto branch = ParseServiceArg("web=branch:feature/login");
  ASSERT_TRUE(branch.ok());
  EXPECT_EQ(*branch, (json{{"name", "web"}, {"branch", "feature/login"}}));
  auto upstream = ParseServiceArg("account=upstream");
  ASSERT_TRUE(upstream.ok());
  EXPECT_EQ(*upstream, (json{{"name", "account"}, {"upstream", true}}));
  // Only the first '=' and the "branch:" prefix are syntax.
  EXPECT_EQ((*ParseServiceArg("web=branch:a=b:c"))["branch"], "a=b:c");
}

TEST(ParseServiceArg, AnythingElseIsOneLineNamingTheValue) {
  for (const std::string& bad : std::vector<std::string>{
           "web", "web=", "=branch:x", "web=branch:", "web=feature", "web=branch", "web=Upstream",
           "web=upstream:x", "a/b=upstream", "we b=upstream", "web:branch=x",
           std::string(65, 'a') + "=upstream"}) {
    auto r = ParseServiceArg(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalid);
    EXPECT_NE(r.status().message().find("'" + bad.substr(0, 80)), std::string::npos) << bad;
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  }
}

TEST(ParseServiceArg, ControlCharactersAreNotEchoed) {
  auto r = ParseServiceArg("web\n=\x1b[31mupstream");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  EXPECT_EQ(r.status().message().find('\x1b'), std::string::npos);
}

TEST(ParseServiceArgs, KeepsTheOrderAndStopsAtTheFirstBadValue) {
  auto list = ParseServiceArgs({"web=branch:dev", "account=upstream"});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0]["name"], "web");
  auto bad = ParseServiceArgs({"web=branch:dev", "nope", "x"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'nope'"), std::string::npos);
  EXPECT_TRUE(ParseServiceArgs({})->empty());
}

TEST(PathSafe, OneSegment) {
  EXPECT_TRUE(PathSafe("qa-login"));
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "..%2f", "a?b", "a#b", std::string(65, 'a')})
    EXPECT_FALSE(PathSafe(bad)) << bad;
}

TEST(FormatBytes, LargestExactUnit) {
  EXPECT_EQ(FormatBytes(1LL << 30), "1GiB");
  EXPECT_EQ(FormatBytes(256LL << 20), "256MiB");
  EXPECT_EQ(FormatBytes(1536LL << 20), "1536MiB");
  EXPECT_EQ(FormatBytes(1500), "1500B");
  EXPECT_EQ(FormatBytes(0), "-");
}

}  // namespace
}  // namespace slipway::cli
