#pragma once
#include <string>
#include <vector>

namespace slipway {

// `slipway gateway`: the gateway on its own, routing from a static route file.
struct GatewayOptions {
  std::string routes;               // route file (required)
  std::vector<std::string> listen;  // HOST:PORT[=SET]; default 127.0.0.1:8080
  int threads = 2;
  std::string access_log;
  long long max_connections = 16384;
  std::string header_timeout = "10s";
  std::string idle_timeout = "60s";
  std::string connect_timeout = "5s";
  std::string upstream_timeout = "60s";
  std::string log_level = "info";
};

// Serves until SIGINT/SIGTERM; SIGHUP reloads the route file (a bad file is refused and the
// routes in use stay). Returns 2 with one line on stderr when the options or the file are
// wrong at start.
int RunGateway(const GatewayOptions& options);

}  // namespace slipway
