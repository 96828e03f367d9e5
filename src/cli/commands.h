#pragma once
// CLI verbs. Each parses nothing itself (CLI11 did), makes its API call(s) and renders:
// human text by default, JSON with --json. Exit codes: 0 success, 1 a deployment failed,
// 2 bad usage or an error (one line on stderr).
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace slipway::cli {

struct GlobalOptions {
  std::string server;  // API base URL
  bool json = false;
};

// Registers every client verb on `app`; the chosen verb's exit code is written to `*exit_code`.
void RegisterCommands(CLI::App& app, GlobalOptions& global, int* exit_code);

}  // namespace slipway::cli
