#pragma once
#include <string>

namespace slipway {

struct ServerOptions {
  std::string data_dir = "./var";
  std::string api_addr = "127.0.0.1:3452";
  std::string gateway_addr = "127.0.0.1:8080";
  std::string log_level = "info";
  bool log_json = false;
  int max_concurrent = 4;
  int gateway_threads = 2;
};

// Wires store, agent, gateway, controller and API, recovers from the previous run, and
// serves until SIGINT/SIGTERM. Returns the process exit code (2 on a start-up error, with
// one clear line on stderr).
int RunServer(const ServerOptions& options);

}  // namespace slipway
