// Upstream targets given by URL, and the sandbox a request is tapped under.
#include <gtest/gtest.h>

#include "gateway/tap.h"
#include "gateway/target.h"

namespace slipway::gateway {
namespace {

struct Good {
  std::string url, host;
  int port;
  std::string authority;
};

TEST(TargetFromUrl, ParsesHostPortAndKeepsTheAuthorityAsWritten) {
  for (const Good& g : std::vector<Good>{
           {"http://api.qa.localhost", "api.qa.localhost", 80, "api.qa.localhost"},
           {"http://api.qa.localhost/", "api.qa.localhost", 80, "api.qa.localhost"},
           {"http://Shared-Env.Example.com:8081/", "Shared-Env.Example.com", 8081,
            "Shared-Env.Example.com:8081"},
           {"HTTP://10.0.0.7:9000", "10.0.0.7", 9000, "10.0.0.7:9000"},
           {"http://[::1]:8080/", "::1", 8080, "[::1]:8080"},
           {"http://[2001:db8::5]", "2001:db8::5", 80, "[2001:db8::5]"},
           {"http://sandbox-qa_login-api:3000", "sandbox-qa_login-api", 3000,
            "sandbox-qa_login-api:3000"},
           {"http://example.com.:80", "example.com.", 80, "example.com.:80"},
       }) {
    auto t = TargetFromUrl("up", g.url);
    ASSERT_TRUE(t.ok()) << g.url << ": " << t.status().message();
    EXPECT_EQ((*t)->id(), "up");
    EXPECT_EQ((*t)->host(), g.host) << g.url;
    EXPECT_EQ((*t)->port(), g.port) << g.url;
    EXPECT_EQ((*t)->authority(), g.authority) << g.url;
  }
}

TEST(TargetFromUrl, RefusesWithAOneLineReason) {
  for (const std::string& bad : std::vector<std::string>{
           "",
           "api.localhost:80",                         // no scheme
           "https://api.example.com",                  // only http
           "ftp://api.example.com",                    // another scheme
           "http://",                                  // empty host
           "http://:8080",                             // empty host with a port
           "http:///path",                             // empty host with a path
           "http://user:secret@api.example.com",       // user info
           "http://user@api.example.com",              // user info
           "http://api.example.com:70000",             // port out of range
           "http://api.example.com:0",                 // port 0
           "http://api.example.com:",                  // empty port
           "http://api.example.com:80a",               // not a number
           "http://api.example.com:-80",               // a sign
           "http://api.example.com:000000080",         // too many digits
           "http://api.example.com/v1",                // a path other than "/"
           "http://api.example.com//",                 // still a path
           "http://api.example.com?x=1",               // a query
           "http://api.example.com/?x=1",              // a query after "/"
           "http://api.example.com#top",               // a fragment
           "http://api example.com",                   // a space
           "http://api.example.com\n",                 // a control character
           "http://-api.example.com",                  // a label starting with '-'
           "http://api..example.com",                  // an empty label
           "http://api.exa$mple.com",                  // a bad character
           "http://256.1.1.1",                         // not an IPv4 address
           "http://1.2.3",                             // not an IPv4 address either
           "http://[::1",                              // unclosed IPv6
           "http://[zz::1]:80",                        // not an IPv6 address
           "http://[::1]x",                            // junk after the IPv6 address
           "http://" + std::string(64, 'a') + ".com",  // a label over 63 bytes
       }) {
    auto t = TargetFromUrl("up", bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), Code::kInvalid) << bad;
    const std::string& why = t.status().message();
    EXPECT_FALSE(why.empty()) << bad;
    EXPECT_EQ(why.find('\n'), std::string::npos) << bad;
    EXPECT_EQ(why.find("secret"), std::string::npos) << "never quotes the URL: " << why;
  }
}

TEST(TargetFromUrl, SaysWhyHttpsIsRefused) {
  auto t = TargetFromUrl("up", "https://api.example.com");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("https"), std::string::npos) << t.status().message();
  auto u = TargetFromUrl("up", "http://user:pw@api.example.com");
  EXPECT_NE(u.status().message().find("user info"), std::string::npos) << u.status().message();
}

TEST(Target, AuthorityIsEmptyByDefault) {
  Target t("t", "127.0.0.1", 80);
  EXPECT_EQ(t.authority(), "");
  Target u("u", "10.0.0.1", 81, "api.internal:81");
  EXPECT_EQ(u.authority(), "api.internal:81");
  EXPECT_EQ(u.endpoint(), "10.0.0.1:81");
}

using Headers = std::vector<http1::HeaderField>;

TEST(SandboxOf, PrefersTheHeaderThenTheBaggageMember) {
  EXPECT_EQ(SandboxOf({}), "");
  EXPECT_EQ(SandboxOf(Headers{{"x-slipway-sandbox", "qa-login"}}), "qa-login");
  EXPECT_EQ(SandboxOf(Headers{{"Baggage", "userId=1, slipway-sandbox=qa%2Dpay;ttl=5"}}), "qa-pay");
  EXPECT_EQ(SandboxOf(Headers{{"baggage", "a=1"}, {"baggage", " slipway-sandbox = qa "}}), "qa");
  EXPECT_EQ(SandboxOf(Headers{{"baggage", "slipway-sandbox=from-baggage"},
                              {"X-Slipway-Sandbox", "from-header"}}),
            "from-header");
  EXPECT_EQ(SandboxOf(Headers{{"baggage", "other-slipway-sandbox=x, slipway-sandboxes=y"}}), "");
  EXPECT_EQ(SandboxOf(Headers{{"baggage", "slipway-sandbox=bad%zz"}}), "bad%zz");
}

}  // namespace
}  // namespace slipway::gateway
