// The proxy in-process against real loopback backends: listeners opened and closed at run
// time, upstream targets given by URL, and the request tap.
#include "gateway/proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "gateway/resolve.h"
#include "support/sockets.h"

namespace slipway::gateway {
namespace {

using namespace std::chrono_literals;

// A loopback HTTP server on a free port: answers every request with 200 and its name as the
// body (after `delay`), then closes the connection, and keeps the request heads it saw.
class Backend {
 public:
  explicit Backend(std::string name, const char* address = "127.0.0.1",
                   std::chrono::milliseconds delay = {})
      : name_(std::move(name)), delay_(delay) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, address, &addr.sin_addr);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 64) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      return;
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Backend() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }

  int port() const { return port_; }
  std::vector<std::string> heads() const {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void Serve() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string in;
      char buf[4096];
      while (in.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        heads_.push_back(in.substr(0, in.find("\r\n\r\n") + 2));
      }
      std::this_thread::sleep_for(delay_);
      std::string out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(name_.size()) +
                        "\r\nConnection: close\r\n\r\n" + name_;
      ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  std::string name_;
  std::chrono::milliseconds delay_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> heads_;
};

// A blocking client connection to 127.0.0.1:port.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) error_ = errno;
  }
  ~Client() { ::close(fd_); }
  int error() const { return error_; }  // connect's errno, 0 when connected

  struct Response {
    int status = 0;
    std::string head, body;
  };

  // Sends a GET and reads one response (Content-Length framed). status 0 on failure.
  Response Get(std::string_view host, std::string_view extra = "", bool close = true) {
    if (!Send(host, extra, close)) return {};
    return Receive();
  }

  bool Send(std::string_view host, std::string_view extra = "", bool close = true) {
    std::string req = "GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n" + std::string(extra) +
                      (close ? "Connection: close\r\n" : "") + "\r\n";
    return ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  }

  Response Receive() {
    Response r;
    std::string in;
    std::size_t end;
    while ((end = in.find("\r\n\r\n")) == std::string::npos)
      if (!Read(in)) return r;
    r.head = in.substr(0, end + 2);
    std::size_t length = 0;
    if (auto at = Lower(r.head).find("content-length:"); at != std::string::npos)
      length = std::stoul(r.head.substr(at + 15));
    while (in.size() < end + 4 + length)
      if (!Read(in)) return r;
    r.body = in.substr(end + 4, length);
    r.status = std::stoi(r.head.substr(9, 3));
    return r;
  }

  // True when the gateway closes the connection within `within` (EOF or reset).
  bool ClosedWithin(std::chrono::milliseconds within) {
    timeval tv{0, static_cast<suseconds_t>(within.count() * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

 private:
  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  bool Read(std::string& in) {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  int fd_ = -1;
  int error_ = 0;
};

Client::Response Get(int port, std::string_view host, std::string_view extra = "") {
  Client c(port);
  return c.Get(host, extra);
}

std::shared_ptr<Target> To(const Backend& b, std::string id) {
  return std::make_shared<Target>(std::move(id), "127.0.0.1", b.port());
}

Route AnyHost(std::string app, std::string listener, std::shared_ptr<Target> target) {
  Route r;
  r.app = std::move(app);
  r.hosts = {"*"};
  r.listener = std::move(listener);
  r.target = std::move(target);
  return r;
}

ProxyOptions Options() {
  ProxyOptions o;
  o.port = 0;
  o.threads = 2;
  o.connect_timeout = 1000ms;
  return o;
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.SetRoute(AnyHost("main-app", "", To(main_backend, "main")));
    router.SetRoutesOf("qa", {AnyHost("qa-app", "qa", To(qa_backend, "qa"))});
  }
  std::unique_ptr<Proxy> Started(ProxyOptions o = Options()) {
    auto proxy = Proxy::Create(std::move(o), router);
    EXPECT_TRUE(proxy.ok()) << proxy.status().message();
    if (!proxy.ok()) return nullptr;
    (*proxy)->Start();
    return std::move(*proxy);
  }

  Backend main_backend{"main"};
  Backend qa_backend{"qa"};
  Router router;
};

TEST_F(ProxyTest, AddedListenerServesItsRouteSetUntilRemovedAndTheSamePortOpensAgain) {
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  auto port = proxy->AddListener({"127.0.0.1", 0, "qa"});
  ASSERT_TRUE(port.ok()) << port.status().message();
  ASSERT_NE(*port, 0);
  EXPECT_EQ(proxy->ports(), (std::vector<int>{proxy->port(), *port}));

  EXPECT_EQ(Get(*port, "anything").body, "qa");
  EXPECT_EQ(Get(proxy->port(), "anything").body, "main");
  EXPECT_EQ(proxy->Requests(*port), 1u);
  EXPECT_EQ(proxy->Requests(proxy->port()), 1u);

  ASSERT_TRUE(proxy->RemoveListener(*port));
  EXPECT_EQ(Client(*port).error(), ECONNREFUSED);
  EXPECT_FALSE(proxy->RemoveListener(*port));
  EXPECT_EQ(proxy->Requests(*port), 0u);
  EXPECT_EQ(proxy->ports(), std::vector<int>{proxy->port()});

  auto again = proxy->AddListener({"127.0.0.1", *port, "qa"});
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, *port);
  EXPECT_EQ(Get(*port, "anything").body, "qa");
  EXPECT_EQ(proxy->Requests(*port), 1u) << "counted since it was opened again";
  EXPECT_EQ(Get(proxy->port(), "x").body, "main");
}

TEST_F(ProxyTest, AddListenerOnATakenPortIsUnavailable) {
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  testing::SilentListener taken;
  ASSERT_NE(taken.port(), 0);
  auto port = proxy->AddListener({"127.0.0.1", taken.port(), "qa"});
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), Code::kUnavailable);
  EXPECT_NE(port.status().message().find(std::to_string(taken.port())), std::string::npos)
      << port.status().message();
  auto main_port = proxy->AddListener({"127.0.0.1", proxy->port(), "qa"});
  EXPECT_EQ(main_port.status().code(), Code::kUnavailable);
  auto bad = proxy->AddListener({"not-an-address", 0, "qa"});
  EXPECT_EQ(bad.status().code(), Code::kInvalid);
  EXPECT_EQ(proxy->ports().size(), 1u);
}

TEST_F(ProxyTest, TheMainListenerCannotBeRemoved) {
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  EXPECT_FALSE(proxy->RemoveListener(proxy->port()));
  EXPECT_FALSE(proxy->RemoveListener(1));
  EXPECT_EQ(Get(proxy->port(), "x").body, "main");
}

TEST_F(ProxyTest, ListenersAddedBeforeStartAcceptFromStart) {
  auto created = Proxy::Create(Options(), router);
  ASSERT_TRUE(created.ok());
  auto& proxy = *created;
  auto port = proxy->AddListener({"127.0.0.1", 0, "qa"});
  ASSERT_TRUE(port.ok());
  auto gone = proxy->AddListener({"127.0.0.1", 0, "qa"});
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(proxy->RemoveListener(*gone));  // never accepted: closed at once
  EXPECT_EQ(Client(*gone).error(), ECONNREFUSED);
  proxy->Start();
  EXPECT_EQ(Get(*port, "x").body, "qa");
  EXPECT_EQ(Client(*gone).error(), ECONNREFUSED);
}

TEST_F(ProxyTest, ListenersFromTheOptionsCanBeRemovedToo) {
  ProxyOptions o = Options();
  o.extra.push_back({"127.0.0.1", 0, "qa"});
  auto proxy = Started(o);
  ASSERT_TRUE(proxy);
  ASSERT_EQ(proxy->ports().size(), 2u);
  int port = proxy->ports()[1];
  EXPECT_EQ(Get(port, "x").body, "qa");
  EXPECT_TRUE(proxy->RemoveListener(port));
  EXPECT_EQ(Client(port).error(), ECONNREFUSED);
}

// Waits up to 5 s for `done`.
template <typename F>
bool Eventually(F&& done) {
  for (auto until = std::chrono::steady_clock::now() + 5s; !done();) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST_F(ProxyTest, OpenConnectionsOfARemovedListenerFinishTheirRequestThenClose) {
  Backend slow("slow", "127.0.0.1", 300ms);
  router.SetRoutesOf("slow", {AnyHost("slow-app", "slow", To(slow, "slow"))});
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  auto port = proxy->AddListener({"127.0.0.1", 0, "slow"});
  ASSERT_TRUE(port.ok());
  Client idle(*port);
  EXPECT_EQ(idle.Get("x", "", /*close=*/false).body, "slow");
  Client busy(*port);
  ASSERT_TRUE(busy.Send("x", "", /*close=*/false));
  ASSERT_TRUE(Eventually([&] { return slow.heads().size() == 2; }));
  ASSERT_TRUE(proxy->RemoveListener(*port));
  EXPECT_EQ(Client(*port).error(), ECONNREFUSED);
  EXPECT_EQ(busy.Receive().body, "slow") << "the request under way is answered";
  EXPECT_TRUE(busy.ClosedWithin(2000ms));
  EXPECT_TRUE(idle.ClosedWithin(2000ms)) << "an idle kept-alive connection is closed";
}

TEST_F(ProxyTest, ManyListenersComeAndGoWhileRequestsFlow) {
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  std::atomic<bool> done{false};
  std::atomic<int> ok{0};
  std::thread load([&] {
    while (!done) ok += Get(proxy->port(), "x").body == "main";
  });
  for (int i = 0; i < 20; ++i) {
    auto port = proxy->AddListener({"127.0.0.1", 0, "qa"});
    ASSERT_TRUE(port.ok());
    Client open(*port);  // left open across the removal
    EXPECT_EQ(Get(*port, "x").body, "qa");
    EXPECT_TRUE(proxy->RemoveListener(*port));
  }
  done = true;
  load.join();
  EXPECT_GT(ok.load(), 0);
  proxy->Stop();
  EXPECT_TRUE(proxy->ports().empty());
  EXPECT_FALSE(proxy->AddListener({"127.0.0.1", 0, "qa"}).ok());
  EXPECT_FALSE(proxy->RemoveListener(1));
}

TEST_F(ProxyTest, StopsWithConnectionsOpenOnAddedListeners) {
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  auto port = proxy->AddListener({"127.0.0.1", 0, "qa"});
  ASSERT_TRUE(port.ok());
  Client open(*port);
  Client used(*port);
  EXPECT_EQ(used.Get("x", "", false).body, "qa");
  proxy->Stop();  // sessions on both loops are freed with their loops, not later
  EXPECT_TRUE(used.ClosedWithin(2000ms));
}

TEST_F(ProxyTest, AUrlTargetOnALocalhostNameGetsItsOwnHost) {
  auto target = TargetFromUrl(
      "shared-api", "http://api.shared.localhost:" + std::to_string(qa_backend.port()) + "/");
  ASSERT_TRUE(target.ok()) << target.status().message();
  router.SetRoute(AnyHost("main-app", "", *target));
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  auto r = Get(proxy->port(), "app.example.test");
  ASSERT_EQ(r.status, 200) << r.head << r.body;
  EXPECT_EQ(r.body, "qa");
  auto heads = qa_backend.heads();
  ASSERT_EQ(heads.size(), 1u);
  std::string want = "\r\nHost: api.shared.localhost:" + std::to_string(qa_backend.port()) + "\r\n";
  EXPECT_NE(heads[0].find(want), std::string::npos) << heads[0];
  EXPECT_EQ(heads[0].find("\r\nHost: app.example.test"), std::string::npos) << heads[0];
  EXPECT_NE(heads[0].find("\r\nX-Forwarded-Host: app.example.test\r\n"), std::string::npos)
      << heads[0];
}

TEST_F(ProxyTest, APoolMixingAuthoritiesSendsEachItsOwnHost) {
  auto url =
      TargetFromUrl("down", "http://down.localhost:" + std::to_string(testing::ClosedPort()));
  ASSERT_TRUE(url.ok());
  Route r = AnyHost("main-app", "", nullptr);
  r.pool = {*url, To(main_backend, "plain")};
  router.SetRoute(r);
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(Get(proxy->port(), "client.test").body, "main");
  for (const auto& head : main_backend.heads())
    EXPECT_NE(head.find("\r\nHost: client.test\r\n"), std::string::npos) << head;
}

TEST_F(ProxyTest, ANameThatDoesNotResolveIsABadGateway) {
  auto target = TargetFromUrl("nowhere", "http://no-such-host.invalid:81");
  ASSERT_TRUE(target.ok());
  router.SetRoute(AnyHost("main-app", "", *target));
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  auto start = std::chrono::steady_clock::now();
  int status = Get(proxy->port(), "x").status;
  EXPECT_TRUE(status == 502 || status == 504) << status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "bounded by connect_timeout";
}

// A name the system resolver answers (the machine's own name), unlike the localhost names
// the gateway answers itself.
TEST_F(ProxyTest, ATargetNamedByDnsIsResolvedAsynchronously) {
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(name, nullptr, &hints, &found) != 0)
    GTEST_SKIP() << name << " does not resolve";
  ::freeaddrinfo(found);
  Backend any("by-name", "0.0.0.0");
  router.SetRoute(AnyHost("main-app", "", std::make_shared<Target>("n", name, any.port())));
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  EXPECT_EQ(Get(proxy->port(), "x").body, "by-name");
}

TEST(Resolve, LocalhostNamesNeverAskDns) {
  for (std::string_view yes : {"localhost", "LocalHost", "localhost.", "api.localhost",
                               "a.b.sandbox.LOCALHOST", "x.localhost."})
    EXPECT_TRUE(IsLocalhostName(yes)) << yes;
  for (std::string_view no :
       {"", "localhost.com", "mylocalhost", "xlocalhost", "local", "localhost..", "127.0.0.1"})
    EXPECT_FALSE(IsLocalhostName(no)) << no;
}

// Runs Resolve on a fresh io_context until it returns, then destroys the context with
// whatever the lookup left pending (an abandoned getaddrinfo still running).
Resolved RunResolve(const std::string& host, std::chrono::milliseconds timeout) {
  io::asio::io_context ctx;
  Resolved out;
  bool finished = false;
  io::asio::co_spawn(
      ctx,
      [&]() -> io::asio::awaitable<void> {
        out = co_await Resolve(ctx, host, 8080, timeout);
        finished = true;
      },
      io::asio::detached);
  for (auto until = std::chrono::steady_clock::now() + 5s;
       !finished && std::chrono::steady_clock::now() < until;)
    ctx.run_one_for(100ms);
  EXPECT_TRUE(finished);
  return out;
}

TEST(Resolve, AddressesAndLocalhostNamesNeedNoLookup) {
  auto a = RunResolve("sandbox-qa.localhost", 0ms);  // no time at all: never asked DNS
  ASSERT_EQ(a.endpoints.size(), 1u);
  EXPECT_EQ(a.endpoints[0].address().to_string(), "127.0.0.1");
  EXPECT_EQ(a.endpoints[0].port(), 8080);
  EXPECT_FALSE(a.timed_out);
  auto v6 = RunResolve("::1", 0ms);
  ASSERT_EQ(v6.endpoints.size(), 1u);
  EXPECT_TRUE(v6.endpoints[0].address().is_v6());
}

TEST(Resolve, ALookupAbandonedAtItsTimeoutLeavesNothingBehind) {
  auto r = RunResolve("slipway-resolve-test.example", 0ms);
  EXPECT_TRUE(r.endpoints.empty());
}

TEST(TargetMetrics, ATargetFollowedByOtherRoutesOfItsAppIsOneSeries) {
  Router router;
  Route main = AnyHost("api", "", std::make_shared<Target>("t1", "127.0.0.1", 1));
  router.SetRoute(main);
  Route follower = AnyHost("api", "qa", nullptr);
  follower.follow = "api";
  Route header = AnyHost("api", "", nullptr);
  header.name = "api@header";
  header.follow = "api";
  header.when = {{Predicate::Kind::kHeader, "X-Slipway-Sandbox", "qa"}};
  router.SetRoutesOf("qa", {follower, header});
  std::string out;
  RenderTargetMetrics(router, out);
  std::string series = "slipway_gateway_requests_total{app=\"api\",target=\"t1\"}";
  auto first = out.find(series);
  ASSERT_NE(first, std::string::npos) << out;
  EXPECT_EQ(out.find(series, first + 1), std::string::npos) << out;
  EXPECT_NE(out.find("route=\"api@header\""), std::string::npos) << "routes keep their series";
}

class Recorder : public RequestTap {
 public:
  void Record(const TapEntry& e) override {
    std::lock_guard lock(mu);
    entries.push_back(e);
  }
  std::vector<TapEntry> Taken() {
    std::lock_guard lock(mu);
    return entries;
  }
  std::mutex mu;
  std::vector<TapEntry> entries;
};

TEST_F(ProxyTest, TheTapSeesTheSandboxAndTraceOfEveryFinishedRequest) {
  auto tap = std::make_shared<Recorder>();
  router.SetTap(tap);
  auto proxy = Started();
  ASSERT_TRUE(proxy);
  auto port = proxy->AddListener({"127.0.0.1", 0, "qa"});
  ASSERT_TRUE(port.ok());
  auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  // Each entry is recorded once the response is out, so wait for it before the next request.
  auto recorded = [&](std::size_t n) {
    return Eventually([&] { return tap->Taken().size() == n; });
  };
  Get(*port, "x", "X-Slipway-Sandbox: qa-login\r\nX-Slipway-Trace: trace-1\r\n");
  ASSERT_TRUE(recorded(1));
  Get(proxy->port(), "x", "baggage: user=7, slipway-sandbox=qa%2Dpay;ttl=1\r\n");
  ASSERT_TRUE(recorded(2));
  router.SetRoutesOf("qa", {});
  Get(*port, "x", "X-Slipway-Trace: trace-3\r\n");  // no route now: a 404 page
  ASSERT_TRUE(recorded(3));

  auto entries = tap->Taken();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].listener, "qa");
  EXPECT_EQ(entries[0].route, "qa-app");
  EXPECT_EQ(entries[0].target, "qa");
  EXPECT_EQ(entries[0].sandbox, "qa-login");
  EXPECT_EQ(entries[0].trace, "trace-1");
  EXPECT_EQ(entries[0].status, 200);
  EXPECT_GE(entries[0].seconds, 0);
  EXPECT_GE(entries[0].ts_ms, before);

  EXPECT_EQ(entries[1].listener, "");
  EXPECT_EQ(entries[1].route, "main-app");
  EXPECT_EQ(entries[1].target, "main");
  EXPECT_EQ(entries[1].sandbox, "qa-pay");
  EXPECT_EQ(entries[1].trace, "");

  EXPECT_EQ(entries[2].status, 404);
  EXPECT_EQ(entries[2].route, "");
  EXPECT_EQ(entries[2].target, "");
  EXPECT_EQ(entries[2].trace, "trace-3");

  router.SetTap(nullptr);
  EXPECT_EQ(Get(proxy->port(), "x", "X-Slipway-Trace: off\r\n").status, 200);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(tap->Taken().size(), 3u);
}

}  // namespace
}  // namespace slipway::gateway
