// Adapters tested against the real published payloads in tests/fixtures/webhooks, signed
// the way each provider signs them (see that folder's README).
#include "webhook/webhook.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace slipway::webhook {
namespace {

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(SLIPWAY_FIXTURES) + "/webhooks/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Hmac, MatchesGithubDocumentedVector) {
  EXPECT_EQ(HmacSha256Hex("It's a Secret to Everybody", "Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST(Hmac, MatchesCrossCheckedGithubPushSignature) {
  EXPECT_EQ(HmacSha256Hex("It's a Secret to Everybody", Fixture("github/push.json")),
            "7a1a981aa74f9bc7a646b686d0ca21695f575185bc980d7803d7300495d2d590");
}

TEST(Verify, GithubSha256PrefixOverRawBytes) {
  std::string body = Fixture("github/push.json");
  std::string secret = "s3cret";
  HeaderMap h{{"x-hub-signature-256", "sha256=" + HmacSha256Hex(secret, body)}};
  EXPECT_TRUE(VerifySignature("github", h, body, secret).ok());
  EXPECT_EQ(VerifySignature("github", h, body + "\n", secret).code(), Code::kUnauthorized);
  EXPECT_EQ(VerifySignature("github", h, body, "other").code(), Code::kUnauthorized);
  h["x-hub-signature-256"] = HmacSha256Hex(secret, body);  // missing prefix
  EXPECT_EQ(VerifySignature("github", h, body, secret).code(), Code::kUnauthorized);
  EXPECT_EQ(VerifySignature("github", {}, body, secret).code(), Code::kUnauthorized);
}

TEST(Verify, GiteaAndForgejoBareHex) {
  std::string body = Fixture("gitea/push.json");
  HeaderMap gitea{{"x-gitea-signature", HmacSha256Hex("k", body)}};
  EXPECT_TRUE(VerifySignature("gitea", gitea, body, "k").ok());
  std::string fbody = Fixture("forgejo/push.json");
  HeaderMap forgejo{{"x-forgejo-signature", HmacSha256Hex("k", fbody)}};
  EXPECT_TRUE(VerifySignature("forgejo", forgejo, fbody, "k").ok());
  HeaderMap gitea_only{{"x-gitea-signature", HmacSha256Hex("k", fbody)}};
  EXPECT_TRUE(VerifySignature("forgejo", gitea_only, fbody, "k").ok())
      << "Forgejo also sends Gitea headers";
  HeaderMap empty_sig{{"x-gitea-signature", ""}};
  EXPECT_EQ(VerifySignature("gitea", empty_sig, body, "k").code(), Code::kUnauthorized);
}

TEST(Verify, GitlabTokenAndBitbucketSha256) {
  std::string body = Fixture("gitlab/push.json");
  EXPECT_TRUE(VerifySignature("gitlab", {{"x-gitlab-token", "tok"}}, body, "tok").ok());
  EXPECT_EQ(VerifySignature("gitlab", {{"x-gitlab-token", "tok2"}}, body, "tok").code(),
            Code::kUnauthorized);
  std::string bb = Fixture("bitbucket/repo_push-4.json");
  EXPECT_TRUE(VerifySignature("bitbucket",
                              {{"x-hub-signature", "sha256=" + HmacSha256Hex("k", bb)}}, bb, "k")
                  .ok());
}

TEST(Parse, GiteaPush) {
  auto d = ParseDelivery("gitea", {{"x-gitea-event", "push"}, {"x-gitea-delivery", "abc"}},
                         Fixture("gitea/push.json"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_TRUE(d->push);
  EXPECT_EQ(d->delivery_id, "abc");
  EXPECT_EQ(d->push->branch, "main");
  EXPECT_EQ(d->push->commit, "29be01c073851cf0db0c6a466e396b725a670453");
  EXPECT_FALSE(d->push->deleted);
}

TEST(Parse, GithubPushTagAndDeletion) {
  HeaderMap h{{"x-github-event", "push"}, {"x-github-delivery", "g1"}};
  auto push = ParseDelivery("github", h, Fixture("github/push.json"));
  ASSERT_TRUE(push.ok());
  EXPECT_EQ(push->push->branch, "main");
  EXPECT_EQ(push->push->commit, "366701fde727cb7a9e7f21eb88264f59f6f9b89c");
  auto tag = ParseDelivery("github", h, Fixture("github/push-2.json"));
  ASSERT_TRUE(tag.ok());
  EXPECT_EQ(tag->push->branch, "") << "a tag is not a branch";
  auto deleted = ParseDelivery("github", h, Fixture("github/push-3.json"));
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->push->deleted);
  auto ping = ParseDelivery("github", {{"x-github-event", "ping"}}, Fixture("github/ping.json"));
  ASSERT_TRUE(ping.ok());
  EXPECT_TRUE(ping->ping);
  auto pr = ParseDelivery("github", {{"x-github-event", "pull_request"}},
                          Fixture("github/pull_request.json"));
  ASSERT_TRUE(pr.ok());
  EXPECT_FALSE(pr->push.has_value());
}

TEST(Parse, EveryForgejoPushFixture) {
  for (const char* f :
       {"forgejo/push.json", "forgejo/push-2.json", "forgejo/push-3.json", "forgejo/push-4.json"}) {
    auto d = ParseDelivery("forgejo", {{"x-forgejo-event", "push"}}, Fixture(f));
    ASSERT_TRUE(d.ok()) << f << ": " << d.status().ToString();
    ASSERT_TRUE(d->push) << f;
    EXPECT_EQ(d->push->commit.size(), 40u) << f;
  }
}

TEST(Parse, GitlabAndBitbucketPushes) {
  auto gl = ParseDelivery("gitlab", {{"x-gitlab-event", "Push Hook"}, {"x-gitlab-event-uuid", "u"}},
                          Fixture("gitlab/push.json"));
  ASSERT_TRUE(gl.ok());
  EXPECT_EQ(gl->push->branch, "main");
  EXPECT_EQ(gl->delivery_id, "u");
  auto bb = ParseDelivery("bitbucket", {{"x-event-key", "repo:push"}},
                          Fixture("bitbucket/repo_push.json"));
  ASSERT_TRUE(bb.ok());
  EXPECT_EQ(bb->push->branch, "main");
  EXPECT_EQ(bb->push->commit, "c14c1bb05dfb1fdcdf06b31485fff61b0ea44277");
}

TEST(Parse, RejectsMalformedInput) {
  EXPECT_EQ(ParseDelivery("gitea", {{"x-gitea-event", "push"}}, "{\"ref\": ").status().code(),
            Code::kInvalid);
  EXPECT_EQ(ParseDelivery("gitea", {{"x-gitea-event", "push"}}, "[1,2]").status().code(),
            Code::kInvalid);
  EXPECT_EQ(ParseDelivery("gitea", {}, "{}").status().code(), Code::kInvalid) << "no event header";
  EXPECT_EQ(ParseDelivery("gitea", {{"x-gitea-event", "push"}}, R"({"ref":"refs/heads/main"})")
                .status()
                .code(),
            Code::kInvalid)
      << "push without a commit";
  EXPECT_EQ(ParseDelivery("svn", {}, "{}").status().code(), Code::kNotFound);
}

TEST(ConstantTime, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

}  // namespace
}  // namespace slipway::webhook
