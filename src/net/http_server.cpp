#include "net/http_server.h"
#include "net/listen.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>
#include <vector>

namespace slipway::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

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

HttpResponse ErrorResponse(int status, const std::string& error, const std::string& detail) {
  HttpResponse r;
  r.status = status;
  std::string escaped;
  for (char c : detail) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  r.body = "{\"error\":\"" + error + "\",\"detail\":\"" + escaped + "\"}";
  return r;
}

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        acceptor_(ioc_),
        workers_(static_cast<std::size_t>(options_.worker_threads)) {}

  ~HttpServerImpl() override { Stop(); }

  Status Bind() { return net::Listen(acceptor_, options_.address, options_.port, "API"); }

  int port() const override { return acceptor_.local_endpoint().port(); }

  void Start() override {
    asio::co_spawn(ioc_, Accept(), asio::detached);
    for (int i = 0; i < options_.io_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    asio::post(ioc_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
    });
    ioc_.stop();
    for (auto& t : threads_) t.join();
    workers_.stop();
    workers_.join();
  }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      asio::co_spawn(ioc_, Session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Session(tcp::socket socket) {
    boost::system::error_code ec;
    auto peer = socket.remote_endpoint(ec);
    std::string remote = ec ? "" : peer.address().to_string();
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options_.max_body);
      parser.header_limit(64 * 1024);
      stream.expires_after(options_.idle_timeout);
      auto [rec, n] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      (void)n;
      if (rec) {
        if (rec == http::error::body_limit) {
          co_await Write(
              stream,
              ErrorResponse(413, "too_large",
                            "request body exceeds " + std::to_string(options_.max_body) + " bytes"),
              11, false);
          co_await LingeringClose(stream);
          co_return;
        } else if (rec != http::error::end_of_stream && rec != beast::error::timeout &&
                   rec != asio::error::connection_reset && rec != asio::error::eof) {
          co_await Write(stream, ErrorResponse(400, "bad_request", rec.message()), 11, false);
        }
        break;
      }
      auto& msg = parser.get();
      bool keep_alive = msg.keep_alive();
      unsigned version = msg.version();
      HttpRequest request = ToRequest(msg, remote);
      stream.expires_never();
      // Run the handler where blocking is allowed, then come back to the socket's strand.
      auto io = co_await asio::this_coro::executor;
      co_await asio::post(workers_, asio::use_awaitable);
      HttpResponse response = Handle(request);
      if (response.stream) {
        Stream(stream, response, version);
        co_await asio::post(io, asio::use_awaitable);
        break;
      }
      co_await asio::post(io, asio::use_awaitable);
      stream.expires_after(options_.idle_timeout);
      if (!co_await Write(stream, response, version, keep_alive) || !keep_alive) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
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
      auto [rec, n] =
          co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
      if (rec) break;
      total += n;
    }
  }

  HttpResponse Handle(HttpRequest& request) {
    try {
      return handler_(request);
    } catch (const std::exception& e) {
      spdlog::error("handler for {} {} threw: {}", request.method, request.path, e.what());
      return ErrorResponse(500, "internal", "unexpected server error");
    }
  }

  // Runs on a worker thread: blocking writes on the connection are fine here.
  static void Stream(beast::tcp_stream& stream, HttpResponse& response, unsigned version) {
    http::response<http::empty_body> head{static_cast<http::status>(response.status), version};
    head.set(http::field::server, "slipway");
    head.set(http::field::content_type, response.content_type);
    head.set(http::field::cache_control, "no-cache");
    for (const auto& [k, v] : response.headers) head.set(k, v);
    head.keep_alive(false);
    boost::system::error_code ec;
    http::response_serializer<http::empty_body> sr{head};
    http::write_header(stream.socket(), sr, ec);
    if (ec) return;
    auto& socket = stream.socket();
    response.stream([&socket](std::string_view chunk) {
      boost::system::error_code wec;
      asio::write(socket, asio::buffer(chunk.data(), chunk.size()), wec);
      return !wec;
    });
  }

  static asio::awaitable<bool> Write(beast::tcp_stream& stream, const HttpResponse& response,
                                     unsigned version, bool keep_alive) {
    auto res = ToBeast(response, version, keep_alive);
    auto [ec, n] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return !ec;
  }

  HttpServerOptions options_;
  HttpHandler handler_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::thread_pool workers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Create(HttpServerOptions options,
                                                       HttpHandler handler) {
  auto server = std::make_unique<HttpServerImpl>(std::move(options), std::move(handler));
  if (Status s = server->Bind(); !s.ok()) return s;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace slipway::net
