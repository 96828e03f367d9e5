#include "net/http_server.h"
#include "net/listen.h"
#include "net/ws_server.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace slipway::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// Note for every coroutine below: GCC 12 destroys a lambda closure or a brace-initialised
// temporary twice when it appears inside a co_await expression, so such values are always
// named first and moved in.
// Waits this long or longer count as "never" (and keep the clock arithmetic in range).
constexpr milliseconds kNever = std::chrono::hours(24 * 365);

HttpRequest ToRequest(const http::request<http::string_body>& in, const std::string& remote) {
  HttpRequest r;
  r.method = std::string(in.method_string());
  r.target = std::string(in.target());
  auto q = r.target.find('?');
  r.path = PercentDecode(std::string_view(r.target).substr(0, q));
  if (q != std::string::npos) r.query = ParseQuery(std::string_view(r.target).substr(q + 1));
  for (const auto& field : in) {
    std::string key(field.name_string());
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    r.headers[key] = std::string(field.value());
  }
  r.body = in.body();
  r.remote = remote;
  return r;
}

http::response<http::string_body> ToBeast(const HttpResponse& out, unsigned version,
                                          bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(out.status), version};
  res.set(http::field::server, "slipway");
  res.set(http::field::content_type, out.content_type);
  for (const auto& [k, v] : out.headers) res.set(k, v);
  res.body() = out.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// The API's error shape, {"error": code, "detail": message}, serialised by the JSON library
// so that any byte in `detail` comes out escaped (invalid UTF-8 is replaced, not thrown on).
HttpResponse ErrorResponse(int status, const std::string& error, const std::string& detail) {
  HttpResponse r;
  r.status = status;
  r.body = nlohmann::ordered_json{{"error", error}, {"detail", detail}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse InternalError() {
  return ErrorResponse(500, "internal", "unexpected server error");
}

SteadyClock::time_point After(milliseconds wait) {
  return SteadyClock::now() + std::min(wait, kNever);
}

// Runs an event loop until it is stopped. Whatever escapes a completion handler is logged
// and the loop goes on, so one bad callback cannot take a server thread (and the process,
// through std::terminate) down with it.
void RunLoop(asio::io_context& ctx, const char* what) {
  for (;;) {
    try {
      ctx.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("API {} thread: unexpected exception: {}", what, e.what());
    } catch (...) {
      spdlog::error("API {} thread: unexpected non-standard exception", what);
    }
  }
}

// Completion handler for detached coroutines: their exceptions are logged, not dropped.
auto LogFailure(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("API {} failed: {}", what, ex.what());
    } catch (...) {
      spdlog::error("API {} failed with a non-standard exception", what);
    }
  };
}

// One accepted connection, owned by its session coroutine and shared with Stop() and with
// notifier wakes, which reach it only by posting to its strand: every member but `ex` is
// touched on that strand only.
struct Conn {
  explicit Conn(tcp::socket socket)
      : ex(socket.get_executor()), stream(std::move(socket)), signal(ex) {}

  // Ends the connection: a WebSocket on it is asked to close (close_hook), any other has its
  // socket closed.
  void Close() {
    closing = true;
    signal.cancel();
    if (close_hook) {
      close_hook();
    } else {
      stream.close();
    }
  }

  const asio::any_io_executor ex;  // the connection's strand
  beast::tcp_stream stream;
  asio::steady_timer signal;         // parked waits sleep on it; wakes and Close() cancel it
  bool woken = false;                // a wake arrived since the last poll/next call began
  bool closing = false;              // the server or the peer ended the connection
  bool watch_peer = true;            // while parked, a readable socket may mean the peer left
  std::function<void()> close_hook;  // set while a WebSocket runs on the connection
};

// The callback a Notifier gets. It only posts to the connection's strand (it never blocks
// the notifying thread nor keeps the connection alive), and a burst of wakes costs one post.
std::function<void()> MakeWake(const std::shared_ptr<Conn>& conn) {
  auto posted = std::make_shared<std::atomic<bool>>(false);
  return [weak = std::weak_ptr<Conn>(conn), ex = conn->ex, posted] {
    if (posted->exchange(true)) return;
    asio::post(ex, [weak, posted] {
      posted->store(false);  // first, so that a wake from now on posts again
      if (auto c = weak.lock()) {
        c->woken = true;
        c->signal.cancel();
      }
    });
  };
}

// A notifier subscription that lasts as long as the object, so that every way out of a
// wait (answer, peer gone, Stop(), exception) unsubscribes. A null notifier subscribes to
// nothing; a Subscribe that throws leaves ok() false.
class Subscription {
 public:
  Subscription(Notifier* notifier, std::int64_t topic, std::function<void()> wake) {
    if (!notifier) return;
    try {
      id_ = notifier->Subscribe(topic, std::move(wake));
      notifier_ = notifier;
    } catch (const std::exception& e) {
      spdlog::error("API notifier: Subscribe({}) threw: {}", topic, e.what());
      ok_ = false;
    } catch (...) {
      spdlog::error("API notifier: Subscribe({}) threw", topic);
      ok_ = false;
    }
  }
  ~Subscription() {
    if (!notifier_) return;
    try {
      notifier_->Unsubscribe(id_);
    } catch (...) {
      spdlog::error("API notifier: Unsubscribe threw");
    }
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  bool ok() const { return ok_; }

 private:
  Notifier* notifier_ = nullptr;
  std::uint64_t id_ = 0;
  bool ok_ = true;
};

// One of the server's max_streams places, held while a deferred or streamed response is
// open. held() is false when the cap was reached (and then nothing is counted).
class StreamSlot {
 public:
  StreamSlot(std::atomic<int>& open, int limit) : open_(open), held_(open.fetch_add(1) < limit) {
    if (!held_) open_.fetch_sub(1);
  }
  ~StreamSlot() {
    if (held_) open_.fetch_sub(1);
  }
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;
  bool held() const { return held_; }

 private:
  std::atomic<int>& open_;
  bool held_;
};

// Runs on a worker. A poll that throws, or that has nothing at its deadline, ends the long
// poll with a 500: the client gets an answer either way.
std::optional<HttpResponse> Poll(const DeferredResponse& d, bool deadline) {
  try {
    auto r = d.poll(deadline);
    if (r && (r->deferred || r->streamed)) {
      spdlog::error("API long poll answered with another deferred or streamed response");
      return InternalError();
    }
    if (r || !deadline) return r;
    spdlog::error("API long poll returned nothing at its deadline");
  } catch (const std::exception& e) {
    spdlog::error("API long poll threw: {}", e.what());
  } catch (...) {
    spdlog::error("API long poll threw a non-standard exception");
  }
  return InternalError();
}

// Runs on a worker. Once the head is out the status cannot change, so a producer that
// throws just ends the stream.
StreamChunk Next(const StreamedResponse& s, bool idle) {
  try {
    return s.next(idle);
  } catch (const std::exception& e) {
    spdlog::error("API event stream threw: {}", e.what());
  } catch (...) {
    spdlog::error("API event stream threw a non-standard exception");
  }
  return StreamChunk{{}, true};
}

// Exactly one of deferred/streamed, with its callback: anything else is a handler bug.
bool IsWellFormedOpen(const HttpResponse& r) {
  bool ok = r.deferred ? (!r.streamed && r.deferred->poll) : (r.streamed && r.streamed->next);
  if (!ok) spdlog::error("API handler returned a malformed deferred/streamed response");
  return ok;
}

// How to answer the request being served.
struct Reply {
  unsigned version = 11;
  bool keep_alive = false;
  bool head = false;  // a HEAD request: the head of the GET answer, no body
};

struct Incoming {
  HttpRequest request;
  Reply reply;
  std::optional<ws::UpgradeRequest> upgrade;  // the request as read, when it has an Upgrade header
};

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        ioc_(std::max(1, options_.io_threads)),
        workers_(std::max(1, options_.worker_threads)),
        accept_strand_(asio::make_strand(ioc_)),
        acceptor_(accept_strand_),
        backoff_(accept_strand_) {}

  ~HttpServerImpl() override { Stop(); }

  Status Bind() {
    Status s = net::Listen(acceptor_, options_.address, options_.port, "API");
    boost::system::error_code ec;
    if (s.ok()) port_ = acceptor_.local_endpoint(ec).port();
    return s;
  }

  int port() const override { return port_; }
  int open_streams() const override { return open_streams_.load(); }
  int open_websockets() const override { return open_websockets_.load(); }

  void Start() override {
    if (stopping_ || started_.exchange(true)) return;
    asio::co_spawn(accept_strand_, Accept(), LogFailure("accept loop"));
    io_work_.emplace(ioc_.get_executor());
    worker_work_.emplace(workers_.get_executor());
    for (int i = 0; i < std::max(1, options_.worker_threads); ++i)
      worker_threads_.emplace_back([this] { RunLoop(workers_, "worker"); });
    for (int i = 0; i < std::max(1, options_.io_threads); ++i)
      io_threads_.emplace_back([this] { RunLoop(ioc_, "io"); });
  }

  void Stop() override {
    if (stop_called_.exchange(true)) return;
    EndConnections();
    asio::post(accept_strand_, [this] { CloseAcceptor(); });
    WaitForSessions();
    // Every session is over, so no wake can reach the loops any more: stop them.
    io_work_.reset();
    ioc_.stop();
    for (auto& t : io_threads_) t.join();
    CloseAcceptor();  // in case the posted close never ran
    worker_work_.reset();
    workers_.stop();
    for (auto& t : worker_threads_) t.join();
  }

 private:
  using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

  // Tells every session to end (it does so at its next step: an I/O operation, a park or
  // the return of a worker call), and makes sure no new one starts.
  void EndConnections() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, weak] : conns_) {
      if (auto c = weak.lock()) asio::post(c->ex, [c] { c->Close(); });
    }
  }

  // Sessions end promptly once told, except one waiting for a handler that is running:
  // that one cannot be interrupted, and its worker must be joined anyway.
  void WaitForSessions() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return conns_.empty(); });
  }

  void CloseAcceptor() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    backoff_.cancel();
  }

  // Registers a session so that Stop() can end it and wait for it; nullopt when stopping.
  std::optional<std::uint64_t> Register(const std::shared_ptr<Conn>& c) {
    std::lock_guard lock(mu_);
    if (stopping_) return std::nullopt;
    conns_.emplace(++next_conn_id_, c);
    return next_conn_id_;
  }

  class Registration {
   public:
    Registration(HttpServerImpl& server, std::uint64_t id) : server_(server), id_(id) {}
    ~Registration() {
      // Notified under the lock: once Stop() sees no session it may destroy the server.
      std::lock_guard lock(server_.mu_);
      server_.conns_.erase(id_);
      server_.cv_.notify_all();
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

   private:
    HttpServerImpl& server_;
    std::uint64_t id_;
  };

  asio::awaitable<void> Accept() {
    while (!stopping_) {
      asio::any_io_executor strand = asio::make_strand(ioc_);
      auto [ec, socket] = co_await acceptor_.async_accept(strand, kTuple);
      if (stopping_ || ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (!ec) {
        accept_failures_ = 0;
        auto conn = std::make_shared<Conn>(std::move(socket));
        asio::co_spawn(conn->ex, Session(conn), LogFailure("connection"));
      } else if (ec != asio::error::connection_aborted) {
        co_await Backoff(ec);
      }
    }
  }

  // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): accepting again at once
  // would fail again and spin a core, so pause; open connections are served meanwhile.
  asio::awaitable<void> Backoff(const boost::system::error_code& ec) {
    if (accept_failures_++ == 0)
      spdlog::warn("API accept failed: {}; retrying every 100 ms", ec.message());
    backoff_.expires_after(milliseconds(100));
    co_await backoff_.async_wait(kTuple);
  }

  asio::awaitable<void> Session(std::shared_ptr<Conn> c) {
    auto id = Register(c);
    if (!id) co_return;
    Registration registration(*this, *id);
    std::string remote = RemoteAddress(*c);
    beast::flat_buffer buffer;
    while (!c->closing) {
      auto in = co_await Read(*c, buffer, remote);
      if (!in || !co_await Serve(c, std::move(*in))) break;
    }
    boost::system::error_code ec;
    c->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // Reads one request within the idle timeout; on failure answers it when that makes
  // sense (400, 413) and returns nullopt: the connection then closes.
  asio::awaitable<std::optional<Incoming>> Read(Conn& c, beast::flat_buffer& buffer,
                                                const std::string& remote) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.max_body);
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(options_.max_header, std::numeric_limits<std::uint32_t>::max())));
    c.stream.expires_after(options_.idle_timeout);
    auto [ec, n] = co_await http::async_read(c.stream, buffer, parser, kTuple);
    (void)n;
    c.stream.expires_never();
    if (!ec) {
      auto& msg = parser.get();
      Incoming in{ToRequest(msg, remote),
                  Reply{msg.version(), msg.keep_alive(), msg.method() == http::verb::head}};
      if (msg.count(http::field::upgrade) > 0) in.upgrade = parser.release();
      co_return in;
    }
    co_await Refuse(c, ec);
    co_return std::nullopt;
  }

  asio::awaitable<void> Refuse(Conn& c, const beast::error_code& ec) {
    static constexpr Reply kRefusal{11, false};
    if (c.closing) co_return;
    if (ec == http::error::body_limit) {
      auto detail = "request body exceeds " + std::to_string(options_.max_body) + " bytes";
      co_await Write(c, ErrorResponse(413, "too_large", detail), kRefusal);
      co_await LingeringClose(c.stream);
    } else if (ec.category() == http::make_error_code(http::error::body_limit).category() &&
               ec != http::error::end_of_stream) {
      // A parse error: the peer is still there to read why. (I/O errors, timeouts and a
      // clean close between requests get no answer.)
      co_await Write(c, ErrorResponse(400, "bad_request", ec.message()), kRefusal);
    }
  }

  // After refusing a request early, reads (and drops) what the client is still sending for
  // a bounded time, so it gets to read our answer instead of a connection reset.
  static asio::awaitable<void> LingeringClose(beast::tcp_stream& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(5));
    std::array<char, 65536> sink;
    std::size_t total = 0;
    while (total < (64u << 20)) {
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
      if (rec) break;
      total += n;
    }
  }

  // Runs the handler on a worker and answers. False when the connection should close.
  asio::awaitable<bool> Serve(std::shared_ptr<Conn> c, Incoming in) {
    auto call = [this, request = std::move(in.request)]() mutable { return Handle(request); };
    HttpResponse response = co_await OnWorker(
        std::move(call), ErrorResponse(503, "unavailable", "the server is stopping"));
    if (c->closing) co_return false;
    if (response.websocket)
      co_return co_await ServeWebSocket(std::move(c), std::move(response), std::move(in));
    if (response.deferred || response.streamed)
      co_return co_await ServeOpen(std::move(c), std::move(response), in.reply);
    co_return co_await Answer(*c, response, in.reply);
  }

  HttpResponse Handle(HttpRequest& request) {
    try {
      return handler_(request);
    } catch (const std::exception& e) {
      spdlog::error("API handler for {} {} threw: {}", request.method, request.path, e.what());
    } catch (...) {
      spdlog::error("API handler for {} {} threw a non-standard exception", request.method,
                    request.path);
    }
    return InternalError();
  }

  // Runs `fn` on the worker pool and resumes the caller on its own strand afterwards. Once
  // the server is stopping, a job still queued does not run and gives `if_stopping`.
  template <typename R, typename F>
  asio::awaitable<R> OnWorker(F fn, R if_stopping) {
    auto job = [this, fn = std::move(fn),
                fallback = std::move(if_stopping)]() mutable -> asio::awaitable<R> {
      if (stopping_) co_return std::move(fallback);
      co_return fn();
    };
    return asio::co_spawn(workers_.get_executor(), std::move(job), asio::use_awaitable);
  }

  // Like OnWorker, for the WebSocket callbacks: `always` runs `fn` even once stopping (for
  // on_open and on_close, which a connection that got its handshake must get).
  asio::awaitable<void> RunOnWorker(std::function<void()> fn, bool always) {
    auto job = [this, fn = std::move(fn), always]() -> asio::awaitable<void> {
      if (always || !stopping_) fn();
      co_return;
    };
    return asio::co_spawn(workers_.get_executor(), std::move(job), asio::use_awaitable);
  }

  // A WebSocket upgrade: checked, then one of the max_websockets places, then served until
  // it closes (the connection never goes back to HTTP). A refusal keeps the connection.
  asio::awaitable<bool> ServeWebSocket(std::shared_ptr<Conn> c, HttpResponse response,
                                       Incoming in) {
    if (response.deferred || response.streamed) {
      spdlog::error("API handler returned a websocket with a deferred or streamed response");
      co_return co_await Answer(*c, InternalError(), in.reply);
    }
    if (auto refusal = ws::CheckUpgrade(in.upgrade ? &*in.upgrade : nullptr))
      co_return co_await Answer(*c, Refused(*refusal), in.reply);
    StreamSlot slot(open_websockets_, options_.max_websockets);
    if (!slot.held()) co_return co_await Answer(*c, TooManyWebSockets(), in.reply);
    ws::ServerHooks hooks;
    hooks.on_worker = [this](std::function<void()> fn, bool always) {
      return RunOnWorker(std::move(fn), always);
    };
    hooks.stop_hook = &c->close_hook;
    co_await ws::Serve(c->stream, *in.upgrade, response.headers, std::move(response.websocket),
                       RemoteAddress(*c), std::move(hooks));
    co_return false;
  }

  static HttpResponse Refused(const ws::Refusal& refusal) {
    HttpResponse r = ErrorResponse(refusal.status, refusal.error, refusal.detail);
    r.headers = refusal.headers;
    return r;
  }

  HttpResponse TooManyWebSockets() const {
    return ErrorResponse(503, "unavailable",
                         "too many open WebSocket connections (limit " +
                             std::to_string(options_.max_websockets) + "); try again later");
  }

  static std::string RemoteAddress(Conn& c) {
    boost::system::error_code ec;
    auto peer = c.stream.socket().remote_endpoint(ec);
    return ec ? "" : peer.address().to_string();
  }

  // A long poll or an event stream: it takes one of the max_streams places, or gets 503.
  asio::awaitable<bool> ServeOpen(std::shared_ptr<Conn> c, HttpResponse response, Reply reply) {
    if (!IsWellFormedOpen(response)) co_return co_await Answer(*c, InternalError(), reply);
    StreamSlot slot(open_streams_, options_.max_streams);
    if (!slot.held()) co_return co_await Answer(*c, TooManyStreams(), reply);
    if (response.deferred) co_return co_await Defer(c, response.deferred, reply);
    co_await Stream(c, std::move(response), reply.version);
    co_return false;  // a streamed body ends with the connection
  }

  HttpResponse TooManyStreams() const {
    return ErrorResponse(503, "unavailable",
                         "too many open event streams (limit " +
                             std::to_string(options_.max_streams) + "); try again later");
  }

  // Subscribed before the first poll, so that a change between that poll and the park
  // still wakes us. Wakes that come while a poll runs set `woken`: one more poll covers
  // them all. False when the connection should close.
  asio::awaitable<bool> Defer(std::shared_ptr<Conn> c, std::shared_ptr<DeferredResponse> d,
                              Reply reply) {
    Subscription subscription(d->notifier, d->topic, MakeWake(c));
    if (!subscription.ok()) co_return co_await Answer(*c, InternalError(), reply);
    const auto deadline = After(d->wait);
    c->watch_peer = true;
    for (bool final = false;; final = SteadyClock::now() >= deadline) {
      c->woken = false;
      auto call = [d, final] { return Poll(*d, final); };
      std::optional<HttpResponse> nothing;
      auto r = co_await OnWorker(std::move(call), std::move(nothing));
      if (r && !c->closing) co_return co_await Answer(*c, *r, reply);
      if (c->closing || stopping_ || !co_await Park(*c, deadline)) co_return false;
    }
  }

  // Head first (close-delimited body, so HTTP/1.0 clients work too), then each chunk as
  // `next` produces it; a keep-alive call when `keepalive` passes without a wake.
  asio::awaitable<void> Stream(std::shared_ptr<Conn> c, HttpResponse head, unsigned version) {
    auto s = head.streamed;
    Subscription subscription(s->notifier, s->topic, MakeWake(c));
    if (!subscription.ok()) {
      const Reply once{version, false};
      co_await Answer(*c, InternalError(), once);
      co_return;
    }
    if (!co_await WriteHead(*c, head, version)) co_return;
    const milliseconds keepalive = s->keepalive > milliseconds(0) ? s->keepalive : kNever;
    c->watch_peer = true;
    for (bool idle = false;;) {
      c->woken = false;
      auto call = [s, idle] { return Next(*s, idle); };
      StreamChunk end{{}, true};
      auto chunk = co_await OnWorker(std::move(call), std::move(end));
      if (c->closing || stopping_) co_return;
      if (!chunk.data.empty() && !co_await WriteRaw(*c, chunk.data)) co_return;
      if (chunk.done) co_return;
      const auto deadline = After(keepalive);
      if (!co_await Park(*c, deadline)) co_return;
      idle = !c->woken && SteadyClock::now() >= deadline;
    }
  }

  // Sleeps on the connection's timer, holding no worker, until a wake, `deadline`, Stop()
  // or (when cheap to tell) the peer leaving. True when the caller should poll again.
  asio::awaitable<bool> Park(Conn& c, SteadyClock::time_point deadline) {
    if (!c.woken && !c.closing && SteadyClock::now() < deadline) {
      c.signal.expires_at(deadline);
      if (c.watch_peer) {
        co_await WaitOrPeerGone(c);
      } else {
        co_await c.signal.async_wait(kTuple);
      }
    }
    co_return !c.closing && !stopping_;
  }

  // Waits on the timer and, at the same time, for the socket to become readable: a
  // readable socket with nothing to read means the peer closed it. Data instead (a
  // pipelined request) stays for later, and the socket is not watched again.
  static asio::awaitable<void> WaitOrPeerGone(Conn& c) {
    auto waits = asio::experimental::make_parallel_group(
        c.signal.async_wait(asio::deferred),
        c.stream.socket().async_wait(tcp::socket::wait_read, asio::deferred));
    auto first = waits.async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    auto [order, timer_ec, peer_ec] = co_await std::move(first);
    (void)timer_ec;
    if (order[0] != 1 || peer_ec) co_return;
    boost::system::error_code ec;
    if (c.stream.socket().available(ec) == 0 || ec) {
      c.closing = true;
    } else {
      c.watch_peer = false;
    }
  }

  asio::awaitable<bool> Answer(Conn& c, const HttpResponse& response, Reply reply) {
    co_return co_await Write(c, response, reply) && reply.keep_alive;
  }

  asio::awaitable<bool> Write(Conn& c, const HttpResponse& response, Reply reply) {
    auto res = ToBeast(response, reply.version, reply.keep_alive);
    if (reply.head) res.body().clear();  // Content-Length stays that of the GET answer
    c.stream.expires_after(options_.idle_timeout);
    auto [ec, n] = co_await http::async_write(c.stream, res, kTuple);
    (void)n;
    c.stream.expires_never();
    co_return !ec;
  }

  asio::awaitable<bool> WriteHead(Conn& c, const HttpResponse& r, unsigned version) {
    http::response<http::empty_body> head{static_cast<http::status>(r.status), version};
    head.set(http::field::server, "slipway");
    head.set(http::field::content_type, r.content_type);
    head.set(http::field::cache_control, "no-cache");
    for (const auto& [k, v] : r.headers) head.set(k, v);
    head.keep_alive(false);
    http::response_serializer<http::empty_body> serializer{head};
    c.stream.expires_after(options_.idle_timeout);
    auto [ec, n] = co_await http::async_write_header(c.stream, serializer, kTuple);
    (void)n;
    c.stream.expires_never();
    co_return !ec;
  }

  // The idle timeout bounds each write too: a client that stops reading loses its stream.
  asio::awaitable<bool> WriteRaw(Conn& c, const std::string& data) {
    c.stream.expires_after(options_.idle_timeout);
    auto [ec, n] = co_await asio::async_write(c.stream, asio::buffer(data), kTuple);
    (void)n;
    c.stream.expires_never();
    co_return !ec;
  }

  HttpServerOptions options_;
  HttpHandler handler_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_called_{false};
  std::atomic<bool> stopping_{false};  // set under mu_, read anywhere
  std::atomic<int> open_streams_{0};
  std::atomic<int> open_websockets_{0};
  int port_ = 0;
  int accept_failures_ = 0;  // in a row; accept strand only
  std::mutex mu_;
  std::condition_variable cv_;                          // signalled when a session ends
  std::map<std::uint64_t, std::weak_ptr<Conn>> conns_;  // live sessions; guarded by mu_
  std::uint64_t next_conn_id_ = 0;                      // guarded by mu_
  // Declared in this order so that the worker pool (whose queued jobs hold work on the
  // I/O loop) and the I/O objects go before the loop they belong to.
  asio::io_context ioc_;
  asio::io_context workers_;
  asio::any_io_executor accept_strand_;
  tcp::acceptor acceptor_;
  asio::steady_timer backoff_;
  std::optional<WorkGuard> io_work_;
  std::optional<WorkGuard> worker_work_;
  std::vector<std::thread> io_threads_;
  std::vector<std::thread> worker_threads_;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options,
                                                       HttpHandler handler) {
  auto server = std::make_unique<HttpServerImpl>(std::move(options), std::move(handler));
  if (Status s = server->Bind(); !s.ok()) return s;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace slipway::net
