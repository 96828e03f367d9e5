// WebSocket over real loopback sockets: HttpServer upgrades (echo, caps, refusals, close codes,
// Stop(), a peer that does not read) and WsClient (plain and TLS, timeouts, refusals). Raw
// frames come from a small hand-written client, so that the server is also seen from outside
// Beast. Every wait gives up after a few seconds, so a broken server fails a test instead of
// hanging it; nothing here asserts on how long something took.
#include "net/ws_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "net/http_client.h"
#include "net/http_server.h"
#include "support/test_certs.h"

namespace slipway::net {
namespace {

using namespace std::chrono_literals;

bool Eventually(const std::function<bool()>& condition) {
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// Runs `fn`, failing (and ending) the test binary when it does not return: a hung Stop() or
// SendText must not hang the suite.
void WithinOrDie(const std::function<void()>& fn) {
  auto done = std::async(std::launch::async, fn);
  if (done.wait_for(60s) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: call did not return\n");
    std::_Exit(1);
  }
}

// What a test's WebSocket connections did, shared with their callbacks.
class Record {
 public:
  void Opened(std::shared_ptr<WebSocketPeer> peer) {
    std::lock_guard lock(mu_);
    peers_.push_back(std::move(peer));
  }
  void Closed(int code) {
    std::lock_guard lock(mu_);
    codes_.push_back(code);
  }
  std::vector<int> codes() {
    std::lock_guard lock(mu_);
    return codes_;
  }
  int opens() {
    std::lock_guard lock(mu_);
    return static_cast<int>(peers_.size());
  }
  std::shared_ptr<WebSocketPeer> peer(std::size_t i) {
    std::lock_guard lock(mu_);
    return i < peers_.size() ? peers_[i] : nullptr;
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<WebSocketPeer>> peers_;
  std::vector<int> codes_;
};

// Echoes every text message; "boom" makes on_text throw, "bye" makes the server say "bye"
// and close with 4000.
std::shared_ptr<WebSocketHandler> EchoHandler(const std::shared_ptr<Record>& record) {
  auto handler = std::make_shared<WebSocketHandler>();
  auto peer = std::make_shared<std::shared_ptr<WebSocketPeer>>();
  handler->on_open = [record, peer](std::shared_ptr<WebSocketPeer> p) {
    *peer = p;
    record->Opened(std::move(p));
  };
  handler->on_text = [peer](std::string text) {
    if (text == "boom") throw std::runtime_error("on_text failed on purpose");
    (*peer)->SendText(text);
    if (text == "bye") (*peer)->Close(4000, "see you");
  };
  handler->on_close = [record](int code) { record->Closed(code); };
  return handler;
}

HttpResponse Upgrade(std::shared_ptr<WebSocketHandler> handler) {
  HttpResponse r;
  r.websocket = std::move(handler);
  return r;
}

HttpResponse Unauthorized() {
  HttpResponse r;
  r.status = 401;
  r.body = R"({"error":"unauthorized","detail":"bad token"})";
  return r;
}

// A server whose /echo upgrades to EchoHandler, and /secret too but only with the right
// Authorization header. `tune` adjusts each handler (limits, timeouts).
class EchoServer {
 public:
  explicit EchoServer(HttpServerOptions options = {},
                      std::function<void(WebSocketHandler&)> tune = nullptr)
      : record_(std::make_shared<Record>()) {
    auto record = record_;
    auto handler = [record, tune](HttpRequest& req) -> HttpResponse {
      if (req.path == "/secret" && req.Header("authorization") != "Bearer good")
        return Unauthorized();
      auto ws = EchoHandler(record);
      if (tune) tune(*ws);
      return Upgrade(std::move(ws));
    };
    auto server = HttpServer::Create(std::move(options), handler);
    if (!server.ok()) throw std::runtime_error(server.status().ToString());
    server_ = std::move(server).value();
    server_->Start();
  }

  HttpServer& server() { return *server_; }
  Record& record() { return *record_; }
  std::string Url(const std::string& path = "/echo") const {
    return "ws://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

 private:
  std::shared_ptr<Record> record_;
  std::unique_ptr<HttpServer> server_;
};

std::unique_ptr<WsClient> Connect(const std::string& url, WsClientOptions options = {}) {
  options.url = url;
  auto client = WsClient::Connect(options);
  if (!client.ok()) {
    ADD_FAILURE() << client.status().ToString();
    return nullptr;
  }
  return std::move(client).value();
}

// A WebSocket client by hand on a blocking socket: the handshake, masked frames out and
// unmasked frames in. Each read gives up after 10 s.
class RawWs {
 public:
  // `receive_buffer` > 0 shrinks the socket's receive buffer (for a peer that never reads).
  explicit RawWs(int port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawWs() { Close(); }
  RawWs(const RawWs&) = delete;
  RawWs& operator=(const RawWs&) = delete;

  // True when the server switched protocols.
  bool Handshake(const std::string& path) {
    if (!connected_) return false;
    if (!Send("GET " + path +
              " HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
      return false;
    while (data_.find("\r\n\r\n") == std::string::npos)
      if (!ReadMore()) return false;
    std::size_t end = data_.find("\r\n\r\n") + 4;
    bool switched = data_.compare(0, 12, "HTTP/1.1 101") == 0;
    data_.erase(0, end);
    return switched;
  }

  // One final frame, masked (with a zero key, which leaves the payload as it is).
  bool SendFrame(int opcode, const std::string& payload) {
    std::string frame(1, static_cast<char>(0x80 | opcode));
    if (payload.size() < 126) {
      frame += static_cast<char>(0x80 | payload.size());
    } else {
      frame += static_cast<char>(0x80 | 126);
      frame += static_cast<char>((payload.size() >> 8) & 0xff);
      frame += static_cast<char>(payload.size() & 0xff);
    }
    frame += std::string(4, '\0');
    return Send(frame + payload);
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next frame: opcode and payload (payloads up to 64 KiB).
  std::optional<std::pair<int, std::string>> ReadFrame() {
    while (data_.size() < 2)
      if (!ReadMore()) return std::nullopt;
    int opcode = static_cast<unsigned char>(data_[0]) & 0x0f;
    std::size_t length = static_cast<unsigned char>(data_[1]) & 0x7f;
    std::size_t header = 2;
    if (length == 126) {
      while (data_.size() < 4)
        if (!ReadMore()) return std::nullopt;
      length = (static_cast<unsigned char>(data_[2]) << 8) | static_cast<unsigned char>(data_[3]);
      header = 4;
    }
    while (data_.size() < header + length)
      if (!ReadMore()) return std::nullopt;
    std::string payload = data_.substr(header, length);
    data_.erase(0, header + length);
    return std::make_pair(opcode, payload);
  }

 private:
  bool Send(const std::string& data) {
    std::string_view rest(data);
    while (!rest.empty()) {
      ssize_t n = ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  bool ReadMore() {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    data_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string data_;
};

int CloseCodeOf(const std::string& payload) {
  if (payload.size() < 2) return 0;
  return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Server and client together

TEST(WebSocketTest, EchoesHundredMessagesInOrder) {
  EchoServer echo;
  auto client = Connect(echo.Url());
  ASSERT_TRUE(client);
  EXPECT_TRUE(client->open());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(client->SendText("message " + std::to_string(i)));
  for (int i = 0; i < 100; ++i) {
    auto got = client->Receive(10s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, "message " + std::to_string(i));
  }
  EXPECT_EQ(echo.record().opens(), 1);
  EXPECT_EQ(echo.server().open_websockets(), 1);
  client.reset();  // closes with 1000, which the server gets
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == 1; }));
  EXPECT_EQ(echo.record().codes()[0], 1000);
  EXPECT_TRUE(Eventually([&] { return echo.server().open_websockets() == 0; }));
}

TEST(WebSocketTest, ServesManyClientsAtOnce) {
  EchoServer echo;
  constexpr int kClients = 20;
  std::vector<std::unique_ptr<WsClient>> clients(kClients);
  std::vector<std::thread> threads;
  std::atomic<int> echoed{0};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      clients[c] = Connect(echo.Url());
      if (!clients[c]) return;
      for (int i = 0; i < 20; ++i)
        clients[c]->SendText(std::to_string(c) + ":" + std::to_string(i));
      for (int i = 0; i < 20; ++i) {
        auto got = clients[c]->Receive(10s);
        if (got.ok() && *got == std::to_string(c) + ":" + std::to_string(i)) ++echoed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(echoed, kClients * 20);
  EXPECT_EQ(echo.server().open_websockets(), kClients);
  clients.clear();
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == kClients; }));
  for (int code : echo.record().codes()) EXPECT_EQ(code, 1000);
  EXPECT_TRUE(Eventually([&] { return echo.server().open_websockets() == 0; }));
}

TEST(WebSocketTest, MessageOverTheLimitClosesWith1009) {
  EchoServer echo;
  auto client = Connect(echo.Url());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->SendText(std::string(2 << 20, 'x')));
  auto got = client->Receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(got.status().message(), "1009")) << got.status().message();
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == 1; }));
  EXPECT_EQ(echo.record().codes()[0], 1009);
  EXPECT_FALSE(client->open());
  EXPECT_FALSE(client->SendText("late"));
}

TEST(WebSocketTest, BinaryFrameClosesWith1003) {
  EchoServer echo;
  RawWs raw(echo.server().port());
  ASSERT_TRUE(raw.Handshake("/echo"));
  ASSERT_TRUE(raw.SendFrame(0x1, "text first"));
  auto text = raw.ReadFrame();
  ASSERT_TRUE(text);
  EXPECT_EQ(text->first, 0x1);
  EXPECT_EQ(text->second, "text first");
  ASSERT_TRUE(raw.SendFrame(0x2, "\x01\x02"));
  auto close = raw.ReadFrame();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->first, 0x8);
  EXPECT_EQ(CloseCodeOf(close->second), 1003);
  raw.SendFrame(0x8, close->second.substr(0, 2));  // answer the close, and go as a client does
  raw.Close();
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == 1; }));
  EXPECT_EQ(echo.record().codes()[0], 1003);
}

TEST(WebSocketTest, ThrowingCallbackClosesWith1011AndTheServerGoesOn) {
  EchoServer echo;
  auto client = Connect(echo.Url());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->SendText("boom"));
  auto got = client->Receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(got.status().message(), "1011")) << got.status().message();
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == 1; }));
  EXPECT_EQ(echo.record().codes()[0], 1011);
  auto next = Connect(echo.Url());
  ASSERT_TRUE(next);
  ASSERT_TRUE(next->SendText("still here"));
  auto echoed = next->Receive(10s);
  ASSERT_TRUE(echoed.ok()) << echoed.status().ToString();
  EXPECT_EQ(*echoed, "still here");
}

TEST(WebSocketTest, ServerCloseSendsWhatWasQueuedFirst) {
  EchoServer echo;
  auto client = Connect(echo.Url());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->SendText("bye"));
  auto got = client->Receive(10s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "bye");
  auto end = client->Receive(10s);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(end.status().message(), "4000")) << end.status().message();
  EXPECT_TRUE(Contains(end.status().message(), "see you")) << end.status().message();
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == 1; }));
  EXPECT_EQ(echo.record().codes()[0], 4000);
}

TEST(WebSocketTest, HandlerAnswering401RefusesTheUpgrade) {
  EchoServer echo;
  WsClientOptions options;
  options.url = echo.Url("/secret");
  auto refused = WsClient::Connect(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kUnauthorized);
  EXPECT_EQ(refused.status().message(), "bad token");

  options.headers = {{"Authorization", "Bearer good"}};
  auto accepted = WsClient::Connect(options);
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_TRUE(Eventually([&] { return echo.record().opens() == 1; }));  // on_open runs later
}

TEST(WebSocketTest, RequestsThatAreNoValidUpgradeGet426Or400) {
  EchoServer echo;
  Endpoint endpoint{"127.0.0.1", echo.server().port()};
  auto call = [&](Headers headers) {
    ClientRequest request;
    request.target = "/echo";
    request.headers = std::move(headers);
    auto r = HttpCall(endpoint, request);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ClientResponse{};
  };
  auto plain = call({});
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(plain.headers["upgrade"], "websocket");
  auto body = nlohmann::json::parse(plain.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << plain.body;
  EXPECT_EQ(body["error"], "upgrade_required");
  EXPECT_TRUE(body["detail"].is_string());

  Headers upgrade{{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
  auto old_version = upgrade;
  old_version.push_back({"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="});
  old_version.push_back({"Sec-WebSocket-Version", "8"});
  auto wrong = call(old_version);
  EXPECT_EQ(wrong.status, 426);
  EXPECT_EQ(wrong.headers["sec-websocket-version"], "13");
  auto no_key = upgrade;
  no_key.push_back({"Sec-WebSocket-Version", "13"});
  auto missing = call(no_key);
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(nlohmann::json::parse(missing.body, nullptr, false)["error"], "bad_request");
  EXPECT_EQ(echo.record().opens(), 0);
  EXPECT_TRUE(echo.record().codes().empty());
  EXPECT_EQ(echo.server().open_websockets(), 0);
}

TEST(WebSocketTest, UpgradesBeyondMaxWebsocketsGet503) {
  HttpServerOptions options;
  options.max_websockets = 1;
  EchoServer echo(options);
  auto first = Connect(echo.Url());
  ASSERT_TRUE(first);
  WsClientOptions second;
  second.url = echo.Url();
  auto refused = WsClient::Connect(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(refused.status().message(), "503")) << refused.status().message();
  first.reset();
  EXPECT_TRUE(Eventually([&] { return echo.server().open_websockets() == 0; }));
  EXPECT_TRUE(WsClient::Connect(second).ok());
}

TEST(WebSocketTest, StopClosesEveryConnectionOnce) {
  EchoServer echo;
  constexpr int kClients = 5;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(Connect(echo.Url()));
    ASSERT_TRUE(clients.back());
  }
  ASSERT_TRUE(Eventually([&] { return echo.record().opens() == kClients; }));
  WithinOrDie([&] { echo.server().Stop(); });
  auto codes = echo.record().codes();  // on_close has run for each when Stop returns
  ASSERT_EQ(codes.size(), static_cast<std::size_t>(kClients));
  for (int code : codes) EXPECT_EQ(code, 1001);
  for (auto& client : clients) {
    auto got = client->Receive(10s);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), Code::kUnavailable) << got.status().ToString();
    EXPECT_TRUE(Contains(got.status().message(), "1001")) << got.status().message();
    EXPECT_FALSE(client->open());
  }
  EXPECT_EQ(echo.record().codes().size(), static_cast<std::size_t>(kClients));
}

TEST(WebSocketTest, PeerThatNeverReadsIsDroppedWithoutBlockingTheServer) {
  EchoServer echo({}, [](WebSocketHandler& h) { h.max_queued_bytes = 1 << 20; });
  RawWs raw(echo.server().port(), /*receive_buffer=*/4096);
  ASSERT_TRUE(raw.Handshake("/echo"));  // and never reads again
  ASSERT_TRUE(Eventually([&] { return echo.record().opens() == 1; }));
  auto peer = echo.record().peer(0);
  int accepted = 0;
  WithinOrDie([&] {
    const std::string chunk(64 << 10, 'y');
    while (accepted < 100000 && peer->SendText(chunk)) ++accepted;
  });
  EXPECT_LT(accepted, 100000);
  EXPECT_FALSE(peer->SendText("more"));
  // Meanwhile the server serves others.
  auto other = Connect(echo.Url());
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->SendText("hello"));
  auto got = other->Receive(10s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "hello");
  ASSERT_TRUE(Eventually([&] { return !echo.record().codes().empty(); }));
  EXPECT_EQ(echo.record().codes()[0], 1008);
}

TEST(WebSocketTest, SilentPeerIsClosedAfterTheIdleTimeout) {
  EchoServer echo({}, [](WebSocketHandler& h) { h.idle_timeout = 1s; });
  RawWs raw(echo.server().port());
  ASSERT_TRUE(raw.Handshake("/echo"));  // then neither reads nor answers the pings
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == 1; }));
  EXPECT_EQ(echo.record().codes()[0], 1006);
  EXPECT_TRUE(Eventually([&] { return echo.server().open_websockets() == 0; }));
}

// ---------------------------------------------------------------------------------------------
// The client alone

TEST(WsClientTest, ReceiveTimesOutWhenNothingComes) {
  EchoServer echo;
  auto client = Connect(echo.Url());
  ASSERT_TRUE(client);
  auto got = client->Receive(50ms);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kTimeout);
  EXPECT_TRUE(client->open());
}

TEST(WsClientTest, MessageOverItsLimitClosesWith1009) {
  EchoServer echo;
  WsClientOptions options;
  options.max_message = 16;
  auto client = Connect(echo.Url(), options);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->SendText("short"));
  ASSERT_TRUE(client->SendText("this is longer than sixteen bytes"));
  auto got = client->Receive(10s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "short");
  auto end = client->Receive(10s);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(end.status().message(), "1009")) << end.status().message();
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == 1; }));
  EXPECT_EQ(echo.record().codes()[0], 1009);
}

TEST(WsClientTest, CloseEndsTheConnectionAfterTheQueue) {
  EchoServer echo;
  auto client = Connect(echo.Url());
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->SendText("last words"));
  client->Close(4001, "done");
  EXPECT_FALSE(client->open());
  EXPECT_FALSE(client->SendText("too late"));
  auto got = client->Receive(10s);  // the echo may or may not beat the close
  if (got.ok()) got = client->Receive(10s);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kUnavailable);
  ASSERT_TRUE(Eventually([&] { return echo.record().codes().size() == 1; }));
  EXPECT_EQ(echo.record().codes()[0], 4001);
}

TEST(WsClientTest, BadUrlsAreInvalid) {
  for (std::string url : {"http://127.0.0.1:1/", "ws://", "ws://host:notaport/", "ws://h:70000/",
                          "ws://user@host/", "ws://[::1/", "ws://host/a b"}) {
    WsClientOptions options;
    options.url = url;
    auto client = WsClient::Connect(options);
    ASSERT_FALSE(client.ok()) << url;
    EXPECT_EQ(client.status().code(), Code::kInvalid) << url;
  }
}

TEST(WsClientTest, RefusedConnectionIsUnavailable) {
  int port = 0;
  {
    auto server = HttpServer::Create({}, [](HttpRequest&) { return HttpResponse{}; });
    ASSERT_TRUE(server.ok());
    port = (*server)->port();
  }  // closed again: nothing listens there now
  WsClientOptions options;
  options.url = "ws://127.0.0.1:" + std::to_string(port) + "/";
  auto client = WsClient::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(client.status().message(), "connect")) << client.status().message();
}

TEST(WsClientTest, ConnectGivesUpAfterConnectTimeout) {
  // A listener that never answers the upgrade request.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::address_v4::loopback(), 0});
  WsClientOptions options;
  options.url = "ws://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/";
  options.connect_timeout = 300ms;
  auto client = WsClient::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(client.status().message(), "300 ms")) << client.status().message();
}

// ---------------------------------------------------------------------------------------------
// wss

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;

using testing::TestCerts;

// A WebSocket echo server over TLS (Beast, blocking, a thread per connection).
class TlsEchoServer {
 public:
  explicit TlsEchoServer(const TestCerts& certs)
      : ctx_(ssl::context::tls_server), acceptor_(ioc_, {asio::ip::address_v4::loopback(), 0}) {
    ctx_.use_certificate_chain_file(certs.path("server.pem"));
    ctx_.use_private_key_file(certs.path("server.key"), ssl::context::pem);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TlsEchoServer() {
    stopping_ = true;
    asio::ip::tcp::socket wake(ioc_);  // unblocks accept()
    boost::system::error_code ec;
    wake.connect({asio::ip::address_v4::loopback(), static_cast<unsigned short>(port_)}, ec);
    thread_.join();
    for (auto& t : sessions_) t.join();
  }
  int port() const { return port_; }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      sessions_.emplace_back([this, s = std::move(socket)]() mutable { Echo(std::move(s)); });
    }
  }
  void Echo(asio::ip::tcp::socket socket) {
    try {
      beast::websocket::stream<ssl::stream<asio::ip::tcp::socket>> ws(std::move(socket), ctx_);
      ws.next_layer().handshake(ssl::stream_base::server);
      ws.accept();
      for (;;) {
        beast::flat_buffer buffer;
        ws.read(buffer);
        ws.text(ws.got_text());
        ws.write(buffer.data());
      }
    } catch (const std::exception&) {
      // the client went away, or failed the handshake: the session is over
    }
  }

  asio::io_context ioc_;
  ssl::context ctx_;
  asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::vector<std::thread> sessions_;  // accept thread only, then the destructor
};

TEST(WsClientTest, WssVerifiesTheServerAgainstTheGivenCa) {
  TestCerts certs;
  if (!certs.ok()) GTEST_SKIP() << "the openssl CLI could not make test certificates";
  TlsEchoServer server(certs);
  const std::string port = std::to_string(server.port());
  WsClientOptions options;
  options.url = "wss://localhost:" + port + "/tls";
  options.ca_file = certs.path("ca.pem");
  {
    auto client = WsClient::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    ASSERT_TRUE((*client)->SendText("over tls"));
    auto got = (*client)->Receive(10s);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, "over tls");
  }

  WsClientOptions no_ca = options;
  no_ca.ca_file = "";  // the system's CAs do not know ours
  auto untrusted = WsClient::Connect(no_ca);
  ASSERT_FALSE(untrusted.ok());
  EXPECT_EQ(untrusted.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(untrusted.status().message(), "TLS")) << untrusted.status().message();

  WsClientOptions wrong_name = options;
  wrong_name.url = "wss://127.0.0.1:" + port + "/tls";  // the certificate is for localhost only
  auto mismatch = WsClient::Connect(wrong_name);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(mismatch.status().message(), "mismatch")) << mismatch.status().message();
}

}  // namespace
}  // namespace slipway::net
