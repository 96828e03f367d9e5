#pragma once
#include <string>

namespace slipway {

// `slipway agent`: a node. Dials the control plane, runs the ops it is sent (git, builds,
// instances) on this machine, and streams their output back (docs/PROTOCOL.md).
struct AgentOptions {
  std::string server;  // ws://HOST:PORT/ws/agent or wss://…
  std::string token;   // enrollment token (or SLIPWAY_AGENT_TOKEN)
  std::string name;    // node name, 1..64 chars of [A-Za-z0-9._-]
  std::string labels;  // "alpha,region=eu"
  std::string data_dir;
  std::string advertise;  // address the gateway reaches instances at; "" = as seen
  std::string repos;      // repos.yaml: repositories this node offers by name ("" = none)
  std::string ca_file;    // wss: CA bundle
  std::string log_level = "info";
};

// Runs until SIGINT/SIGTERM (0). Returns 2 with one line on stderr for bad options, and when
// the control plane refuses the token (a wrong, expired or revoked token does not heal by
// retrying); any other failure to connect is retried with jittered exponential backoff.
int RunAgent(const AgentOptions& options);

}  // namespace slipway
