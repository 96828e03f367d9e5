#pragma once
#include <string>
#include <vector>

namespace slipway {

struct ServerOptions {
  std::string data_dir = "./var";
  std::string api_addr = "127.0.0.1:3452";
  std::string gateway_addr = "127.0.0.1:8080";
  std::string log_level = "info";
  bool log_json = false;
  int max_concurrent = 4;
  int gateway_threads = 2;
  std::string hooks_addr;    // extra listener serving only /hooks/… and /health ("" = none)
  std::string metrics_addr;  // extra listener serving /metrics without a credential
  std::string login_repo;    // git-credential login against this repository ("" = off)
  std::string login_role = "viewer";        // role of git users without a user record
  std::string secret_key_file;              // "" = <data>/secret.key (SLIPWAY_SECRET_KEY wins)
  int max_streams = 256;                    // open event streams and long polls
  std::vector<std::string> gateway_listen;  // extra gateway ports: HOST:PORT=SET
  std::string gateway_access_log;           // JSON-lines access log ("" = none)
  // How long an op on a silent node lives before it fails "node <name> lost" (heartbeats
  // every lease/8, at most 5 s; a link silent for 3 heartbeats is closed).
  std::string node_lease = "60s";
  std::string repos;   // repos.yaml of the server's own node ("" = none)
  std::string notify;  // notification targets for every app (notify/notify_file.h; "" = none)
  // Sandboxes: port ranges "LO-HI" on the gateway's address, idle expiry and retention.
  std::string sandbox_gateway_ports = "8081-8999";
  std::string sandbox_service_ports = "9001-9999";
  std::string sandbox_expire_after = "14d";
  std::string sandbox_retention = "7d";
};

// Wires store, agent, gateway, controller and API, recovers from the previous run, and
// serves until SIGINT/SIGTERM. Reads SLIPWAY_BOOTSTRAP_TOKEN (an admin token to accept) and
// SLIPWAY_SECRET_KEY (base64 key sealing secrets at rest) from the environment. Returns the process
// exit code (2 on a start-up error, with one clear line on stderr).
int RunServer(const ServerOptions& options);

}  // namespace slipway
