// The API server over real loopback sockets: handlers on the worker pool, long polls and
// event streams parked without a worker, the stream cap, error bodies and Stop(). Every
// read gives up after a few seconds, so a broken server fails a test instead of hanging it;
// nothing here asserts on how long something took (that is for bench/).
#include "net/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace slipway::net {
namespace {

using namespace std::chrono_literals;

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
};

Response ParseHead(const std::string& head) {
  Response r;
  if (head.size() >= 12) r.status = std::atoi(head.substr(9, 3).c_str());
  std::size_t at = head.find("\r\n");
  while (at != std::string::npos) {
    std::size_t end = head.find("\r\n", at + 2);
    std::string line = head.substr(at + 2, end == std::string::npos ? end : end - at - 2);
    if (auto colon = line.find(':'); colon != std::string::npos) {
      std::string key = line.substr(0, colon);
      for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::size_t v = line.find_first_not_of(' ', colon + 1);
      r.headers[key] = v == std::string::npos ? "" : line.substr(v);
    }
    at = end;
  }
  return r;
}

// A blocking HTTP/1.x client on a plain socket; each read gives up after 10 s.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  bool Get(const std::string& path, const std::string& extra_headers = "") {
    return Send("GET " + path + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n");
  }

  // Receives once more; false at end of stream, on an error or after the timeout.
  bool ReadMore() {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      eof_ = n == 0;
      return false;
    }
    data_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
  bool ReadUntil(std::string_view needle, std::size_t from = 0) {
    while (data_.find(needle, from) == std::string::npos)
      if (!ReadMore()) return false;
    return true;
  }
  // True when the server closed the connection (rather than the read timing out).
  bool ReadToEof() {
    while (ReadMore()) {
    }
    return eof_;
  }

  // One response: Content-Length delimited, or up to the end of the stream.
  std::optional<Response> ReadResponse() {
    if (!ReadUntil("\r\n\r\n")) return std::nullopt;
    std::size_t end = data_.find("\r\n\r\n");
    Response r = ParseHead(data_.substr(0, end));
    data_.erase(0, end + 4);
    auto length = r.headers.find("content-length");
    if (length == r.headers.end()) {
      if (!ReadToEof()) return std::nullopt;
      r.body.swap(data_);
      data_.clear();
      return r;
    }
    std::size_t n = std::stoul(length->second);
    while (data_.size() < n)
      if (!ReadMore()) return std::nullopt;
    r.body = data_.substr(0, n);
    data_.erase(0, n);
    return r;
  }

  const std::string& data() const { return data_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string data_;
};

Response Fetch(int port, const std::string& path) {
  Client c(port);
  if (!c.Get(path, "Connection: close\r\n")) return {};
  return c.ReadResponse().value_or(Response{});
}

bool Eventually(const std::function<bool()>& condition) {
  auto give_up = std::chrono::steady_clock::now() + 20s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// Counts subscriptions, and calls wakes under its lock: a wake then never runs after the
// Unsubscribe that removed it has returned, as the Notifier contract requires.
class FakeNotifier : public Notifier {
 public:
  std::uint64_t Subscribe(std::int64_t topic, std::function<void()> wake) override {
    std::lock_guard lock(mu_);
    subs_[++next_id_] = {topic, std::move(wake)};
    ++subscribed_;
    return next_id_;
  }
  void Unsubscribe(std::uint64_t id) override {
    std::lock_guard lock(mu_);
    if (subs_.erase(id) == 1) {
      ++unsubscribed_;
    } else {
      ++unknown_unsubscribes_;
    }
  }
  void Wake(std::int64_t topic) {
    std::lock_guard lock(mu_);
    for (auto& [id, sub] : subs_)
      if (sub.first == topic) sub.second();
  }
  int subscribed() const { return subscribed_; }
  int unsubscribed() const { return unsubscribed_; }
  int unknown_unsubscribes() const { return unknown_unsubscribes_; }

 private:
  std::mutex mu_;
  std::map<std::uint64_t, std::pair<std::int64_t, std::function<void()>>> subs_;
  std::uint64_t next_id_ = 0;
  std::atomic<int> subscribed_{0};
  std::atomic<int> unsubscribed_{0};
  std::atomic<int> unknown_unsubscribes_{0};
};

// A long poll on `topic` that answers "ready" once `ready` is set.
HttpResponse LongPoll(FakeNotifier& notifier, std::int64_t topic, std::atomic<bool>& ready,
                      std::chrono::milliseconds wait = 60s) {
  HttpResponse r;
  r.deferred = std::make_shared<DeferredResponse>();
  r.deferred->notifier = &notifier;
  r.deferred->topic = topic;
  r.deferred->wait = wait;
  r.deferred->poll = [&ready](bool deadline) -> std::optional<HttpResponse> {
    if (!ready && !deadline) return std::nullopt;
    HttpResponse answer;
    answer.content_type = "text/plain";
    answer.body = ready ? "ready" : "timed out";
    return answer;
  };
  return r;
}

// Chunks the test releases one by one; `idle` calls produce keep-alive comments.
class Producer {
 public:
  void Push(std::string chunk, bool finish) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(chunk));
    finished_ = finish;
  }
  StreamChunk Next(bool idle) {
    std::lock_guard lock(mu_);
    if (idle) {
      ++idle_calls_;
      return {": keep-alive\n\n", false};
    }
    StreamChunk out;
    for (; !queue_.empty(); queue_.pop_front()) out.data += queue_.front();
    out.done = finished_;
    return out;
  }
  int idle_calls() {
    std::lock_guard lock(mu_);
    return idle_calls_;
  }

 private:
  std::mutex mu_;
  std::deque<std::string> queue_;
  bool finished_ = false;
  int idle_calls_ = 0;
};

HttpResponse EventStream(FakeNotifier& notifier, std::int64_t topic, Producer& producer,
                         std::chrono::milliseconds keepalive = 60s) {
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.streamed = std::make_shared<StreamedResponse>();
  r.streamed->notifier = &notifier;
  r.streamed->topic = topic;
  r.streamed->keepalive = keepalive;
  r.streamed->next = [&producer](bool idle) { return producer.Next(idle); };
  return r;
}

HttpResponse Text(std::string body) {
  HttpResponse r;
  r.content_type = "text/plain";
  r.body = std::move(body);
  return r;
}

std::unique_ptr<HttpServer> StartServer(HttpHandler handler, HttpServerOptions options = {}) {
  auto server = HttpServer::Create(std::move(options), std::move(handler));
  if (!server.ok()) {
    ADD_FAILURE() << server.status().ToString();
    return nullptr;
  }
  (*server)->Start();
  return std::move(server).value();
}

// Runs `fn`, failing (and ending) the test binary when it does not return: a hung Stop()
// must not hang the suite.
void WithinOrDie(const std::function<void()>& fn) {
  auto done = std::async(std::launch::async, fn);
  if (done.wait_for(60s) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: call did not return\n");
    std::_Exit(1);
  }
}

nlohmann::json JsonBody(const Response& r) {
  return nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
}

TEST(HttpServerTest, ServesKeepAliveAndHttp10Clients) {
  auto server = StartServer([](HttpRequest& req) {
    return Text(req.method + " " + req.path + " " + req.Query("x") + " " + req.body);
  });
  ASSERT_TRUE(server);
  Client c(server->port());
  ASSERT_TRUE(c.Get("/a%20b?x=1"));
  auto first = c.ReadResponse();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "GET /a b 1 ");
  ASSERT_TRUE(c.Send("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"));
  auto second = c.ReadResponse();  // same connection
  ASSERT_TRUE(second);
  EXPECT_EQ(second->body, "POST /p  hello");

  Client old(server->port());
  ASSERT_TRUE(old.Send("GET /old HTTP/1.0\r\n\r\n"));
  auto r = old.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /old  ");
  EXPECT_TRUE(old.ReadToEof());
}

TEST(HttpServerTest, HandlersRunInParallelOnTheWorkerPool) {
  // Each handler waits until all three are inside at once: serialised handlers never get
  // there and answer "alone" after the timeout.
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  auto server = StartServer([&](HttpRequest&) {
    std::unique_lock lock(mu);
    ++inside;
    cv.notify_all();
    bool all = cv.wait_for(lock, 20s, [&] { return inside >= 3; });
    return Text(all ? "together" : "alone");
  });
  ASSERT_TRUE(server);
  std::vector<std::future<Response>> answers;
  for (int i = 0; i < 3; ++i)
    answers.push_back(std::async(std::launch::async, [&] { return Fetch(server->port(), "/"); }));
  for (auto& a : answers) {
    Response r = a.get();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "together");
  }
}

TEST(HttpServerTest, ThrowingHandlerGets500JsonAndTheServerKeepsServing) {
  auto server = StartServer([](HttpRequest& req) -> HttpResponse {
    if (req.path == "/boom") throw std::runtime_error("secret \x01 detail");
    return Text("fine");
  });
  ASSERT_TRUE(server);
  Client c(server->port());
  ASSERT_TRUE(c.Get("/boom"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->headers["content-type"], "application/json");
  EXPECT_EQ(r->body.find("secret"), std::string::npos);
  auto body = JsonBody(*r);
  EXPECT_EQ(body, (nlohmann::json{{"error", "internal"}, {"detail", "unexpected server error"}}));
  ASSERT_TRUE(c.Get("/again"));
  auto next = c.ReadResponse();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "fine");
}

TEST(HttpServerTest, DeferredResponseIsAnsweredAfterAWake) {
  FakeNotifier notifier;
  std::atomic<bool> ready{false};
  std::atomic<int> polls{0};
  auto server = StartServer([&](HttpRequest& req) {
    if (req.path != "/wait") return Text("plain");
    HttpResponse r = LongPoll(notifier, 7, ready);
    auto poll = r.deferred->poll;
    r.deferred->poll = [&polls, poll](bool deadline) {
      ++polls;
      return poll(deadline);
    };
    return r;
  });
  ASSERT_TRUE(server);
  Client c(server->port());
  ASSERT_TRUE(c.Get("/wait"));
  ASSERT_TRUE(Eventually([&] { return notifier.subscribed() == 1 && polls >= 1; }));
  EXPECT_EQ(server->open_streams(), 1);
  notifier.Wake(8);  // another topic: nothing to do for this poll
  ready = true;
  notifier.Wake(7);
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ready");
  ASSERT_TRUE(c.Get("/plain"));  // the keep-alive loop goes on
  auto plain = c.ReadResponse();
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->body, "plain");
  EXPECT_TRUE(Eventually([&] { return notifier.unsubscribed() == 1; }));
  EXPECT_EQ(server->open_streams(), 0);
  EXPECT_EQ(notifier.unknown_unsubscribes(), 0);
}

TEST(HttpServerTest, DeferredResponsePollsWithDeadlineWhenTheWaitPasses) {
  FakeNotifier notifier;
  std::atomic<bool> ready{false};
  auto server = StartServer([&](HttpRequest&) { return LongPoll(notifier, 1, ready, 100ms); });
  ASSERT_TRUE(server);
  auto r = Fetch(server->port(), "/wait");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "timed out");  // only poll(true) answers without `ready`
  EXPECT_TRUE(Eventually([&] { return notifier.unsubscribed() == 1; }));
  EXPECT_EQ(notifier.subscribed(), 1);
}

TEST(HttpServerTest, DeferredResponseUnsubscribesWhenTheClientLeaves) {
  FakeNotifier notifier;
  std::atomic<bool> ready{false};
  auto server = StartServer([&](HttpRequest&) { return LongPoll(notifier, 1, ready); });
  ASSERT_TRUE(server);
  {
    Client c(server->port());
    ASSERT_TRUE(c.Get("/wait"));
    ASSERT_TRUE(Eventually([&] { return notifier.subscribed() == 1; }));
  }
  EXPECT_TRUE(Eventually([&] { return notifier.unsubscribed() == 1; }));
  EXPECT_TRUE(Eventually([&] { return server->open_streams() == 0; }));
}

TEST(HttpServerTest, ParkedLongPollsHoldNoWorker) {
  FakeNotifier notifier;
  std::atomic<bool> ready{false};
  HttpServerOptions options;
  options.worker_threads = 2;
  auto server = StartServer(
      [&](HttpRequest& req) {
        return req.path == "/health" ? Text("ok") : LongPoll(notifier, 1, ready);
      },
      options);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<Client>> parked;
  for (int i = 0; i < 50; ++i) {
    parked.push_back(std::make_unique<Client>(server->port()));
    ASSERT_TRUE(parked.back()->Get("/wait"));
  }
  ASSERT_TRUE(Eventually([&] { return notifier.subscribed() == 50; }));
  auto health = Fetch(server->port(), "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");
  EXPECT_EQ(server->open_streams(), 50);

  ready = true;
  notifier.Wake(1);
  for (auto& c : parked) {
    auto r = c->ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "ready");
  }
  EXPECT_TRUE(Eventually([&] { return notifier.unsubscribed() == 50; }));
  EXPECT_EQ(server->open_streams(), 0);
}

TEST(HttpServerTest, StreamDeliversEachChunkAsItIsProduced) {
  FakeNotifier notifier;
  Producer producer;
  producer.Push("data: one\n\n", false);
  auto server = StartServer([&](HttpRequest&) { return EventStream(notifier, 3, producer); });
  ASSERT_TRUE(server);
  Client c(server->port());
  ASSERT_TRUE(c.Get("/events"));
  ASSERT_TRUE(c.ReadUntil("data: one\n\n"));  // chunk two does not exist yet
  Response head = ParseHead(c.data().substr(0, c.data().find("\r\n\r\n")));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-type"], "text/event-stream");
  EXPECT_EQ(head.headers["cache-control"], "no-cache");
  EXPECT_EQ(head.headers.count("content-length"), 0u);

  producer.Push("data: two\n\n", true);
  notifier.Wake(3);
  EXPECT_TRUE(c.ReadToEof());  // done ends the response and the connection
  auto body = c.data().substr(c.data().find("\r\n\r\n") + 4);
  EXPECT_EQ(body, "data: one\n\ndata: two\n\n");
  EXPECT_TRUE(Eventually([&] { return notifier.unsubscribed() == 1; }));
  EXPECT_EQ(notifier.subscribed(), 1);
  EXPECT_EQ(server->open_streams(), 0);
}

TEST(HttpServerTest, StreamSendsKeepAlivesWhenNoWakeComes) {
  FakeNotifier notifier;
  Producer producer;
  auto server = StartServer([&](HttpRequest&) { return EventStream(notifier, 3, producer, 20ms); });
  ASSERT_TRUE(server);
  Client c(server->port());
  ASSERT_TRUE(c.Send("GET /events HTTP/1.0\r\n\r\n"));  // close-delimited: 1.0 works too
  ASSERT_TRUE(c.ReadUntil(": keep-alive\n\n: keep-alive\n\n"));
  EXPECT_GE(producer.idle_calls(), 2);
  producer.Push("", true);
  notifier.Wake(3);
  EXPECT_TRUE(c.ReadToEof());
  EXPECT_EQ(c.data().rfind("HTTP/1.0 200", 0), 0u);
}

TEST(HttpServerTest, OpenStreamsOverTheCapGet503) {
  FakeNotifier notifier;
  Producer producer;
  std::atomic<bool> ready{false};
  HttpServerOptions options;
  options.max_streams = 3;
  auto server = StartServer(
      [&](HttpRequest& req) {
        return req.path == "/wait" ? LongPoll(notifier, 1, ready)
                                   : EventStream(notifier, 3, producer);
      },
      options);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<Client>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<Client>(server->port()));
    ASSERT_TRUE(open.back()->Get("/events"));
    ASSERT_TRUE(open.back()->ReadUntil("\r\n\r\n"));
  }
  EXPECT_EQ(server->open_streams(), 3);
  for (const char* path : {"/events", "/wait"}) {
    auto r = Fetch(server->port(), path);
    EXPECT_EQ(r.status, 503) << path;
    EXPECT_EQ(JsonBody(r), (nlohmann::json{{"error", "unavailable"},
                                           {"detail",
                                            "too many open event streams (limit 3); try again "
                                            "later"}}));
  }
  EXPECT_EQ(notifier.subscribed(), 3);  // nothing was parked for the refused ones
  open.front()->Close();
  ASSERT_TRUE(Eventually([&] { return server->open_streams() == 2; }));
  Client again(server->port());
  ASSERT_TRUE(again.Get("/events"));
  ASSERT_TRUE(again.ReadUntil("\r\n\r\n"));
  EXPECT_EQ(again.data().rfind("HTTP/1.1 200", 0), 0u);
}

TEST(HttpServerTest, StopEndsParkedConnectionsAndJoins) {
  FakeNotifier notifier;
  Producer producer;
  std::atomic<bool> ready{false};
  auto server = StartServer([&](HttpRequest& req) {
    return req.path == "/wait" ? LongPoll(notifier, 1, ready) : EventStream(notifier, 3, producer);
  });
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<Client>> clients;
  for (const char* path : {"/wait", "/events", "/wait", "/events"}) {
    clients.push_back(std::make_unique<Client>(server->port()));
    ASSERT_TRUE(clients.back()->Get(path));
  }
  ASSERT_TRUE(Eventually([&] { return notifier.subscribed() == 4; }));
  WithinOrDie([&] { server->Stop(); });
  for (auto& c : clients) EXPECT_TRUE(c->ReadToEof());
  EXPECT_EQ(notifier.unsubscribed(), 4);
  EXPECT_EQ(server->open_streams(), 0);
  WithinOrDie([&] { server->Stop(); });  // a second call is harmless
  Client late(server->port());
  EXPECT_FALSE(late.connected() && late.Get("/wait") && late.ReadResponse());
}

TEST(HttpServerTest, PollThatThrowsGets500Json) {
  FakeNotifier notifier;
  auto server = StartServer([&](HttpRequest&) {
    HttpResponse r;
    r.deferred = std::make_shared<DeferredResponse>();
    r.deferred->notifier = &notifier;
    r.deferred->poll = [](bool) -> std::optional<HttpResponse> {
      throw std::runtime_error("poll failed");
    };
    return r;
  });
  ASSERT_TRUE(server);
  auto r = Fetch(server->port(), "/wait");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(JsonBody(r)["error"], "internal");
  EXPECT_TRUE(Eventually([&] { return notifier.unsubscribed() == 1; }));
}

TEST(HttpServerTest, OversizedBodyGets413Json) {
  HttpServerOptions options;
  options.max_body = 1024;
  auto server = StartServer([](HttpRequest&) { return Text("unexpected"); }, options);
  ASSERT_TRUE(server);
  Client c(server->port());
  std::string body(4096, 'x');
  ASSERT_TRUE(c.Send("POST /hooks/x HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n" + body));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(JsonBody(*r), (nlohmann::json{{"error", "too_large"},
                                          {"detail", "request body exceeds 1024 bytes"}}));
  EXPECT_TRUE(c.ReadToEof());
}

TEST(HttpServerTest, MalformedOrOversizedHeadGets400Json) {
  HttpServerOptions options;
  options.max_header = 1024;
  auto server = StartServer([](HttpRequest&) { return Text("unexpected"); }, options);
  ASSERT_TRUE(server);
  for (const std::string& request :
       {std::string("NOT HTTP AT ALL\r\n\r\n"),
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n"}) {
    Client c(server->port());
    ASSERT_TRUE(c.Send(request));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    auto body = JsonBody(*r);
    ASSERT_TRUE(body.is_object()) << r->body;
    EXPECT_EQ(body["error"], "bad_request");
    EXPECT_TRUE(body["detail"].is_string());
  }
}

TEST(HttpServerTest, ClosesIdleConnections) {
  HttpServerOptions options;
  options.idle_timeout = std::chrono::seconds(1);
  auto server = StartServer([](HttpRequest&) { return Text("ok"); }, options);
  ASSERT_TRUE(server);
  Client c(server->port());
  ASSERT_TRUE(c.Get("/"));
  ASSERT_TRUE(c.ReadResponse());
  EXPECT_TRUE(c.ReadToEof());  // nothing more sent: the server hangs up
}

// Lowers the descriptor limit for its lifetime.
class DescriptorLimit {
 public:
  explicit DescriptorLimit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    ::setrlimit(RLIMIT_NOFILE, &lowered);
  }
  ~DescriptorLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  rlimit saved_{};
};

int HighestOpenDescriptor() {
  int highest = 2;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(dir)) highest = std::max(highest, std::atoi(e->d_name));
    ::closedir(dir);
  }
  return highest;
}

TEST(HttpServerTest, KeepsServingWhenAcceptRunsOutOfDescriptors) {
  auto server = StartServer([](HttpRequest& req) { return Text(req.path); });
  ASSERT_TRUE(server);
  Client before(server->port());
  ASSERT_TRUE(before.Get("/before"));
  ASSERT_TRUE(before.ReadResponse());
  std::unique_ptr<Client> during;
  {
    DescriptorLimit limit(static_cast<rlim_t>(HighestOpenDescriptor() + 2));
    std::vector<int> fillers;
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
    ASSERT_FALSE(fillers.empty());
    ::close(fillers.back());  // room for one client socket, none for the server's accept
    fillers.pop_back();
    during = std::make_unique<Client>(server->port());
    ASSERT_TRUE(during->connected());
    ASSERT_TRUE(during->Get("/during"));
    // The server cannot accept `during` now, yet serves the connection it has.
    ASSERT_TRUE(before.Get("/still"));
    auto still = before.ReadResponse();
    ASSERT_TRUE(still);
    EXPECT_EQ(still->body, "/still");
    for (int fd : fillers) ::close(fd);
  }
  auto r = during->ReadResponse();  // accepted once descriptors are back
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "/during");
}

}  // namespace
}  // namespace slipway::net
