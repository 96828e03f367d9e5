// slipway repos [--node N] and slipway branches REPO [--node N]: the repositories the nodes
// offer (each node's repos.yaml) and the branches of one, listed by the nodes themselves. One
// API call each; errors are one line on stderr with exit code 2.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "core/protocol.h"
#include "manifest/repos_file.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

// Listing branches waits on a git host through a node: longer than the usual 30 s.
constexpr int kBranchesTimeoutMs = 90'000;

std::string Text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() && !it->get<std::string>().empty()
             ? it->get<std::string>()
             : "-";
}

// The width of column `key` over `rows`: at least the header's, at most 48.
std::size_t Width(const json& rows, const char* key, const char* header) {
  std::size_t w = std::string(header).size();
  for (const auto& r : rows) w = std::max(w, Text(r, key).size());
  return std::min<std::size_t>(w, 48);
}

// "" or "?node=N" for a valid node name; false (exit 2, one line) for an invalid one. Valid
// names are URL-safe, so nothing needs escaping.
bool NodeQuery(const std::string& node, std::string& query, int* exit_code) {
  if (node.empty()) return true;
  if (!protocol::IsValidId(node)) {
    *exit_code = Fail("no such node: node names are 1..64 of A-Z a-z 0-9 . _ -");
    return false;
  }
  query = "?node=" + node;
  return true;
}

// Runs one GET and prints the answer (JSON, or `human` of it); sets the exit code.
void Get(GlobalOptions& g, int* exit_code, const std::string& path, int timeout_ms,
         const std::function<void(const json&)>& human) {
  RunCall(g, exit_code, "GET", path, nullptr, human, timeout_ms);
}

void PrintRepos(const json& r) {
  const json rows = r.value("repos", json::array());
  auto node = Width(rows, "node", "NODE"), name = Width(rows, "name", "NAME");
  std::cout << fmt::format("{:<{}} {:<{}} {:<4} {}\n", "NODE", node, "NAME", name, "KIND",
                           "LOCATION");
  for (const auto& repo : rows)
    std::cout << fmt::format("{:<{}} {:<{}} {:<4} {}\n", Text(repo, "node"), node,
                             Text(repo, "name"), name, Text(repo, "kind"), Text(repo, "location"));
  // Nodes that could not answer do not fail the listing, but they are not hidden either.
  for (const auto& e : r.value("errors", json::array()))
    std::cerr << fmt::format("warning: node {}: {}\n", Text(e, "node"), Text(e, "detail"));
}

void PrintBranches(const json& r) {
  const json rows = r.value("branches", json::array());
  auto name = Width(rows, "name", "NAME");
  std::cout << fmt::format("{:<{}} {}\n", "NAME", name, "COMMIT");
  for (const auto& b : rows)
    std::cout << fmt::format("{:<{}} {}\n", Text(b, "name"), name, Text(b, "commit"));
  if (r.value("truncated", false))
    std::cerr << fmt::format("note: only the first {} branches are listed\n", rows.size());
}

void AddRepos(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* repos = app.add_subcommand("repos", "Repositories the nodes offer (their repos.yaml)");
  auto node = std::make_shared<std::string>();
  repos->add_option("--node", *node, "Only this node's repositories");
  repos->callback([=, &g] {
    std::string query;
    if (!NodeQuery(*node, query, exit_code)) return;
    Get(g, exit_code, "/api/v1/repos" + query, 30'000, PrintRepos);
  });
}

void AddBranches(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* branches = app.add_subcommand("branches", "Branches of a repository a node offers");
  auto repo = std::make_shared<std::string>();
  auto node = std::make_shared<std::string>();
  branches->add_option("repo", *repo, "Repository name (see slipway repos)")->required();
  branches->add_option("--node", *node, "Ask this node (default: the first, by name, with it)");
  branches->callback([=, &g] {
    if (!IsRepoName(*repo)) {
      *exit_code = Fail(
          "no such repository: repository names are lower-case letters, digits "
          "and '-', starting with a letter (max 63)");
      return;
    }
    std::string query;
    if (!NodeQuery(*node, query, exit_code)) return;
    Get(g, exit_code, "/api/v1/repos/" + *repo + "/branches" + query, kBranchesTimeoutMs,
        PrintBranches);
  });
}

}  // namespace

void AddReposCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  AddRepos(app, g, exit_code);
  AddBranches(app, g, exit_code);
}

}  // namespace slipway::cli
