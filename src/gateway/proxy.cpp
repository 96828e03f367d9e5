#include "gateway/proxy.h"
#include "net/listen.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace slipway::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Idle keep-alive connections to one target. Sockets are handed between io threads, so
// the mutex guards the vector only (never held across I/O).
struct Pool {
  std::mutex mu;
  std::vector<std::vector<tcp::socket>> idle;  // per io_context: a socket stays on its loop
};

http::response<http::string_body> Page(int status, const std::string& title,
                                       const std::string& detail, unsigned version) {
  http::response<http::string_body> res{static_cast<http::status>(status), version};
  res.set(http::field::server, "slipway");
  res.set(http::field::content_type, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = fmt::format(
      "<!doctype html><html><head><title>{0} {1}</title></head><body><h1>{0} {1}</h1>"
      "<p>{2}</p><hr><p>slipway gateway</p></body></html>\n",
      status, title, detail);
  res.prepare_payload();
  return res;
}

bool IsUpgrade(const http::request<http::string_body>& req) {
  auto it = req.find(http::field::upgrade);
  return it != req.end() && beast::iequals(it->value(), "websocket");
}

class ProxyImpl final : public Proxy {
 public:
  ProxyImpl(ProxyOptions options, const Router& router)
      : options_(std::move(options)),
        router_(router),
        contexts_(MakeContexts(options_.threads)),
        acceptor_(*contexts_.front()) {}
  ~ProxyImpl() override { Stop(); }

  Status Bind() { return net::Listen(acceptor_, options_.address, options_.port, "gateway"); }

  int port() const override { return acceptor_.local_endpoint().port(); }

  void Start() override {
    asio::co_spawn(*contexts_.front(), Accept(), asio::detached);
    for (auto& ctx : contexts_) {
      // Keeps a loop with no connection yet from returning at once.
      guards_.push_back(asio::make_work_guard(*ctx));
      threads_.emplace_back([c = ctx.get()] { c->run(); });
    }
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    for (auto& ctx : contexts_) ctx->stop();
    for (auto& t : threads_) t.join();
    // Idle upstream sockets belong to this io_context; they must close before it goes,
    // though the Targets holding them live on in the router.
    for (const auto& r : router_.Snapshot()->routes()) {
      auto targets = r.pool;
      if (r.target) targets.push_back(r.target);
      for (const auto& t : targets) {
        auto pool = t->State<Pool>();
        std::lock_guard lock(pool->mu);
        pool->idle.clear();
      }
    }
  }

 private:
  // One io_context per thread, each with its own connections (client and upstream), so the
  // threads never contend on one scheduler.
  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int n) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    for (int i = 0; i < std::max(1, n); ++i) out.push_back(std::make_unique<asio::io_context>(1));
    return out;
  }

  asio::awaitable<void> Accept() {
    for (std::size_t next = 0;; next = (next + 1) % contexts_.size()) {
      auto [ec, socket] =
          co_await acceptor_.async_accept(*contexts_[next], asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (!acceptor_.is_open()) co_return;
        // Out of descriptors (or memory): pause instead of spinning a core on the same error,
        // and keep serving the connections already open.
        asio::steady_timer pause(co_await asio::this_coro::executor,
                                 std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(*contexts_[next], Session(std::move(socket), next), asio::detached);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket, std::size_t loop) {
    boost::system::error_code ec;
    auto peer = socket.remote_endpoint(ec);
    std::string client_ip = ec ? "" : peer.address().to_string();
    beast::tcp_stream client(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options_.max_body);
      client.expires_after(options_.client_idle_timeout);
      auto [rec, n] =
          co_await http::async_read(client, buffer, parser, asio::as_tuple(asio::use_awaitable));
      (void)n;
      if (rec) {
        if (rec == http::error::body_limit) {
          auto page = Page(413, "Payload Too Large", "The request body is too large.", 11);
          co_await Send(client, std::move(page));
        }
        break;
      }
      client.expires_never();
      auto req = parser.release();
      bool keep_alive = req.keep_alive();
      if (!co_await Forward(client, req, client_ip, keep_alive, loop)) break;
      if (!keep_alive) break;
    }
    client.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  static asio::awaitable<bool> Send(beast::tcp_stream& client,
                                    http::response<http::string_body> res) {
    auto [ec, n] = co_await http::async_write(client, res, asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return !ec;
  }

  // Returns false when the client connection must close.
  asio::awaitable<bool> Forward(beast::tcp_stream& client, http::request<http::string_body>& req,
                                const std::string& client_ip, bool& keep_alive, std::size_t loop) {
    auto table = router_.Snapshot();
    std::string host(req[http::field::host]);
    const Route* route = table->Match(host, req.target());
    unsigned version = req.version();
    if (!route) {
      auto page = Page(404, "Not Found", "No app is routed for host '" + host + "'.", version);
      bool sent = co_await Send(client, std::move(page));
      co_return sent&& keep_alive;
    }
    auto candidates = route->Candidates();
    if (candidates.empty()) {
      auto page = Page(503, "Service Unavailable",
                       "App '" + route->app + "' has no running release.", version);
      bool sent = co_await Send(client, std::move(page));
      co_return sent&& keep_alive;
    }
    AddForwardedHeaders(req, client_ip, host);
    if (IsUpgrade(req)) {
      Target& target = *candidates.front();
      target.BeginRequest();
      auto started = Clock::now();
      int status = 502;
      co_await Tunnel(client, req, target, status);
      target.EndRequest(status, std::chrono::duration<double>(Clock::now() - started).count());
      co_return false;
    }
    // Another target is tried when nothing reached the app (connection refused) or, for
    // requests safe to repeat, when the app went away before answering.
    bool idempotent = req.method() == http::verb::get || req.method() == http::verb::head ||
                      req.method() == http::verb::options;
    Outcome outcome;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      Target& target = *candidates[i];
      target.BeginRequest();
      auto started = Clock::now();
      outcome = co_await Exchange(req, target, loop);
      target.EndRequest(
          outcome.response ? static_cast<int>(outcome.response->result_int()) : outcome.status,
          std::chrono::duration<double>(Clock::now() - started).count());
      if (outcome.response) break;
      bool retry = outcome.nothing_sent || (idempotent && outcome.status == 502);
      if (!retry) break;
    }
    if (!outcome.response) {
      // Everything is built before the co_await: GCC 12 destroys the temporaries of a
      // conditional expression inside a co_await expression twice.
      std::string detail = outcome.status == 504 ? "The app did not answer in time."
                           : outcome.nothing_sent
                               ? "The app's instance is not accepting connections."
                               : "The app closed the connection.";
      auto page = Page(outcome.status, outcome.status == 504 ? "Gateway Timeout" : "Bad Gateway",
                       detail, version);
      bool sent = co_await Send(client, std::move(page));
      co_return sent&& keep_alive;
    }
    auto& res = *outcome.response;
    res.keep_alive(keep_alive);
    res.version(version);
    bool sent = co_await Send(client, std::move(res));
    co_return sent&& keep_alive;
  }

  struct Outcome {
    std::optional<http::response<http::string_body>> response;
    int status = 502;           // when there is no response: 502 or 504
    bool nothing_sent = false;  // the request never reached the app
  };

  // Slipway's own session cookie and API/session tokens are for the control plane, never for
  // an app: a browser sends the cookie to every port of a host, so an app on the API's host
  // would otherwise receive an operator's session.
  static void StripSlipwayCredentials(http::request<http::string_body>& req) {
    std::string auth(req[http::field::authorization]);
    if (auth.rfind("Bearer slw_", 0) == 0 || auth.rfind("Bearer sls_", 0) == 0)
      req.erase(http::field::authorization);
    std::string cookies(req[http::field::cookie]);
    if (cookies.find("slipway_session=") == std::string::npos) return;
    std::string kept;
    for (std::size_t pos = 0; pos < cookies.size();) {
      auto end = cookies.find(';', pos);
      if (end == std::string::npos) end = cookies.size();
      std::string part = cookies.substr(pos, end - pos);
      part.erase(0, part.find_first_not_of(' '));
      if (!part.empty() && part.rfind("slipway_session=", 0) != 0)
        kept += (kept.empty() ? "" : "; ") + part;
      pos = end + 1;
    }
    if (kept.empty())
      req.erase(http::field::cookie);
    else
      req.set(http::field::cookie, kept);
  }

  static void AddForwardedHeaders(http::request<http::string_body>& req, const std::string& ip,
                                  const std::string& host) {
    StripSlipwayCredentials(req);
    std::string xff(req["X-Forwarded-For"]);
    req.set("X-Forwarded-For", xff.empty() ? ip : xff + ", " + ip);
    if (req["X-Forwarded-Proto"].empty()) req.set("X-Forwarded-Proto", "http");
    if (req["X-Forwarded-Host"].empty()) req.set("X-Forwarded-Host", host);
  }

  asio::awaitable<std::optional<tcp::socket>> Connect(Target& target) {
    auto executor = co_await asio::this_coro::executor;
    beast::tcp_stream stream(executor);
    stream.expires_after(options_.connect_timeout);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(target.host(), ec);
    if (ec) co_return std::nullopt;
    auto [cec] = co_await stream.async_connect(
        tcp::endpoint(address, static_cast<unsigned short>(target.port())),
        asio::as_tuple(asio::use_awaitable));
    if (cec) co_return std::nullopt;
    stream.socket().set_option(tcp::no_delay(true), ec);
    co_return stream.release_socket();
  }

  std::optional<tcp::socket> TakeIdle(Target& target, std::size_t loop) {
    auto pool = target.State<Pool>();
    std::lock_guard lock(pool->mu);
    if (pool->idle.size() <= loop || pool->idle[loop].empty()) return std::nullopt;
    tcp::socket s = std::move(pool->idle[loop].back());
    pool->idle[loop].pop_back();
    return s;
  }

  void ReturnIdle(Target& target, std::size_t loop, tcp::socket socket) {
    auto pool = target.State<Pool>();
    std::lock_guard lock(pool->mu);
    if (pool->idle.size() <= loop) pool->idle.resize(contexts_.size());
    if (pool->idle[loop].size() < options_.max_idle_per_target)
      pool->idle[loop].push_back(std::move(socket));
  }

  // One request/response over a pooled or new connection. A pooled connection the target
  // closed while idle fails before any response byte; then the request is sent once more
  // on a fresh connection, so a recycled keep-alive never surfaces as a client error.
  asio::awaitable<Outcome> Exchange(http::request<http::string_body>& req, Target& target,
                                    std::size_t loop) {
    req.keep_alive(true);
    Outcome out;
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::optional<tcp::socket> socket = attempt == 0 ? TakeIdle(target, loop) : std::nullopt;
      bool pooled = socket.has_value();
      if (!socket) socket = co_await Connect(target);
      if (!socket) {
        out.nothing_sent = true;
        co_return out;
      }
      beast::tcp_stream upstream(std::move(*socket));
      upstream.expires_after(options_.upstream_timeout);
      auto [wec, wn] =
          co_await http::async_write(upstream, req, asio::as_tuple(asio::use_awaitable));
      (void)wn;
      beast::flat_buffer ubuf;
      http::response_parser<http::string_body> parser;
      parser.body_limit(options_.max_body);
      boost::system::error_code rec;
      if (!wec) {
        auto [ec2, rn] =
            co_await http::async_read(upstream, ubuf, parser, asio::as_tuple(asio::use_awaitable));
        (void)rn;
        rec = ec2;
      }
      boost::system::error_code err = wec ? wec : rec;
      if (err) {
        if (pooled && !parser.got_some() && err != beast::error::timeout)
          continue;  // stale keep-alive
        out.status = err == beast::error::timeout ? 504 : 502;
        co_return out;
      }
      out.response = parser.release();
      if (out.response->keep_alive()) {
        upstream.expires_never();
        ReturnIdle(target, loop, upstream.release_socket());
      }
      co_return out;
    }
    co_return out;
  }

  // WebSocket (or any Upgrade): forward the handshake on a fresh connection, relay the
  // response, then copy bytes both ways until either side closes.
  asio::awaitable<bool> Tunnel(beast::tcp_stream& client, http::request<http::string_body>& req,
                               Target& target, int& status) {
    auto socket = co_await Connect(target);
    if (!socket) {
      status = 502;
      auto page = Page(502, "Bad Gateway", "The app's instance is not accepting connections.",
                       req.version());
      co_await Send(client, std::move(page));
      co_return false;
    }
    beast::tcp_stream upstream(std::move(*socket));
    upstream.expires_after(options_.upstream_timeout);
    auto [wec, wn] = co_await http::async_write(upstream, req, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    beast::flat_buffer ubuf;
    http::response_parser<http::empty_body> parser;
    boost::system::error_code rec;
    if (!wec) {
      auto [ec2, rn] = co_await http::async_read_header(upstream, ubuf, parser,
                                                        asio::as_tuple(asio::use_awaitable));
      (void)rn;
      rec = ec2;
    }
    if (wec || rec) {
      status = 502;
      auto page = Page(502, "Bad Gateway", "The app refused the upgrade.", req.version());
      co_await Send(client, std::move(page));
      co_return false;
    }
    auto res = parser.release();
    status = static_cast<int>(res.result_int());
    http::response_serializer<http::empty_body> sr{res};
    auto [hec, hn] =
        co_await http::async_write_header(client, sr, asio::as_tuple(asio::use_awaitable));
    (void)hn;
    if (hec || status != 101) co_return false;
    upstream.expires_never();
    client.expires_never();
    // Bytes the parser read past the header belong to the tunnel.
    if (ubuf.size() > 0) {
      co_await asio::async_write(client, ubuf.data(), asio::as_tuple(asio::use_awaitable));
    }
    auto up = std::make_shared<tcp::socket>(upstream.release_socket());
    auto& down = client.socket();
    using namespace asio::experimental::awaitable_operators;
    co_await (Pipe(down, *up) || Pipe(*up, down));
    co_return false;
  }

  static asio::awaitable<void> Pipe(tcp::socket& from, tcp::socket& to) {
    std::array<char, 16384> buf;
    for (;;) {
      auto [ec, n] =
          co_await from.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                                  asio::as_tuple(asio::use_awaitable));
      (void)wn;
      if (wec) break;
    }
    boost::system::error_code ignored;
    to.shutdown(tcp::socket::shutdown_send, ignored);
  }

  ProxyOptions options_;
  const Router& router_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<Proxy>> Proxy::Create(ProxyOptions options, const Router& router) {
  auto proxy = std::make_unique<ProxyImpl>(std::move(options), router);
  if (Status s = proxy->Bind(); !s.ok()) return s;
  return std::unique_ptr<Proxy>(std::move(proxy));
}

void RenderTargetMetrics(const Router& router, std::string& out) {
  auto table = router.Snapshot();
  out +=
      "# HELP slipway_gateway_requests_total Requests the gateway forwarded, per app and target.\n"
      "# TYPE slipway_gateway_requests_total counter\n";
  std::string errors, inflight, latency;
  for (const auto& r : table->routes()) {
    std::vector<std::shared_ptr<Target>> targets = r.pool;
    if (r.target) targets.push_back(r.target);
    for (const auto& tp : targets) {
      const Target& t = *tp;
      auto labels = fmt::format("app=\"{}\",target=\"{}\"", r.app, t.id());
      out += fmt::format("slipway_gateway_requests_total{{{}}} {}\n", labels, t.requests());
      errors += fmt::format("slipway_gateway_errors_total{{{}}} {}\n", labels, t.errors());
      inflight += fmt::format("slipway_gateway_inflight{{{}}} {}\n", labels, t.inflight());
      std::int64_t cumulative = 0;
      for (std::size_t i = 0; i < Target::kBuckets.size(); ++i) {
        cumulative += t.bucket(i);
        latency +=
            fmt::format("slipway_gateway_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n",
                        labels, Target::kBuckets[i], cumulative);
      }
      latency +=
          fmt::format("slipway_gateway_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n",
                      labels, t.requests());
      latency += fmt::format("slipway_gateway_request_duration_seconds_sum{{{}}} {}\n", labels,
                             t.latency_sum());
      latency += fmt::format("slipway_gateway_request_duration_seconds_count{{{}}} {}\n", labels,
                             t.requests());
    }
  }
  out +=
      "# HELP slipway_gateway_errors_total Forwarded requests answered with a 5xx.\n"
      "# TYPE slipway_gateway_errors_total counter\n" +
      errors;
  out +=
      "# HELP slipway_gateway_inflight Requests in flight per target.\n"
      "# TYPE slipway_gateway_inflight gauge\n" +
      inflight;
  out +=
      "# HELP slipway_gateway_request_duration_seconds Gateway request latency.\n"
      "# TYPE slipway_gateway_request_duration_seconds histogram\n" +
      latency;
}

}  // namespace slipway::gateway
