#pragma once
#include <functional>
#include <nlohmann/json.hpp>
// CLI verbs. Each parses nothing itself (CLI11 did), makes its API call(s) and renders:
// human text by default, JSON with --json. Exit codes: 0 success, 1 a deployment failed,
// 2 bad usage or an error (one line on stderr).
#include <optional>

#include <string>
#include <vector>
#include "cli/client.h"

namespace CLI {
class App;
}

namespace slipway::cli {

struct GlobalOptions {
  std::string server;  // API base URL; "" = SLIPWAY_SERVER, the login config, or the default
  std::string token;   // API token; "" = SLIPWAY_TOKEN or the login config
  bool json = false;
};

// Registers every client verb on `app`; the chosen verb's exit code is written to `*exit_code`.
void RegisterCommands(CLI::App& app, GlobalOptions& global, int* exit_code);
// login, logout, whoami, token, users, audit (auth_commands.cpp).
void AddAuthCommands(CLI::App& app, GlobalOptions& global, int* exit_code);
// pause, resume, maintenance (gateway_commands.cpp).
void AddGatewayCommands(CLI::App& app, GlobalOptions& global, int* exit_code);
// nodes token create, list, show, drain, remove (nodes_commands.cpp).
void AddNodesCommands(CLI::App& app, GlobalOptions& global, int* exit_code);
// repos, branches (repos_commands.cpp).
void AddReposCommands(CLI::App& app, GlobalOptions& global, int* exit_code);
// slipway rollout status|promote|abort (rollout_commands.cpp).
void AddRolloutCommands(CLI::App& app, GlobalOptions& global, int* exit_code);
// slipway sandbox … and slipway template … (sandbox_commands.cpp, template_commands.cpp).
void AddSandboxCommands(CLI::App& app, GlobalOptions& global, int* exit_code);
// slipway env create|set|unset|show|list|delete (env_commands.cpp).
void AddEnvCommands(CLI::App& app, GlobalOptions& global, int* exit_code);

class ApiClient;
// The API client for the resolved server and token (see cli/config.h); on a bad URL sets
// `exit_code` to 2, prints one line and returns nothing.
std::optional<ApiClient> Client(GlobalOptions& g, int& exit_code);
int Fail(const std::string& message);
// Runs one API call and prints the answer (JSON with --json, else `human` of it); sets the
// exit code (2 and one line on failure).
void RunCall(GlobalOptions& g, int* exit_code, const std::string& method, const std::string& path,
             const nlohmann::json& body, const std::function<void(const nlohmann::json&)>& human,
             int timeout_ms = 30000);

}  // namespace slipway::cli
