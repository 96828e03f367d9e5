#pragma once
// HTTP message types shared by the API server, the clients and the handlers. Beast stays
// inside net/*.cpp; everything above this layer sees only these plain structs.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string target;  // raw request target, "/api/v1/apps?x=1"
  std::string path;    // target without the query, percent-decoded
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
  std::string remote;  // peer address

  // Header value by case-insensitive name, or "" when absent.
  std::string Header(std::string_view name) const;
  std::string Query(const std::string& name, const std::string& fallback = "") const;
};

// Wakes connections that wait for something to happen (long polls, event streams) without
// holding a worker thread. Implementations must be thread-safe and outlive the server.
class Notifier {
 public:
  virtual ~Notifier() = default;
  // Calls `wake` (from any thread, possibly spuriously, possibly after Unsubscribe has
  // started but never after it returned) whenever something of `topic` may have changed.
  virtual std::uint64_t Subscribe(std::int64_t topic, std::function<void()> wake) = 0;
  virtual void Unsubscribe(std::uint64_t id) = 0;
};

struct HttpResponse;

// A response that is not ready yet (a long poll). The server parks the connection on its
// event loop, calls `poll(false)` on a worker after every wake of `topic`, and `poll(true)`
// once `wait` has passed; the first response returned is sent. `poll(true)` must return one.
struct DeferredResponse {
  Notifier* notifier = nullptr;
  std::int64_t topic = 0;
  std::chrono::milliseconds wait{0};
  std::function<std::optional<HttpResponse>(bool deadline)> poll;
};

// What a streamed response has to send now: `data` (may be empty) and whether it is done.
struct StreamChunk {
  std::string data;
  bool done = false;
};

// A response body produced over time (server-sent events). After the head, the server calls
// `next(false)` on a worker at once and after every wake of `topic`, and `next(true)` when
// `keepalive` passed without a wake; each chunk is written as it comes. The connection closes
// when a chunk says done or the peer goes away.
struct StreamedResponse {
  Notifier* notifier = nullptr;
  std::int64_t topic = 0;
  std::chrono::milliseconds keepalive{std::chrono::seconds(15)};
  std::function<StreamChunk(bool idle)> next;
};

// One accepted WebSocket connection, as the handler that accepted it sees it. Thread-safe.
// The object owns no I/O resource: it may be kept after the connection (or the server) is
// gone, and then SendText returns false and Close does nothing.
class WebSocketPeer {
 public:
  virtual ~WebSocketPeer() = default;
  // Queues one text frame; never blocks. False when the connection is closed, or when more than
  // max_queued_bytes are waiting (then the connection is closed with 1008: a peer that does not
  // read is dropped rather than buffered without bound).
  virtual bool SendText(std::string text) = 0;
  // Sends a close frame with code and reason (reason truncated to 123 bytes) and ends the
  // connection. Idempotent. Text queued before is sent first; a code that a close frame may not
  // carry (RFC 6455 7.4: 1005, 1006, 1015, < 1000, ...) is sent as 1000.
  virtual void Close(int code, std::string reason) = 0;
  virtual std::string remote_address() const = 0;
};

// What a handler returns (in HttpResponse::websocket) to accept a WebSocket upgrade. Empty
// callbacks are skipped. A callback that throws is logged and the connection is then closed
// with 1011. Callbacks are made only for a connection whose upgrade succeeded.
struct WebSocketHandler {
  // Called once, before any on_text, on a worker thread.
  std::function<void(std::shared_ptr<WebSocketPeer>)> on_open;
  // Each received text message, in order, one call at a time per connection, on a worker thread
  // (blocking allowed, bounded). Messages that arrive after a close was requested are dropped.
  std::function<void(std::string)> on_text;
  // Exactly once, after the last on_text, whatever ended the connection (peer close, error, idle
  // timeout, Close(), server Stop()). code = the close code received (1005 for a close frame
  // without one); when none was received, the code this server closed with (1001 Stop(),
  // 1003 binary frame, 1008 send queue full, 1009 message too big, 1011 callback threw, or the
  // one given to Close()); 1006 when neither.
  std::function<void(int code)> on_close;
  std::size_t max_message = 1 << 20;       // larger message: close 1009
  std::size_t max_queued_bytes = 8 << 20;  // see SendText
  // The server pings at half of it; no traffic/pong for idle_timeout closes. 0 = no limit.
  std::chrono::seconds idle_timeout{30};
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;
  // At most one of these is set; see above. Both count against the server's stream cap.
  std::shared_ptr<DeferredResponse> deferred;
  std::shared_ptr<StreamedResponse> streamed;
  // Set (alone): accept a WebSocket upgrade of this request (see HttpServer). `headers` then
  // go into the 101 response; status, content_type and body are not used.
  std::shared_ptr<WebSocketHandler> websocket;
};

using HttpHandler = std::function<HttpResponse(HttpRequest&)>;

// Splits "a=1&b=x%20y" into decoded pairs.
std::map<std::string, std::string> ParseQuery(std::string_view query);
std::string PercentDecode(std::string_view s);
std::string PercentEncode(std::string_view s);
// Encodes everything but RFC 3986 unreserved characters (for a URL's userinfo or a query).
std::string PercentEncodeComponent(std::string_view s);

// Where a client call goes: a TCP host:port or a unix socket path.
struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string unix_path;  // when set, host/port are ignored
  bool tls = false;       // https (not supported by the built-in client yet)
};

// Parses "http://host:port/base" → endpoint + base path ("" when none).
bool ParseUrl(const std::string& url, Endpoint& endpoint, std::string& base_path);

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
};

}  // namespace slipway::net
