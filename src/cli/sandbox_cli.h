#pragma once
// The sandbox and template verbs' shared parts: lenient readers of the server's answers and
// their human renderings (sandbox_cli.cpp), and the template verbs (template_commands.cpp).
// Not for use outside cli/.
#include <nlohmann/json.hpp>
#include <string>

namespace CLI {
class App;
}

namespace slipway::cli {

struct GlobalOptions;

// Fields read leniently: a missing field or one of another type reads as "" or 0.
std::string Field(const nlohmann::json& j, const char* key);
long long Number(const nlohmann::json& j, const char* key);

std::string SandboxName(const nlohmann::json& view);
std::string SandboxStatus(const nlohmann::json& view);
// Its own port's URL ("http://127.0.0.1:8081"), or ":PORT" when the answer has no URL.
std::string SandboxUrl(const nlohmann::json& view);

// GET /sandboxes/NAME: the sandbox's fields, then one row per service.
void PrintSandbox(const nlohmann::json& view);
// GET /sandboxes: one row per sandbox.
void PrintSandboxList(const nlohmann::json& answer);
// GET /sandboxes/NAME/snapshots: one row per snapshot.
void PrintSnapshots(const nlohmann::json& answer);
// GET /sandboxes/NAME/check: one line per hop, the first one without the sandbox header
// flagged, then the verdict.
void PrintCheck(const nlohmann::json& report);

// slipway template create|update|list|show|delete.
void AddTemplateCommands(CLI::App& app, GlobalOptions& g, int* exit_code);

}  // namespace slipway::cli
