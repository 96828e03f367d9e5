// Deployment notifications: the HMAC, the three bodies, target display and validation, the
// server's --notify file, and the Notifier against real receivers on 127.0.0.1 (the project's
// HTTP server, a listener that never answers, a port nobody listens on), its backoff driven by
// a FakeClock. Every wait for the worker is bounded, so a broken notifier fails a test instead
// of hanging it.
#include "notify/notifier.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crypto/crypto.h"
#include "net/http_server.h"
#include "notify/notify_file.h"
#include "store/sqlite_store.h"
#include "support/fake_clock.h"
#include "support/sockets.h"
#include "support/test_dir.h"

namespace slipway {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::ClosedPort;
using testing::FakeClock;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// What a deployment's targets carry that must never be shown: the URL's path and query, and
// the secret.
constexpr const char* kPathToken = "T0SECRETPATH";
constexpr const char* kQueryToken = "sigQUERYTOKEN";
constexpr const char* kSecret = "s3cret-SIGNING-key";

void ExpectNothingSecret(const std::string& text) {
  EXPECT_FALSE(Contains(text, kPathToken)) << text;
  EXPECT_FALSE(Contains(text, kQueryToken)) << text;
  EXPECT_FALSE(Contains(text, kSecret)) << text;
}

Notification RolledBack() {
  Notification n;
  n.event = "rolled_back";
  n.app = "hello";
  n.deployment_id = 12;
  n.release = 4;
  n.commit = "0123abcdef0123abcdef0123abcdef0123abcdef";
  n.status = "rolled_back";
  n.error = "rollout: stage 2 (beta) aborted: error rate 5.1% (12 of 236)";
  n.stage = "rollout";
  n.analysis = {{"stage", 2},
                {"canary", {{"requests", 236}, {"errors", 12}}},
                {"baseline", {{"requests", 2110}, {"errors", 0}}},
                {"verdict", "fail"},
                {"reason", "error rate increase 5.1% over 1.0%"}};
  n.time_ms = 1700000000000;
  return n;
}

// ---------------------------------------------------------------------------------------------
// HMAC

TEST(HmacTest, MatchesRfc4231) {
  // Test case 2: a key shorter than the block.
  EXPECT_EQ(crypto::HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 1: 20 bytes of 0x0b.
  EXPECT_EQ(crypto::HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 6: a key longer than the block is hashed first.
  EXPECT_EQ(crypto::HmacSha256Hex(std::string(131, '\xaa'),
                                  "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

// ---------------------------------------------------------------------------------------------
// Bodies

TEST(BodiesTest, WebhookBodyIsTheSpecsJson) {
  auto j = json::parse(WebhookBody(RolledBack()));
  EXPECT_EQ(j["event"], "rolled_back");
  EXPECT_EQ(j["app"], "hello");
  EXPECT_EQ(j["deployment_id"], 12);
  EXPECT_EQ(j["release"], 4);
  EXPECT_EQ(j["commit"], "0123abcdef0123abcdef0123abcdef0123abcdef");
  EXPECT_EQ(j["status"], "rolled_back");
  EXPECT_EQ(j["error"], "rollout: stage 2 (beta) aborted: error rate 5.1% (12 of 236)");
  EXPECT_EQ(j["stage"], "rollout");
  EXPECT_EQ(j["analysis"]["verdict"], "fail");
  EXPECT_EQ(j["analysis"]["canary"]["errors"], 12);
  EXPECT_EQ(j["time_ms"], 1700000000000LL);
  EXPECT_EQ(j.size(), 10u);

  Notification plain = RolledBack();
  plain.analysis = nullptr;
  EXPECT_TRUE(json::parse(WebhookBody(plain))["analysis"].is_null());
}

TEST(BodiesTest, BodiesStaySmallAndValidWhateverTheErrorHolds) {
  Notification n = RolledBack();
  n.error = std::string(100000, 'e') + "\xff\xfe";  // huge, and not UTF-8
  n.analysis = {{"junk", std::string(20000, 'x')}};
  for (const auto& body : {WebhookBody(n), SlackBody(n), TeamsBody(n)}) {
    EXPECT_LT(body.size(), 4000u);
    EXPECT_TRUE(json::accept(body)) << body.substr(0, 200);
  }
  auto j = json::parse(WebhookBody(n));
  EXPECT_TRUE(j["analysis"].is_null()) << "an analysis over 8 KiB is left out";
  EXPECT_TRUE(Contains(j["error"].get<std::string>(), "\u2026"));
}

TEST(BodiesTest, SlackBodyIsOneEscapedLine) {
  auto j = json::parse(SlackBody(RolledBack()));
  ASSERT_EQ(j.size(), 1u);
  std::string text = j["text"];
  EXPECT_EQ(text,
            "hello: deployment 12 rolled back (release 4, commit 0123abc, stage rollout): "
            "rollout: stage 2 (beta) aborted: error rate 5.1% (12 of 236)");

  Notification hostile = RolledBack();
  hostile.error = "build failed\n<!channel> see <https://evil.example|here> & more";
  std::string line = json::parse(SlackBody(hostile))["text"];
  EXPECT_FALSE(Contains(line, "\n"));
  EXPECT_FALSE(Contains(line, "<")) << line;
  EXPECT_FALSE(Contains(line, ">")) << line;
  EXPECT_TRUE(Contains(line, "&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; more"))
      << line;

  Notification by_analysis = RolledBack();
  by_analysis.error = "";
  std::string reason = json::parse(SlackBody(by_analysis))["text"];
  EXPECT_TRUE(Contains(reason, ": error rate increase 5.1% over 1.0%")) << reason;
}

TEST(BodiesTest, TeamsBodyIsAMessageCard) {
  auto card = json::parse(TeamsBody(RolledBack()));
  EXPECT_EQ(card["@type"], "MessageCard");
  EXPECT_EQ(card["@context"], "https://schema.org/extensions");
  EXPECT_EQ(card["summary"], "hello: deployment 12 rolled back");
  EXPECT_EQ(card["title"], "hello: deployment 12 rolled back");
  EXPECT_EQ(card["themeColor"], "D00000");
  ASSERT_EQ(card["sections"].size(), 1u);
  std::map<std::string, std::string> facts;
  for (const auto& f : card["sections"][0]["facts"]) facts[f["name"]] = f["value"];
  EXPECT_EQ(facts["App"], "hello");
  EXPECT_EQ(facts["Deployment"], "12");
  EXPECT_EQ(facts["Release"], "4");
  EXPECT_EQ(facts["Commit"], "0123abc");
  EXPECT_EQ(facts["Stage"], "rollout");
  EXPECT_EQ(facts["Status"], "rolled_back");
  EXPECT_EQ(facts["Error"], "rollout: stage 2 (beta) aborted: error rate 5.1% (12 of 236)");

  Notification ok = RolledBack();
  ok.event = ok.status = "succeeded";
  ok.error = "";
  ok.analysis = nullptr;
  auto green = json::parse(TeamsBody(ok));
  EXPECT_EQ(green["themeColor"], "2EB886");
  for (const auto& f : green["sections"][0]["facts"]) EXPECT_NE(f["name"], "Error");
  ok.event = "paused";
  EXPECT_EQ(json::parse(TeamsBody(ok))["themeColor"], "F2C744");
  ok.event = "started";
  EXPECT_EQ(json::parse(TeamsBody(ok))["themeColor"], "0078D7");
}

// ---------------------------------------------------------------------------------------------
// Targets

std::string SecretUrl(const std::string& base) {
  return base + "/services/" + kPathToken + "?sig=" + kQueryToken;
}

TEST(TargetTest, ShownTargetIsKindAndHostOnly) {
  NotifyTarget slack{"", "slack", SecretUrl("https://hooks.slack.com")};
  EXPECT_EQ(ShownTarget(slack), "slack hooks.slack.com");
  NotifyTarget hook{"ci", "webhook", SecretUrl("http://127.0.0.1:9999"), kSecret};
  EXPECT_EQ(ShownTarget(hook), "webhook 127.0.0.1");
  NotifyTarget userinfo{"", "teams", std::string("https://me:") + kSecret + "@example.com/x"};
  EXPECT_EQ(ShownTarget(userinfo), "teams ?");
  NotifyTarget junk{"", "carrier-pigeon", SecretUrl("ftp://example.com")};
  EXPECT_EQ(ShownTarget(junk), "? ?");
  for (const auto& t : {slack, hook, userinfo, junk}) ExpectNothingSecret(ShownTarget(t));
}

TEST(TargetTest, ValidateTargetAcceptsTheSpecsExamples) {
  NotifyTarget hook{"",
                    "webhook",
                    "http://127.0.0.1:9999/hook",
                    "s3cret",
                    {"started", "succeeded", "failed", "rolled_back", "aborted", "paused"}};
  EXPECT_TRUE(ValidateTarget(hook).ok()) << ValidateTarget(hook).ToString();
  NotifyTarget slack{"ops", "slack", SecretUrl("https://hooks.slack.com")};
  slack.apps = {"hello", "shop-2"};
  EXPECT_TRUE(ValidateTarget(slack).ok()) << ValidateTarget(slack).ToString();
  NotifyTarget teams{"", "teams", "https://example.webhook.office.com/webhookb2/x",
                     "", {},      "/etc/ssl/our-ca.pem"};
  EXPECT_TRUE(ValidateTarget(teams).ok()) << ValidateTarget(teams).ToString();
}

TEST(TargetTest, ValidateTargetRefusalsNameTheFieldAndNoSecret) {
  const std::string url = SecretUrl("https://hooks.example.com");
  struct Case {
    NotifyTarget target;
    std::string field;
  };
  auto with = [&](std::function<void(NotifyTarget&)> change) {
    NotifyTarget t{"", "webhook", url, kSecret};
    change(t);
    return t;
  };
  std::vector<Case> cases = {
      {with([](NotifyTarget& t) { t.kind = "email"; }), "kind:"},
      {with([](NotifyTarget& t) { t.kind = ""; }), "kind:"},
      {with([](NotifyTarget& t) { t.url = ""; }), "url:"},
      {with([&](NotifyTarget& t) { t.url = "ftp://example.com/" + std::string(kPathToken); }),
       "url:"},
      {with([&](NotifyTarget& t) { t.url = "https:///" + std::string(kPathToken); }), "url:"},
      {with([&](NotifyTarget& t) { t.url = url + std::string(3000, 'a'); }), "url:"},
      {with([&](NotifyTarget& t) { t.url = url + " x"; }), "url:"},
      {with([&](NotifyTarget& t) { t.url = url + "\r\nX-Injected: 1"; }), "url:"},
      {with([&](NotifyTarget& t) { t.url = "https://u:" + std::string(kSecret) + "@h.example/"; }),
       "url:"},
      {with([](NotifyTarget& t) { t.secret = std::string(257, 's'); }), "secret:"},
      {with([](NotifyTarget& t) { t.kind = "slack"; }), "secret:"},  // a secret for Slack
      {with([](NotifyTarget& t) {
         t.events = {"succeeded", "deployed"};
       }),
       "events:"},
      {with([](NotifyTarget& t) { t.events = std::vector<std::string>(17, "failed"); }), "events:"},
      {with([](NotifyTarget& t) { t.name = "ops team"; }), "name:"},
      {with([](NotifyTarget& t) { t.name = std::string(65, 'n'); }), "name:"},
      {with([](NotifyTarget& t) { t.apps = {"Hello"}; }), "apps:"},
      {with([](NotifyTarget& t) { t.apps = std::vector<std::string>(257, "a"); }), "apps:"},
      {with([](NotifyTarget& t) { t.ca_file = "relative/ca.pem"; }), "ca_file:"},
      {with([](NotifyTarget& t) {
         t.url = "http://127.0.0.1/hook";
         t.ca_file = "/etc/ca.pem";
       }),
       "ca_file:"},
  };
  for (const auto& c : cases) {
    Status s = ValidateTarget(c.target);
    ASSERT_FALSE(s.ok()) << c.field << " " << c.target.url.substr(0, 80);
    EXPECT_EQ(s.code(), Code::kInvalid);
    EXPECT_TRUE(s.message().starts_with(c.field)) << s.message();
    ExpectNothingSecret(s.message());
  }
}

// ---------------------------------------------------------------------------------------------
// The server's --notify file

TEST(NotifyFileTest, ReadsTargets) {
  auto targets = ParseNotifyFile(R"(
targets:
  - name: ops
    kind: slack
    url: https://hooks.slack.com/services/T0/B0/X
    events: [failed, rolled_back]
    apps: [hello]
  - kind: webhook
    url: https://ci.example.com/hook
    secret: "abc"
    ca_file: /etc/ssl/ci.pem
)",
                                 "notify.yaml");
  ASSERT_TRUE(targets.ok()) << targets.status().ToString();
  ASSERT_EQ(targets->size(), 2u);
  const auto& ops = (*targets)[0];
  EXPECT_EQ(ops.name, "ops");
  EXPECT_EQ(ops.kind, "slack");
  EXPECT_EQ(ops.url, "https://hooks.slack.com/services/T0/B0/X");
  EXPECT_EQ(ops.events, (std::vector<std::string>{"failed", "rolled_back"}));
  EXPECT_EQ(ops.apps, std::vector<std::string>{"hello"});
  const auto& ci = (*targets)[1];
  EXPECT_EQ(ci.secret, "abc");
  EXPECT_EQ(ci.ca_file, "/etc/ssl/ci.pem");
  EXPECT_TRUE(ci.events.empty());
  EXPECT_TRUE(ParseNotifyFile("", "notify.yaml")->empty());
  EXPECT_TRUE(ParseNotifyFile("targets:\n", "notify.yaml")->empty());
}

TEST(NotifyFileTest, ErrorsNameFileLineColumnAndNoSecret) {
  const std::string secret_url = SecretUrl("https://hooks.slack.com");
  struct Case {
    std::string text;
    std::string where;
    std::string says;
  };
  std::vector<Case> cases = {
      {"targets:\n  - kind: slack\n    url: " + SecretUrl("ftp://x.example") + "\n",
       "n.yaml:3:10:", "targets[0].url: the scheme must be"},
      {"targets:\n  - kind: slack\n    url: " + secret_url + "\n    secret: " + kSecret + "\n",
       "n.yaml:4:13:", "targets[0].secret:"},
      {"targets:\n  - kind: slack\n    url: " + secret_url + "\n    colour: red\n",
       "n.yaml:4:5:", "unknown key 'colour'"},
      {"targets:\n  - kind: slack\n    " + secret_url + ": x\n", "n.yaml:3:5:", "unknown key ("},
      {"targets:\n  - kind: slack\n    url: " + secret_url + "\n    url: " + secret_url + "\n",
       "n.yaml:4:5:", "duplicate key 'url'"},
      {"targets:\n  - kind: slack\n    url: " + secret_url + "\n    events: [deployed]\n",
       "n.yaml:4:13:", "unknown event 'deployed'"},
      {"targets:\n  - kind: slack\n", "n.yaml:2:5:", "targets[0].url: required"},
      {"targets: {kind: slack}\n", "n.yaml:1:10:", "targets: expected a list"},
      {"hooks: []\n", "n.yaml:1:1:", "unknown key 'hooks'"},
      {"targets:\n  - [kind, slack]\n", "n.yaml:2:5:", "expected a mapping"},
      {"targets:\n  - kind: slack\n    url: [" + secret_url + "\n", "n.yaml:", ""},  // syntax
      {"targets:\n  - {name: a, kind: slack, url: '" + secret_url +
           "'}\n  - {name: a, kind: slack, url: '" + secret_url + "'}\n",
       "n.yaml:3:5:", "duplicate name 'a'"},
  };
  std::string many = "targets:\n";
  for (int i = 0; i < 17; ++i) many += "  - {kind: slack, url: '" + secret_url + "'}\n";
  cases.push_back({many, "n.yaml:2:3:", "at most 16 targets"});
  std::string events = "targets:\n  - kind: slack\n    url: " + secret_url + "\n    events: [";
  for (int i = 0; i < 1000; ++i) events += "failed, ";
  cases.push_back({events + "failed]\n", "n.yaml:4:13:", "at most 16 entries"});
  cases.push_back({std::string(70 * 1024, '#'), "n.yaml:1:1:", "the limit is 65536 bytes"});

  for (const auto& c : cases) {
    auto r = ParseNotifyFile(c.text, "n.yaml");
    ASSERT_FALSE(r.ok()) << c.text.substr(0, 200);
    EXPECT_EQ(r.status().code(), Code::kInvalid);
    EXPECT_TRUE(r.status().message().starts_with(c.where)) << r.status().message();
    EXPECT_TRUE(Contains(r.status().message(), c.says)) << r.status().message();
    EXPECT_FALSE(Contains(r.status().message(), "\n")) << r.status().message();
    ExpectNothingSecret(r.status().message());
  }
}

TEST(NotifyFileTest, LoadChecksTheFileBeforeReadingIt) {
  auto missing = LoadNotifyFile("/nonexistent/notify.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  auto device = LoadNotifyFile("/dev/zero");
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), Code::kNotFound);

  auto path = std::filesystem::temp_directory_path() /
              ("slipway-notify-file-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(path) << "targets:\n  - kind: teams\n    url: https://example.com/x\n";
  auto loaded = LoadNotifyFile(path.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->size(), 1u);
  std::ofstream(path) << std::string(64 * 1024 + 1, '#');
  auto big = LoadNotifyFile(path.string());
  ASSERT_FALSE(big.ok());
  EXPECT_TRUE(big.status().message().starts_with(path.string() + ":1:1:"))
      << big.status().message();
  std::filesystem::remove(path);
}

// ---------------------------------------------------------------------------------------------
// The Notifier

// One request a receiver got, with the FakeClock's time when it came.
struct Received {
  net::HttpRequest req;
  Clock::time_point at;
};

// The project's HTTP server on 127.0.0.1, answering each request as `answer` says (given the
// request and how many came before it).
class Receiver {
 public:
  Receiver(Clock& clock, std::function<int(const net::HttpRequest&, int)> answer) : clock_(clock) {
    net::HttpServerOptions o;
    o.worker_threads = 4;
    auto server = net::HttpServer::Create(o, [this, answer](net::HttpRequest& req) {
      int before;
      {
        std::lock_guard lock(mu_);
        before = static_cast<int>(got_.size());
        got_.push_back({req, clock_.Now()});
      }
      net::HttpResponse res;
      res.status = answer(req, before);
      res.body = "{\"echo\": \"response bodies are never stored\"}";
      return res;
    });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    server_->Start();
  }
  ~Receiver() { server_->Stop(); }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }
  std::vector<Received> got() const {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  Clock& clock_;
  mutable std::mutex mu_;
  std::vector<Received> got_;
  std::unique_ptr<net::HttpServer> server_;
};

// Every log line, while the object lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("slipway-notifier");
    auto s = OpenSqliteStore((dir_ / "db").string(), clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    App a;
    a.name = "hello";
    a.repo = "/srv/hello";
    auto app = store_->CreateApp(a);
    ASSERT_TRUE(app.ok());
    Deployment d;
    d.app_id = app->id;
    auto created = store_->CreateDeployment(d);
    ASSERT_TRUE(created.ok());
    deployment_id_ = created->id;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  Notification Event(const std::string& event = "failed") const {
    Notification n = RolledBack();
    n.event = event;
    n.deployment_id = deployment_id_;
    return n;
  }
  std::vector<NotificationRecord> Records() const {
    auto list = store_->ListNotifications(deployment_id_, 1000);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    return list.ok() ? *list : std::vector<NotificationRecord>{};
  }
  // Waits (10 s at most, in real time) until every record is in a final state.
  bool WaitAllFinal(std::size_t count) const {
    auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      auto records = Records();
      bool done =
          records.size() == count && std::all_of(records.begin(), records.end(), [](const auto& r) {
            return r.status != "pending" && r.status != "retrying";
          });
      if (done) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  static void ExpectRecordsHoldNothingSecret(const std::vector<NotificationRecord>& records) {
    for (const auto& r : records) {
      ExpectNothingSecret(r.target);
      ExpectNothingSecret(r.last_error);
      ExpectNothingSecret(r.app + r.event + r.status);
    }
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::int64_t deployment_id_ = 0;
};

TEST_F(NotifierTest, RetriesWithBackoffUntilTheReceiverAcceptsAndSignsEachAttempt) {
  LogCapture logs;
  Receiver receiver(clock_,
                    [](const net::HttpRequest&, int before) { return before < 2 ? 500 : 202; });
  std::vector<Clock::duration> sleeps;
  clock_.on_sleep = [&sleeps](Clock::duration d) { sleeps.push_back(d); };
  {
    Notifier notifier(clock_, *store_);
    notifier.Start();
    NotifyTarget target{"ci", "webhook", receiver.Url(std::string("/hook/") + kPathToken), kSecret};
    notifier.Send({target}, Event("rolled_back"));
    ASSERT_TRUE(WaitAllFinal(1));
    notifier.Stop();
  }
  clock_.on_sleep = nullptr;

  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, "delivered");
  EXPECT_EQ(records[0].attempts, 3);
  EXPECT_EQ(records[0].http_status, 202);
  EXPECT_EQ(records[0].last_error, "");
  EXPECT_EQ(records[0].event, "rolled_back");
  EXPECT_EQ(records[0].app, "hello");
  EXPECT_EQ(records[0].target, "webhook 127.0.0.1");

  auto got = receiver.got();
  ASSERT_EQ(got.size(), 3u);
  // The backoff: 1 s after the first attempt, 2 s after the second, slept through the Clock.
  EXPECT_EQ(got[1].at - got[0].at, std::chrono::seconds(1));
  EXPECT_EQ(got[2].at - got[1].at, std::chrono::seconds(2));
  Clock::duration slept{0};
  for (auto d : sleeps) slept += d;
  EXPECT_EQ(slept, std::chrono::seconds(3));

  for (const auto& r : got) {
    const auto& req = r.req;
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.path, std::string("/hook/") + kPathToken);
    EXPECT_EQ(req.Header("content-type"), "application/json");
    EXPECT_EQ(req.Header("x-slipway-event"), "rolled_back");
    EXPECT_EQ(req.Header("x-slipway-signature"),
              "sha256=" + crypto::HmacSha256Hex(kSecret, req.body));
    auto body = json::parse(req.body);
    EXPECT_EQ(body["event"], "rolled_back");
    EXPECT_EQ(body["deployment_id"], deployment_id_);
    EXPECT_EQ(body["analysis"]["verdict"], "fail");
  }
  // One delivery id for the delivery, on every attempt: a receiver can drop repeats.
  std::string id = got[0].req.Header("x-slipway-delivery");
  EXPECT_EQ(id.size(), 36u) << id;
  EXPECT_EQ(got[1].req.Header("x-slipway-delivery"), id);
  EXPECT_EQ(got[2].req.Header("x-slipway-delivery"), id);

  ExpectRecordsHoldNothingSecret(records);
  ExpectNothingSecret(logs.text());
  // The check above saw the lines of every attempt, retries (debug) included.
  EXPECT_TRUE(Contains(logs.text(), "to webhook 127.0.0.1: attempt 2 failed (HTTP 500)"))
      << logs.text();
  EXPECT_TRUE(Contains(logs.text(), "delivered to webhook 127.0.0.1 (attempt 3)")) << logs.text();
}

TEST_F(NotifierTest, AReceiverThatIsDownFailsAfterSixAttempts) {
  LogCapture logs;
  Clock::duration slept{0};
  clock_.on_sleep = [&slept](Clock::duration d) { slept += d; };
  {
    Notifier notifier(clock_, *store_);
    notifier.Start();
    NotifyTarget target{"", "slack", SecretUrl("http://127.0.0.1:" + std::to_string(ClosedPort()))};
    notifier.Send({target}, Event());
    ASSERT_TRUE(WaitAllFinal(1));
  }
  clock_.on_sleep = nullptr;
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, "failed");
  EXPECT_EQ(records[0].attempts, 6);
  EXPECT_EQ(records[0].http_status, 0);
  EXPECT_TRUE(Contains(records[0].last_error, "Connection refused")) << records[0].last_error;
  EXPECT_EQ(records[0].target, "slack 127.0.0.1");
  EXPECT_EQ(slept, std::chrono::seconds(1 + 2 + 4 + 8 + 16));
  ExpectRecordsHoldNothingSecret(records);
  ExpectNothingSecret(logs.text());
}

TEST_F(NotifierTest, SendNeverWaitsForAHangingReceiverAndStopCutsTheAttempt) {
  // The receiver takes the request and then answers nothing until the test lets it.
  std::promise<void> arrived;
  std::atomic<bool> arrived_once{false};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Receiver receiver(clock_, [&](const net::HttpRequest&, int) {
    if (!arrived_once.exchange(true)) arrived.set_value();
    released.wait_for(20s);
    return 200;
  });
  NotifierOptions options;
  options.attempt_timeout = 60s;  // far longer than any bound below
  auto notifier = std::make_unique<Notifier>(clock_, *store_, options);
  notifier->Start();
  NotifyTarget target{"", "teams", SecretUrl(receiver.Url(""))};
  notifier->Send({target}, Event("started"));
  ASSERT_EQ(arrived.get_future().wait_for(10s), std::future_status::ready)
      << "the worker did not make its attempt";

  auto started = std::chrono::steady_clock::now();
  notifier->Send({target}, Event("failed"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s) << "Send waited for the network";
  EXPECT_EQ(notifier->backlog(), 2u);

  started = std::chrono::steady_clock::now();
  notifier->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "Stop waited for the attempt";
  release.set_value();

  auto records = Records();
  ASSERT_EQ(records.size(), 2u);
  for (const auto& r : records) {
    EXPECT_EQ(r.status, "failed");
    EXPECT_EQ(r.last_error, "abandoned: the server stopped");
    EXPECT_EQ(r.attempts, 0) << "a cut attempt is not counted";
  }
  notifier->Send({target}, Event("succeeded"));
  records = Records();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].status, "failed");
  EXPECT_EQ(records[2].last_error, "abandoned: the notifier is stopped");
  notifier->Stop();  // idempotent
  notifier.reset();
  ExpectRecordsHoldNothingSecret(records);
}

TEST_F(NotifierTest, TheQueueBoundDropsTheOldest) {
  Receiver receiver(clock_, [](const net::HttpRequest&, int) { return 200; });
  NotifierOptions options;
  options.max_queue = 3;
  Notifier notifier(clock_, *store_, options);
  NotifyTarget target{"", "webhook", receiver.Url("/q")};
  for (const char* event : {"started", "paused", "aborted", "rolled_back", "failed"})
    notifier.Send({target}, Event(event));  // not started yet: all wait
  EXPECT_EQ(notifier.backlog(), 3u);
  auto records = Records();
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[0].status, "dropped");
  EXPECT_EQ(records[1].status, "dropped");
  EXPECT_TRUE(Contains(records[0].last_error, "more than 3")) << records[0].last_error;
  for (std::size_t i = 2; i < 5; ++i) EXPECT_EQ(records[i].status, "pending");

  notifier.Start();
  ASSERT_TRUE(WaitAllFinal(5));
  records = Records();
  for (std::size_t i = 2; i < 5; ++i) EXPECT_EQ(records[i].status, "delivered");
  auto got = receiver.got();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].req.Header("x-slipway-event"), "aborted");
  EXPECT_EQ(got[1].req.Header("x-slipway-event"), "rolled_back");
  EXPECT_EQ(got[2].req.Header("x-slipway-event"), "failed");
}

TEST_F(NotifierTest, EventsAndServerTargetsChooseWhoIsTold) {
  Receiver receiver(clock_, [](const net::HttpRequest&, int) { return 200; });
  Notifier notifier(clock_, *store_);
  NotifyTarget everyone{"all", "webhook", receiver.Url("/all")};
  NotifyTarget for_hello{"hello-only", "slack", receiver.Url("/hello")};
  for_hello.apps = {"hello"};
  NotifyTarget for_other{"other-only", "teams", receiver.Url("/other")};
  for_other.apps = {"other"};
  NotifyTarget failures{"failures", "webhook", receiver.Url("/failures")};
  failures.events = {"failed"};
  notifier.AddServerTargets({everyone, for_hello, for_other, failures});
  NotifyTarget own{"", "webhook", receiver.Url("/own")};
  own.events = {"succeeded"};
  notifier.Start();
  notifier.Send({own}, Event("succeeded"));
  ASSERT_TRUE(WaitAllFinal(3));
  std::multiset<std::string> paths;
  for (const auto& r : receiver.got()) paths.insert(r.req.path);
  EXPECT_EQ(paths, (std::multiset<std::string>{"/own", "/all", "/hello"}));
  auto got = receiver.got();
  for (const auto& r : got) {
    auto body = json::parse(r.req.body);
    if (r.req.path == "/hello") {
      EXPECT_TRUE(body.contains("text")) << "the Slack target gets Slack's body";
    } else {
      EXPECT_EQ(body["event"], "succeeded");
    }
    EXPECT_EQ(r.req.Header("x-slipway-signature"), "") << "no secret, no signature";
  }
}

TEST_F(NotifierTest, AnInvalidTargetIsRecordedFailedAndSentNothing) {
  LogCapture logs;
  Notifier notifier(clock_, *store_);
  notifier.Start();
  NotifyTarget bad{"", "slack", SecretUrl("https://hooks.slack.com"),
                   kSecret};  // secret: webhook only
  NotifyTarget ftp{"", "webhook", SecretUrl("ftp://files.example.com")};
  notifier.Send({bad, ftp}, Event());
  auto records = Records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].status, "failed");
  EXPECT_TRUE(records[0].last_error.starts_with("invalid target: secret:"))
      << records[0].last_error;
  EXPECT_EQ(records[0].target, "slack hooks.slack.com");
  EXPECT_EQ(records[1].status, "failed");
  EXPECT_TRUE(records[1].last_error.starts_with("invalid target: url:")) << records[1].last_error;
  EXPECT_EQ(notifier.backlog(), 0u);
  ExpectRecordsHoldNothingSecret(records);
  ExpectNothingSecret(logs.text());
}

TEST_F(NotifierTest, AThrowOnTheWorkerDoesNotEndIt) {
  Receiver receiver(clock_,
                    [](const net::HttpRequest&, int before) { return before == 0 ? 503 : 200; });
  std::atomic<bool> thrown{false};
  clock_.on_sleep = [&thrown](Clock::duration) {
    if (!thrown.exchange(true)) throw std::runtime_error("clock broke");
  };
  {
    Notifier notifier(clock_, *store_);
    notifier.Start();
    notifier.Send({NotifyTarget{"", "webhook", receiver.Url("/x")}}, Event());
    ASSERT_TRUE(WaitAllFinal(1));
  }
  clock_.on_sleep = nullptr;
  EXPECT_TRUE(thrown.load());
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, "delivered");
  EXPECT_EQ(records[0].attempts, 2);
}

}  // namespace
}  // namespace slipway
