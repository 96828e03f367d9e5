#pragma once
// HTTP message types shared by the API server, the clients and the handlers. Beast stays
// inside net/*.cpp; everything above this layer sees only these plain structs.
#include <chrono>
#include <functional>
#include <map>
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

// Writes one piece of a streamed response; returns false once the peer has gone.
using StreamWriter = std::function<bool(std::string_view)>;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;
  // When set, the server sends status and headers, then hands the connection to `stream`,
  // which writes the body as it is produced and returns when done (the connection closes).
  std::function<void(const StreamWriter&)> stream;
};

using HttpHandler = std::function<HttpResponse(HttpRequest&)>;

// Splits "a=1&b=x%20y" into decoded pairs.
std::map<std::string, std::string> ParseQuery(std::string_view query);
std::string PercentDecode(std::string_view s);
std::string PercentEncode(std::string_view s);

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
