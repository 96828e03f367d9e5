#include "net/http_client.h"

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <limits>
#include <optional>

namespace slipway::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

http::request<http::string_body> BuildRequest(const Endpoint& ep, const ClientRequest& req) {
  http::request<http::string_body> out;
  out.method_string(req.method);
  out.target(req.target);
  out.version(11);
  std::string host = req.host_header;
  if (host.empty())
    host = ep.unix_path.empty() ? ep.host + ":" + std::to_string(ep.port) : "localhost";
  out.set(http::field::host, host);
  out.set(http::field::user_agent, "slipway");
  out.set(http::field::connection, "close");
  for (const auto& [k, v] : req.headers) out.set(k, v);
  out.body() = req.body;
  out.prepare_payload();
  return out;
}

ClientResponse FromBeast(http::response<http::string_body>& in) {
  ClientResponse r;
  r.status = static_cast<int>(in.result_int());
  for (const auto& f : in) {
    std::string key(f.name_string());
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    r.headers[key] = std::string(f.value());
  }
  r.body = std::move(in.body());
  return r;
}

// Runs connect → write → read on `stream` inside a private io_context; the deadline is
// enforced by cancelling the stream.
template <typename Stream, typename Connect>
Result<ClientResponse> Exchange(asio::io_context& ioc, Stream& stream, Connect connect,
                                const Endpoint& ep, const ClientRequest& req) {
  auto request = BuildRequest(ep, req);
  http::response_parser<http::string_body> parser;
  parser.body_limit(req.max_body);
  beast::flat_buffer buffer;
  std::optional<Status> failure;
  bool done = false;
  asio::steady_timer deadline(ioc, req.timeout);
  deadline.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    failure =
        Status(Code::kTimeout, "no response within " + std::to_string(req.timeout.count()) + " ms");
    boost::system::error_code ignored;
    stream.close(ignored);
  });
  connect([&](boost::system::error_code ec) {
    if (ec) {
      if (!failure) failure = Unavailable("connect: " + ec.message());
      deadline.cancel();
      return;
    }
    http::async_write(stream, request, [&](boost::system::error_code wec, std::size_t) {
      if (wec) {
        if (!failure) failure = Unavailable("send: " + wec.message());
        deadline.cancel();
        return;
      }
      http::async_read(stream, buffer, parser, [&](boost::system::error_code rec, std::size_t) {
        if (rec && !failure) failure = Unavailable("receive: " + rec.message());
        done = !rec;
        deadline.cancel();
      });
    });
  });
  ioc.run();
  if (failure) return *failure;
  if (!done) return Internal("incomplete response");
  return FromBeast(parser.get());
}

template <typename Stream, typename Connect>
Result<ClientResponse> StreamExchange(asio::io_context& ioc, Stream& stream, Connect connect,
                                      const Endpoint& ep, const ClientRequest& req,
                                      const BodySink& on_data) {
  auto request = BuildRequest(ep, req);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  beast::flat_buffer buffer;
  std::array<char, 16384> chunk;
  std::optional<Status> failure;
  bool done = false;
  asio::steady_timer deadline(ioc, req.timeout);
  deadline.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    failure = Status(Code::kTimeout,
                     "no complete response within " + std::to_string(req.timeout.count()) + " ms");
    boost::system::error_code ignored;
    stream.close(ignored);
  });
  auto fail = [&](const std::string& what, boost::system::error_code ec) {
    if (!failure) failure = Unavailable(what + ": " + ec.message());
    deadline.cancel();
  };
  std::function<void()> read_more = [&] {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    http::async_read_some(stream, buffer, parser, [&](boost::system::error_code ec, std::size_t) {
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return fail("receive", ec);
      std::size_t got = chunk.size() - parser.get().body().size;
      if (got > 0 && !on_data(std::string_view(chunk.data(), got))) {
        done = true;
        boost::system::error_code ignored;
        stream.close(ignored);
        deadline.cancel();
        return;
      }
      if (parser.is_done()) {
        done = true;
        deadline.cancel();
        return;
      }
      read_more();
    });
  };
  connect([&](boost::system::error_code ec) {
    if (ec) return fail("connect", ec);
    http::async_write(stream, request, [&](boost::system::error_code wec, std::size_t) {
      if (wec) return fail("send", wec);
      http::async_read_header(stream, buffer, parser,
                              [&](boost::system::error_code hec, std::size_t) {
                                if (hec) return fail("receive", hec);
                                if (parser.is_done()) {
                                  done = true;
                                  deadline.cancel();
                                  return;
                                }
                                read_more();
                              });
    });
  });
  ioc.run();
  if (failure && !done) return *failure;
  ClientResponse r;
  r.status = static_cast<int>(parser.get().result_int());
  for (const auto& f : parser.get()) {
    std::string key(f.name_string());
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    r.headers[key] = std::string(f.value());
  }
  return r;
}

// Opens the private io_context and socket for one call and hands them to `exchange`.
template <typename Exchange>
Result<ClientResponse> OnConnection(const Endpoint& ep, Exchange&& exchange) {
  if (ep.tls) return Invalid("https is not supported by the built-in client");
  asio::io_context ioc;
  if (!ep.unix_path.empty()) {
    asio::local::stream_protocol::socket socket(ioc);
    auto connect = [&](auto handler) {
      socket.async_connect(asio::local::stream_protocol::endpoint(ep.unix_path), handler);
    };
    return exchange(ioc, socket, connect);
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(ep.host == "localhost" ? "127.0.0.1" : ep.host, ec);
  if (ec) return Invalid("client supports IP addresses and localhost only, not '" + ep.host + "'");
  asio::ip::tcp::socket socket(ioc);
  auto connect = [&](auto handler) {
    socket.async_connect(asio::ip::tcp::endpoint(address, static_cast<unsigned short>(ep.port)),
                         handler);
  };
  return exchange(ioc, socket, connect);
}

}  // namespace

Result<ClientResponse> HttpCall(const Endpoint& ep, const ClientRequest& req) {
  return OnConnection(ep, [&](asio::io_context& ioc, auto& socket, auto connect) {
    return Exchange(ioc, socket, connect, ep, req);
  });
}

Result<ClientResponse> HttpStream(const Endpoint& ep, const ClientRequest& req,
                                  const BodySink& on_data) {
  return OnConnection(ep, [&](asio::io_context& ioc, auto& socket, auto connect) {
    return StreamExchange(ioc, socket, connect, ep, req, on_data);
  });
}

}  // namespace slipway::net
