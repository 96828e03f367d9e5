#pragma once
// The server side of one WebSocket connection, for net/http_server.cpp. Includes Beast: only
// for .cpp files of net/ that already use it.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "net/http.h"

namespace slipway::net::ws {

using UpgradeRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Why a request cannot be upgraded: the status (426 or 400), the API error body's "error" and
// "detail", and headers for the answer (426 names the protocol and version it wants).
struct Refusal {
  int status = 426;
  std::string error;
  std::string detail;
  Headers headers;
};

// nullopt when `request` is a valid RFC 6455 upgrade request; null `request` stands for a
// request without an Upgrade header.
std::optional<Refusal> CheckUpgrade(const UpgradeRequest* request);

// What a connection needs from its server.
struct ServerHooks {
  // Runs `fn` on the worker pool and resumes the caller on its strand. Unless `always`, `fn`
  // is skipped once the server is stopping. `fn` must not throw.
  std::function<boost::asio::awaitable<void>(std::function<void()> fn, bool always)> on_worker;
  // Where the connection puts, for as long as it is open, the function that closes it with
  // 1001 (the server calls it on the connection's strand from Stop()). Strand only.
  std::function<void()>* stop_hook = nullptr;
};

// Accepts the checked `request` on `stream` (101 with `headers` added), then serves the
// connection until it ends, calling `handler`'s callbacks as net/http.h says. Runs on the
// connection's strand (the executor of `stream`). Returns once nothing of the connection is in
// use any more, so the caller may then close and destroy `stream`; a failed handshake returns
// without calling any callback. Never throws (anything unexpected is logged).
boost::asio::awaitable<void> Serve(boost::beast::tcp_stream& stream, const UpgradeRequest& request,
                                   const Headers& headers,
                                   std::shared_ptr<WebSocketHandler> handler, std::string remote,
                                   ServerHooks hooks);

}  // namespace slipway::net::ws
