#pragma once
// A blocking HTTP/1.1 client for short calls: health probes, the CLI, the Docker socket.
// Each call opens its own connection and is bounded by `timeout` end to end.
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "net/http.h"

namespace slipway::net {

struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  Headers headers;
  std::string host_header;  // Host header; defaults to host:port
  std::chrono::milliseconds timeout{10000};
  std::size_t max_body = 64 << 20;
};

// Returns the response whatever its status; an error only when no complete response came
// back (kUnavailable: connect failed; kTimeout: deadline passed; kInternal: bad response).
Result<ClientResponse> HttpCall(const Endpoint& endpoint, const ClientRequest& request);

// Like HttpCall, but hands the body to `on_data` piece by piece as it arrives (streamed
// build output, log follows). The returned response has status and headers; its body is
// empty. `on_data` returning false stops reading (the result is then ok).
using BodySink = std::function<bool(std::string_view)>;
Result<ClientResponse> HttpStream(const Endpoint& endpoint, const ClientRequest& request,
                                  const BodySink& on_data);

}  // namespace slipway::net
