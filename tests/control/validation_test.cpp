#include "control/validation.h"

#include <gtest/gtest.h>

namespace slipway {
namespace {

TEST(ValidateHosts, AcceptsRfc1123NamesAndWildcardsAndLowerCasesThem) {
  std::vector<std::string> hosts = {"Hello.LOCALHOST", "*.example.com", "a-b.c0", "x",
                                    "hello.localhost"};
  ASSERT_TRUE(ValidateHosts(hosts).ok());
  EXPECT_EQ(hosts, (std::vector<std::string>{"*.example.com", "a-b.c0", "hello.localhost", "x"}));
}

TEST(ValidateHosts, RefusesWhatIsNotAHostName) {
  for (std::string bad : std::vector<std::string>{
           "", "<script>", "a..b", "-x.com", "x-.com", "a b", "a_b.com", "*.", "**.a", "a.*.b",
           "host:80", std::string(64, 'a') + ".com", std::string(254, 'a')}) {
    std::vector<std::string> hosts = {bad};
    EXPECT_FALSE(ValidateHosts(hosts).ok()) << bad;
  }
  std::vector<std::string> many(33, "a.com");
  EXPECT_FALSE(ValidateHosts(many).ok());
}

TEST(ValidatePathPrefix, NormalisesAndRefusesTraversal) {
  std::string p = "/api/";
  ASSERT_TRUE(ValidatePathPrefix(p).ok());
  EXPECT_EQ(p, "/api");
  for (std::string bad : {"api", "/a/../b", "/..", "/./x", "//x", "/a b", "/a\nb"}) {
    EXPECT_FALSE(ValidatePathPrefix(bad).ok()) << bad;
  }
}

TEST(RouteClash, SameHostAndPrefixClashesOtherwiseNot) {
  App hello;
  hello.name = "hello";
  App thief;
  thief.name = "thief";
  thief.hosts = {"hello.localhost"};
  EXPECT_EQ(RouteClash(thief, {hello}), "hello");  // hello's default host
  thief.path_prefix = "/api";
  EXPECT_EQ(RouteClash(thief, {hello}), "");
  thief.path_prefix = "";
  thief.hosts = {"other.localhost"};
  EXPECT_EQ(RouteClash(thief, {hello}), "");
}

TEST(ValidateUpstream, TakesAnHttpHostAndPortOnly) {
  for (std::string ok : std::vector<std::string>{"", "http://10.0.0.5:8080", "http://shop.internal",
                                                 "HTTP://x:1/", "http://[::1]:9000"})
    EXPECT_TRUE(ValidateUpstream(ok).ok()) << ok;
  for (std::string bad :
       std::vector<std::string>{"https://x", "ftp://x", "x:80", "http://", "http://u:p@x",
                                "http://x?q=1", "http://x#f", "http://x:0", "http://x:65536",
                                "http://x:y", "http://a b", "http://x/" + std::string(2048, 'p')})
    EXPECT_EQ(ValidateUpstream(bad).code(), Code::kInvalid) << bad;
  auto s = ValidateUpstream("http://user:hunter2@x");
  EXPECT_EQ(s.message().find("hunter2"), std::string::npos) << s.message();
}

TEST(ValidateAppName, FollowsTheDocumentedShape) {
  EXPECT_TRUE(ValidateAppName("hello-2").ok());
  for (std::string bad :
       std::vector<std::string>{"", "Hello", "2x", "a_b", std::string(64, 'a'), "../x"})
    EXPECT_FALSE(ValidateAppName(bad).ok()) << bad;
}

}  // namespace
}  // namespace slipway
