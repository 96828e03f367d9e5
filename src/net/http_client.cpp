#include "net/http_client.h"

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
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
  if (host.empty()) host = ep.unix_path.empty() ? ep.host + ":" + std::to_string(ep.port) : "localhost";
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
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
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
    failure = Status(Code::kTimeout, "no response within " + std::to_string(req.timeout.count()) + " ms");
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

}  // namespace

Result<ClientResponse> HttpCall(const Endpoint& ep, const ClientRequest& req) {
  if (ep.tls) return Invalid("https is not supported by the built-in client");
  asio::io_context ioc;
  if (!ep.unix_path.empty()) {
    asio::local::stream_protocol::socket socket(ioc);
    auto connect = [&](auto handler) {
      socket.async_connect(asio::local::stream_protocol::endpoint(ep.unix_path), handler);
    };
    return Exchange(ioc, socket, connect, ep, req);
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(ep.host == "localhost" ? "127.0.0.1" : ep.host, ec);
  if (ec) return Invalid("client supports IP addresses and localhost only, not '" + ep.host + "'");
  asio::ip::tcp::socket socket(ioc);
  auto connect = [&](auto handler) {
    socket.async_connect(asio::ip::tcp::endpoint(address, static_cast<unsigned short>(ep.port)),
                         handler);
  };
  return Exchange(ioc, socket, connect, ep, req);
}

}  // namespace slipway::net
