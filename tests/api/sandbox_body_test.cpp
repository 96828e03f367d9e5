#include "api/sandbox_body.h"

#include <gtest/gtest.h>

namespace slipway::api {
namespace {

using json = nlohmann::json;

json Good() {
  return json::parse(R"({"name": "qa-login", "environment": "staging", "entry": "web",
    "services": [{"name": "web", "branch": "feature/login", "memory": "256MiB", "cpus": 0.5},
                 {"name": "account", "upstream": true}],
    "memory": "1GiB", "cpus": 2, "expire_after": "12h"})");
}

// The message of a refused body ("" when it was accepted).
std::string Refusal(const json& body) {
  auto spec = ParseSandboxSpec(body);
  return spec.ok() ? "" : spec.status().message();
}

TEST(ParseSandboxSpec, ReadsEveryField) {
  auto spec = ParseSandboxSpec(Good());
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->name, "qa-login");
  EXPECT_EQ(spec->environment, "staging");
  EXPECT_EQ(spec->entry, "web");
  ASSERT_EQ(spec->services.size(), 2u);
  EXPECT_EQ(spec->services[0].branch, "feature/login");
  EXPECT_EQ(spec->services[0].memory_bytes, 256LL << 20);
  EXPECT_DOUBLE_EQ(spec->services[0].cpus, 0.5);
  EXPECT_EQ(spec->services[1].branch, "");
  EXPECT_EQ(spec->services[1].route, "upstream");
  EXPECT_EQ(spec->memory_bytes, 1LL << 30);
  EXPECT_DOUBLE_EQ(spec->cpus, 2);
  EXPECT_EQ(spec->expire_after_ms, 12LL * 3600 * 1000);
}

TEST(ParseSandboxSpec, DefaultsAreZeroAndATemplateMayStandForTheServices) {
  auto spec = ParseSandboxSpec(json{{"name", "a"}, {"template", "checkout"}});
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->template_name, "checkout");
  EXPECT_TRUE(spec->services.empty());
  EXPECT_EQ(spec->memory_bytes, 0);
  EXPECT_EQ(spec->cpus, 0);
  EXPECT_EQ(spec->expire_after_ms, 0);
  EXPECT_NE(Refusal(json{{"name", "a"}}), "");  // neither services nor a template
}

TEST(ParseSandboxSpec, AWrongTypeIsRefusedNamingTheField) {
  struct Case {
    const char* field;
    json value;
  };
  for (const auto& [field, value] : std::vector<Case>{{"name", 5},
                                                      {"name", json::array()},
                                                      {"template", true},
                                                      {"environment", 1.5},
                                                      {"entry", json::object()},
                                                      {"services", "web"},
                                                      {"services", json::object()},
                                                      {"memory", true},
                                                      {"memory", 1.5e9},
                                                      {"cpus", "2"},
                                                      {"cpus", false},
                                                      {"expire_after", 14}}) {
    json body = Good();
    body[field] = value;
    EXPECT_NE(Refusal(body).find(field), std::string::npos) << field << " = " << value.dump();
  }
  json body = Good();
  body["services"][0]["branch"] = 7;
  EXPECT_NE(Refusal(body).find("services[0].branch"), std::string::npos);
  body = Good();
  body["services"][1]["upstream"] = "yes";
  EXPECT_NE(Refusal(body).find("services[1].upstream"), std::string::npos);
  body = Good();
  body["services"][1] = "account";
  EXPECT_NE(Refusal(body).find("services[1]"), std::string::npos);
}

TEST(ParseSandboxSpec, UnknownFieldsAreRefused) {
  json body = Good();
  body["expire-after"] = "1d";
  EXPECT_NE(Refusal(body).find("expire-after"), std::string::npos);
  body = Good();
  body["services"][0]["port"] = 80;
  EXPECT_NE(Refusal(body).find("services[0].port"), std::string::npos);
}

TEST(ParseSandboxSpec, HostileValuesAreRefused) {
  json many = Good();
  many["services"] = json::array();
  for (int i = 0; i < 1000; ++i)
    many["services"].push_back({{"name", "s" + std::to_string(i)}, {"branch", "main"}});
  EXPECT_NE(Refusal(many).find("at most 32"), std::string::npos);
  for (json memory :
       {json(-1), json(0), json(1), json("-5MiB"), json("1PiB"), json("2TiB"),
        json("999999999999999999999"), json(18446744073709551615ULL),
        json(std::numeric_limits<std::int64_t>::min()), json("12 MiB"), json("MiB"), json("")}) {
    json body = Good();
    body["memory"] = memory;
    EXPECT_NE(Refusal(body), "") << memory.dump();
  }
  for (json cpus : {json(1e308), json(-1), json(0), json(0.001), json(65), json(-1e308)}) {
    json body = Good();
    body["cpus"] = cpus;
    EXPECT_NE(Refusal(body), "") << cpus.dump();
  }
  for (json expire : {json("0d"), json("-1d"), json("14"), json("1y"), json("99999d")}) {
    json body = Good();
    body["expire_after"] = expire;
    EXPECT_NE(Refusal(body), "") << expire.dump();
  }
}

TEST(ParseSandboxSpec, NamesAreCheckedBeforeAnyPathIsMadeOfThem) {
  for (const std::string& bad : std::vector<std::string>{
           "", "a/b", "../x", "Caps", "1abc", "a b", "a.b", "a\nb", std::string(33, 'a'), "-a"}) {
    json body = Good();
    body["name"] = bad;
    EXPECT_NE(Refusal(body), "") << bad;
  }
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b/../../x", "we b", "Web", std::string(64, 'w')}) {
    json body = Good();
    body["services"][0]["name"] = bad;
    body["entry"] = nullptr;
    EXPECT_NE(Refusal(body), "") << bad;
  }
  json body = Good();
  body["template"] = "../t";
  EXPECT_NE(Refusal(body), "");
}

TEST(ParseSandboxSpec, AServiceHasABranchOrIsUpstreamAndAppearsOnce) {
  json body = Good();
  body["services"][0]["upstream"] = true;  // and a branch
  EXPECT_NE(Refusal(body), "");
  body = Good();
  body["services"][1]["upstream"] = false;  // and no branch
  EXPECT_NE(Refusal(body), "");
  body = Good();
  body["services"][0]["branch"] = "bad..ref";
  EXPECT_NE(Refusal(body), "");
  body = Good();
  body["services"][1] = body["services"][0];
  EXPECT_NE(Refusal(body).find("twice"), std::string::npos);
  body = Good();
  body["entry"] = "payment";
  EXPECT_NE(Refusal(body).find("entry"), std::string::npos);
}

// 5000 nested arrays, built and moved into place: a copy of such a value recurses once per
// level (the parser and the checks do not), which a sanitizer's larger frames overflow.
json Deep() {
  json deep = json::array();
  for (int i = 0; i < 5000; ++i) {
    json outer = json::array();
    outer.push_back(std::move(deep));
    deep = std::move(outer);
  }
  return deep;
}

TEST(ParseSandboxSpec, DeepNestingIsAWrongTypeNotACrash) {
  json body = Good();
  body["services"][0]["name"] = Deep();
  EXPECT_NE(Refusal(body).find("services[0].name"), std::string::npos);
  body = Good();
  json services = json::array();
  services.push_back(Deep());
  body["services"] = std::move(services);
  EXPECT_NE(Refusal(body).find("services[0]"), std::string::npos);
  EXPECT_NE(Refusal(Deep()), "");  // not an object at all
}

TEST(ParseMemorySize, BinaryUnitsAndBytes) {
  EXPECT_EQ(*ParseMemorySize("268435456"), 268435456);
  EXPECT_EQ(*ParseMemorySize("256MiB"), 256LL << 20);
  EXPECT_EQ(*ParseMemorySize("256M"), 256LL << 20);
  EXPECT_EQ(*ParseMemorySize("1GiB"), 1LL << 30);
  EXPECT_EQ(*ParseMemorySize("1T"), 1LL << 40);
  EXPECT_EQ(*ParseMemorySize("4096KiB"), 4LL << 20);
  for (const char* bad : {"1mib", "1 GiB", "1.5GiB", "GiB", "3MiB", "1025GiB", "0", "+1GiB"})
    EXPECT_FALSE(ParseMemorySize(bad).ok()) << bad;
}

TEST(ParseTemplateBody, RendersTheServiceForm) {
  auto body = ParseTemplateBody(json::parse(R"({"services": [{"name": "web", "branch": "dev"},
      {"name": "account", "upstream": true}], "memory": 268435456, "entry": "web"})"));
  ASSERT_TRUE(body.ok()) << body.status().message();
  EXPECT_EQ((*body)["services"][0]["branch"], "dev");
  EXPECT_EQ((*body)["services"][1]["branch"], "");
  EXPECT_EQ((*body)["memory_bytes"], 268435456);
  EXPECT_EQ((*body)["entry"], "web");
  EXPECT_FALSE(ParseTemplateBody(json::object()).ok());  // services are required
  EXPECT_FALSE(ParseTemplateBody(json{{"services", json::array()}, {"name", "x"}}).ok());
  EXPECT_FALSE(ParseTemplateBody(json{{"services", json::array()}, {"expire_after", "1d"}}).ok());
}

TEST(TemplateView, ShowsUpstreamServicesAndSurvivesABadStoredBody) {
  SandboxTemplate t;
  t.name = "checkout";
  t.body_json = R"({"services": [{"name": "web", "branch": "dev"}, {"name": "account",
      "branch": ""}], "environment": 5, "cpus": 1.5})";
  json v = TemplateView(t);
  EXPECT_EQ(v["services"][0]["branch"], "dev");
  EXPECT_EQ(v["services"][1]["upstream"], true);
  EXPECT_EQ(v["environment"], "");
  EXPECT_EQ(v["cpus"], 1.5);
  t.body_json = "not json";
  EXPECT_EQ(TemplateView(t)["services"], json::array());
}

TEST(SnapshotView, NeverShowsTheBody) {
  SandboxSnapshot s;
  s.id = 3;
  s.sandbox = "qa";
  s.body_json = R"({"environment": {"secrets": {"DB_PASSWORD": "hunter22"}}})";
  EXPECT_EQ(SnapshotView(s).dump().find("hunter22"), std::string::npos);
  EXPECT_EQ(SnapshotView(s)["id"], 3);
}

}  // namespace
}  // namespace slipway::api
