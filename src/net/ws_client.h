#pragma once
// A WebSocket client (RFC 6455, text messages), plain or over TLS, with its own I/O thread.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace slipway::net {

struct WsClientOptions {
  std::string url;  // ws://host:port/path or wss://host:port/path (port optional: 80/443)
  // Extra upgrade-request headers, e.g. Authorization.
  std::vector<std::pair<std::string, std::string>> headers;
  // wss only: PEM CA bundle to verify the server with; "" = system default paths. The peer
  // and the host name (or IP address) of the URL are always verified; SNI is sent for names.
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{10000};  // also bounds the close handshake
  // Pings at half, closes when no traffic/pong for this long.
  std::chrono::milliseconds idle_timeout{30000};
  std::size_t max_message = 1 << 20;  // a larger received message closes with 1009
  // Bounds the send queue (see SendText) and the messages received but not yet returned by
  // Receive: beyond it the client stops reading from the socket until Receive catches up.
  std::size_t max_queued_bytes = 8 << 20;
};

// A WebSocket client connection with its own I/O thread. Thread-safe: SendText from any thread;
// Receive from one thread at a time. A binary message from the server closes with 1003.
class WsClient {
 public:
  // Connects and upgrades, blocking up to connect_timeout. kInvalid: bad URL. kUnauthorized:
  // the server answered 401 or 403 (message = the "detail" of its JSON body when present, else
  // the status line). kUnavailable: anything else (refused, timeout, TLS failure, other status)
  // with a clear message. Never throws.
  static Result<std::unique_ptr<WsClient>> Connect(const WsClientOptions& options);
  // Closes (1000), waits a few seconds at most for the server to answer, and joins its thread.
  virtual ~WsClient() = default;
  // Queues a text frame; never blocks. False once the connection is closed (or closing) or
  // when the queue would go over max_queued_bytes (the connection stays open then).
  virtual bool SendText(std::string text) = 0;
  // Next received text message. kTimeout when none within `timeout`; kUnavailable once the
  // connection has ended (message says why, with the close code/reason when one was received)
  // and every message received before has been returned.
  virtual Result<std::string> Receive(std::chrono::milliseconds timeout) = 0;
  // Sends what is queued, then a close frame with `code` (1000 when a close frame may not
  // carry it) and `reason` (cut to 123 bytes); returns at once. Idempotent.
  virtual void Close(int code = 1000, std::string reason = "") = 0;
  // True from Connect until a close was requested or the connection ended.
  virtual bool open() const = 0;
};

}  // namespace slipway::net
