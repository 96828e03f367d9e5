#pragma once
// HTTP message types shared by the API server, the clients and the handlers. Beast stays
// inside net/*.cpp; everything above this layer sees only these plain structs.
#include <chrono>
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

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;
  // At most one of these is set; see above. Both count against the server's stream cap.
  std::shared_ptr<DeferredResponse> deferred;
  std::shared_ptr<StreamedResponse> streamed;
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
