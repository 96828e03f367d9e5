// CallUrl against real loopback servers: the project's HttpServer (plain), a Beast server over
// TLS with a test CA, a port where nobody listens and a listener that never answers. Every
// wait is bounded, so a broken client fails a test instead of hanging it.
#include "net/url_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/http_server.h"
#include "support/sockets.h"
#include "support/test_certs.h"

namespace slipway::net {
namespace {

using namespace std::chrono_literals;
using testing::ClosedPort;
using testing::SilentListener;
using testing::TestCerts;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(ParseHttpUrlTest, SplitsHostPortAndTarget) {
  auto a = ParseHttpUrl("https://hooks.slack.com/services/T0/B0/XyZ?x=1#frag");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->host, "hooks.slack.com");
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->target, "/services/T0/B0/XyZ?x=1");
  auto b = ParseHttpUrl("http://[::1]:8080");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_FALSE(b->tls);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 8080);
  EXPECT_EQ(b->target, "/");
  auto c = ParseHttpUrl("http://example.com?q");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->target, "/?q");
}

TEST(ParseHttpUrlTest, RefusalsRepeatNoPartOfTheUrl) {
  for (const char* url :
       {"ftp://h/secretpath", "https://user:secretpw@h/x", "http:///secretpath", "http://h:0/s",
        "http://h:99999/secretpath", "http://h:x/secretpath", "https://h/secret path",
        "https://h/secret\npath", "https://h/secr\xc3\xa9t", "http://[::1/secretpath",
        "hooks.slack.com/secretpath", ""}) {
    auto r = ParseHttpUrl(url);
    ASSERT_FALSE(r.ok()) << url;
    EXPECT_EQ(r.status().code(), Code::kInvalid) << url;
    EXPECT_FALSE(Contains(r.status().message(), "secret")) << r.status().message();
  }
}

// The project's server, answering each request with what `answer` says and keeping what came.
class Receiver {
 public:
  explicit Receiver(std::function<HttpResponse(HttpRequest&)> answer) {
    HttpServerOptions o;
    o.worker_threads = 2;
    auto server = HttpServer::Create(o, [this, answer](HttpRequest& req) {
      {
        std::lock_guard lock(mu_);
        requests_.push_back(req);
      }
      return answer(req);
    });
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    server_->Start();
  }
  ~Receiver() { server_->Stop(); }
  int port() const { return server_->port(); }
  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<HttpRequest> requests_;
  std::unique_ptr<HttpServer> server_;
};

TEST(CallUrlTest, PostsTheBodyAndHeadersAndReturnsTheStatus) {
  Receiver receiver([](HttpRequest&) {
    HttpResponse r;
    r.status = 202;
    r.body = std::string(100000, 'x');  // a body is never read
    return r;
  });
  UrlRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook/path?k=v";
  req.headers = {{"Content-Type", "application/json"}, {"X-Test", "yes"}};
  req.body = R"({"a":1})";
  auto r = CallUrl(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 202);
  EXPECT_TRUE(r->body.empty());
  auto got = receiver.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].target, "/hook/path?k=v");
  EXPECT_EQ(got[0].body, R"({"a":1})");
  EXPECT_EQ(got[0].Header("x-test"), "yes");
  EXPECT_EQ(got[0].Header("content-type"), "application/json");
  EXPECT_EQ(got[0].Header("host"), "127.0.0.1:" + std::to_string(receiver.port()));
  EXPECT_EQ(got[0].Header("user-agent"), "slipway");
}

TEST(CallUrlTest, ARedirectIsReturnedNotFollowed) {
  Receiver receiver([](HttpRequest&) {
    HttpResponse r;
    r.status = 302;
    r.headers = {{"Location", "/elsewhere"}};
    return r;
  });
  UrlRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/first";
  auto r = CallUrl(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->headers["location"], "/elsewhere");
  EXPECT_EQ(receiver.requests().size(), 1u);
}

TEST(CallUrlTest, AHugeResponseHeadFails) {
  Receiver receiver([](HttpRequest&) {
    HttpResponse r;
    r.headers = {{"X-Big", std::string(20000, 'b')}};
    return r;
  });
  UrlRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/";
  auto r = CallUrl(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(r.status().message(), "receive")) << r.status().message();
}

// The body is never read, so a 2xx announcing a body larger than anything the client would
// keep is still an answer (a receiver that echoes a big page must not look like a failure).
TEST(CallUrlTest, A2xxAnnouncingAHugeBodyIsAnAnswer) {
  // A raw server: the project's own would not announce a length it does not send.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::thread server([lfd] {
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0) return;
    char buf[4096];
    (void)::read(c, buf, sizeof buf);
    const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 200000000\r\n\r\nabc";
    (void)::write(c, answer, sizeof answer - 1);
    ::usleep(200 * 1000);
    ::close(c);
  });
  UrlRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";
  req.timeout = 5s;
  auto r = CallUrl(req);
  server.join();
  ::close(lfd);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST(CallUrlTest, RefusedConnectionSaysSoWithoutThePath) {
  UrlRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/secretpath";
  auto r = CallUrl(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(r.status().message(), "connect: Connection refused"))
      << r.status().message();
  EXPECT_FALSE(Contains(r.status().message(), "secretpath"));
}

TEST(CallUrlTest, HeaderInjectionIsRefused) {
  UrlRequest req;
  req.url = "http://127.0.0.1:1/";
  req.headers = {{"X-A", "v\r\nX-Injected: 1"}};
  auto r = CallUrl(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalid);
}

TEST(CallUrlTest, APeerThatNeverAnswersTimesOut) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  UrlRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/secretpath";
  req.timeout = 300ms;
  auto started = std::chrono::steady_clock::now();
  auto r = CallUrl(req);
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
  EXPECT_FALSE(Contains(r.status().message(), "secretpath"));
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
}

TEST(CallUrlTest, CancelEndsACallInProgressAndEveryLaterOne) {
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  UrlRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(silent.port()) + "/";
  req.timeout = 60s;
  CallCanceller canceller;
  auto call = std::async(std::launch::async, [&] { return CallUrl(req, &canceller); });
  // Whether the cancel lands before or during the call, the call ends kCancelled.
  std::this_thread::sleep_for(100ms);
  auto started = std::chrono::steady_clock::now();
  canceller.Cancel();
  ASSERT_EQ(call.wait_for(5s), std::future_status::ready) << "Cancel did not end the call";
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  auto r = call.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCancelled) << r.status().ToString();
  EXPECT_TRUE(canceller.cancelled());
  auto later = CallUrl(req, &canceller);
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.status().code(), Code::kCancelled);
}

// ---------------------------------------------------------------------------------------------
// https

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;

// An HTTP server over TLS (Beast, blocking, one connection at a time) answering 204.
class TlsReceiver {
 public:
  explicit TlsReceiver(const TestCerts& certs)
      : ctx_(ssl::context::tls_server), acceptor_(ioc_, {asio::ip::address_v4::loopback(), 0}) {
    ctx_.use_certificate_chain_file(certs.path("server.pem"));
    ctx_.use_private_key_file(certs.path("server.key"), ssl::context::pem);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TlsReceiver() {
    stopping_ = true;
    asio::ip::tcp::socket wake(ioc_);  // unblocks accept()
    boost::system::error_code ec;
    wake.connect({asio::ip::address_v4::loopback(), static_cast<unsigned short>(port_)}, ec);
    thread_.join();
  }
  int port() const { return port_; }
  int answered() const { return answered_; }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      try {
        ssl::stream<asio::ip::tcp::socket> tls(std::move(socket), ctx_);
        tls.handshake(ssl::stream_base::server);
        beast::flat_buffer buffer;
        beast::http::request<beast::http::string_body> req;
        beast::http::read(tls, buffer, req);
        beast::http::response<beast::http::empty_body> res(beast::http::status::no_content, 11);
        beast::http::write(tls, res);
        ++answered_;
      } catch (const std::exception&) {
        // the client refused the certificate, or went away
      }
    }
  }

  asio::io_context ioc_;
  ssl::context ctx_;
  asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
};

TEST(CallUrlTest, HttpsVerifiesTheServerAgainstTheGivenCaAndTheName) {
  TestCerts certs;
  if (!certs.ok()) GTEST_SKIP() << "the openssl CLI could not make test certificates";
  TlsReceiver server(certs);
  const std::string port = std::to_string(server.port());
  UrlRequest req;
  req.url = "https://localhost:" + port + "/secretpath";
  req.ca_file = certs.path("ca.pem");
  req.body = "{}";
  auto ok = CallUrl(req);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 204);
  EXPECT_EQ(server.answered(), 1);

  UrlRequest no_ca = req;
  no_ca.ca_file = "";  // the system's CAs do not know ours
  auto untrusted = CallUrl(no_ca);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(untrusted.status().message(), "TLS: ")) << untrusted.status().message();

  UrlRequest wrong_name = req;
  wrong_name.url = "https://127.0.0.1:" + port + "/secretpath";  // the certificate is for localhost
  auto mismatch = CallUrl(wrong_name);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_TRUE(Contains(mismatch.status().message(), "mismatch")) << mismatch.status().message();
  EXPECT_FALSE(Contains(mismatch.status().message(), "secretpath"));
  EXPECT_EQ(server.answered(), 1) << "no request went to an unverified server";
}

TEST(CallUrlTest, ACaFileThatIsNotARegularFileIsRefusedBeforeReading) {
  UrlRequest req;
  req.url = "https://localhost:1/";
  req.ca_file = "/dev/zero";  // OpenSSL would read it for ever
  auto r = CallUrl(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(r.status().message(), "CA file")) << r.status().message();
}

}  // namespace
}  // namespace slipway::net
