#pragma once
// A blocking HTTP/1.1 client for short calls: health probes, the CLI, the Docker socket.
// Each call opens its own connection and is bounded by `timeout` end to end.
#include <chrono>
#include <string>

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

}  // namespace slipway::net
