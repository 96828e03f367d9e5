// slipway nodes: list, show, drain, remove, and enrollment tokens for agents. One API call
// each; errors are one line on stderr with exit code 2.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

// Node names are 1..64 of [A-Za-z0-9._-]; anything else would not stay one path segment.
bool NameOk(const std::string& name, int* exit_code) {
  bool ok = !name.empty() && name.size() <= 64 &&
            name.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789._-") == std::string::npos;
  if (!ok) *exit_code = Fail("no such node: node names are 1..64 of A-Z a-z 0-9 . _ -");
  return ok;
}

// Runs one API call and prints the answer (JSON, or `human` of it); sets the exit code.
void Run(GlobalOptions& g, int* exit_code, const std::string& method, const std::string& path,
         const json& body, const std::function<void(const json&)>& human) {
  RunCall(g, exit_code, method, path, body, human);
}

std::string Text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() && !it->get<std::string>().empty()
             ? it->get<std::string>()
             : "-";
}

long long Millis(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<long long>() : 0;
}

// "up", "down", "up,drained".
std::string State(const json& n) {
  std::string s = Text(n, "state");
  if (n.value("drained", false)) s += ",drained";
  return s;
}

std::string Labels(const json& n) {
  std::string out;
  for (const auto& l : n.value("labels", json::array()))
    if (l.is_string()) out += (out.empty() ? "" : ",") + l.get<std::string>();
  return out.empty() ? "-" : out;
}

// How long ago `ms` (wall clock) was: "now", "42s ago", "5m ago", "3h ago", "2d ago"; "-" for 0.
std::string Ago(long long ms) {
  if (ms == 0) return "-";
  long long now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  long long s = std::max(0LL, (now - ms) / 1000);
  if (s < 2) return "now";
  if (s < 120) return fmt::format("{}s ago", s);
  if (s < 7200) return fmt::format("{}m ago", s / 60);
  if (s < 172800) return fmt::format("{}h ago", s / 3600);
  return fmt::format("{}d ago", s / 86400);
}

// The agent's URL for an API URL: http://h:p/… → ws://h:p/ws/agent (https → wss).
std::string AgentUrl(const std::string& api_url) {
  auto scheme_end = api_url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "http" : api_url.substr(0, scheme_end);
  std::string rest = scheme_end == std::string::npos ? api_url : api_url.substr(scheme_end + 3);
  std::string host = rest.substr(0, rest.find('/'));
  return (scheme == "https" ? "wss://" : "ws://") + host + "/ws/agent";
}

void PrintTable(const json& r) {
  constexpr const char* kRow = "{:<20} {:<12} {:<24} {:<22} {:<10} {}\n";
  std::cout << fmt::format(kRow, "NAME", "STATE", "LABELS", "ADDRESS", "AGENT", "LAST-SEEN");
  for (const auto& n : r.value("nodes", json::array())) {
    std::cout << fmt::format(kRow, Text(n, "name"), State(n), Labels(n), Text(n, "address"),
                             Text(n, "agent_version"), Ago(Millis(n, "last_seen_ms")));
  }
}

void PrintNode(const json& n) {
  std::cout << fmt::format("name:          {}\n", Text(n, "name"))
            << fmt::format("state:         {}\n", State(n))
            << fmt::format("labels:        {}\n", Labels(n))
            << fmt::format("address:       {}\n", Text(n, "address"))
            << fmt::format("agent:         {}\n", Text(n, "agent_version"))
            << fmt::format("first seen:    {}\n", Ago(Millis(n, "first_seen_ms")))
            << fmt::format("last seen:     {}\n", Ago(Millis(n, "last_seen_ms")))
            << fmt::format("connected:     {}\n", Ago(Millis(n, "connected_ms")))
            << fmt::format("clock skew:    {} ms\n", Millis(n, "clock_skew_ms"))
            << fmt::format("ops in flight: {}\n", Millis(n, "ops_in_flight"))
            << fmt::format("capabilities:  {}\n", n.value("capabilities", json::object()).dump());
  for (const auto& op : n.value("ops", json::array())) {
    std::cout << fmt::format("  op {} {} {} ({} events)\n", Text(op, "op_id"), Text(op, "kind"),
                             Text(op, "state"), Millis(op, "events"));
  }
}

void AddToken(CLI::App& nodes, GlobalOptions& g, int* exit_code) {
  auto* token = nodes.add_subcommand("token", "Enrollment tokens agents connect with");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "Create an enrollment token (shown once)");
  auto expires = std::make_shared<std::string>();
  auto* expires_opt = create->add_option("--expires", *expires,
                                         "Lifetime like 90m, 24h, 7d (default 24h, max 30d)");
  create->callback([=, &g] {
    json body = json::object();
    if (expires_opt->count() > 0) body["expires"] = *expires;
    Run(g, exit_code, "POST", "/api/v1/nodes/tokens", body, [&g](const json& r) {
      std::string t = Text(r, "token");
      std::cout << t << "\n"
                << "shown only this once; start an agent with it:\n"
                << fmt::format(
                       "  slipway agent --server {} --token {} --name NAME "
                       "--labels LABEL,... --data DIR\n",
                       AgentUrl(g.server), t);
    });
  });
}

void AddListShow(CLI::App& nodes, GlobalOptions& g, int* exit_code) {
  auto* list = nodes.add_subcommand("list", "List nodes: state, labels, address, last seen");
  list->callback([=, &g] { Run(g, exit_code, "GET", "/api/v1/nodes", nullptr, PrintTable); });

  auto* show = nodes.add_subcommand("show", "Show one node");
  auto show_name = std::make_shared<std::string>();
  show->add_option("name", *show_name)->required();
  show->callback([=, &g] {
    if (!NameOk(*show_name, exit_code)) return;
    Run(g, exit_code, "GET", "/api/v1/nodes/" + *show_name, nullptr, PrintNode);
  });
}

void AddDrainRemove(CLI::App& nodes, GlobalOptions& g, int* exit_code) {
  auto* drain = nodes.add_subcommand("drain", "Place nothing new on a node (--undo to undrain)");
  auto drain_name = std::make_shared<std::string>();
  auto undo = std::make_shared<bool>(false);
  drain->add_option("name", *drain_name)->required();
  drain->add_flag("--undo", *undo, "Undrain: the node takes new placements again");
  drain->callback([=, &g] {
    if (!NameOk(*drain_name, exit_code)) return;
    Run(g, exit_code, "POST", "/api/v1/nodes/" + *drain_name + "/drain", json{{"drained", !*undo}},
        [](const json& n) {
          std::cout << fmt::format("node {}: {}\n", Text(n, "name"),
                                   n.value("drained", false) ? "drained (no new placements)"
                                                             : "undrained (takes placements)");
        });
  });

  auto* remove = nodes.add_subcommand("remove", "Disconnect a node and forget it");
  auto remove_name = std::make_shared<std::string>();
  remove->add_option("name", *remove_name)->required();
  remove->callback([=, &g] {
    if (!NameOk(*remove_name, exit_code)) return;
    Run(g, exit_code, "DELETE", "/api/v1/nodes/" + *remove_name, nullptr,
        [remove_name](const json&) { std::cout << "removed node " << *remove_name << "\n"; });
  });
}

}  // namespace

void AddNodesCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* nodes = app.add_subcommand("nodes", "Agent nodes: enrollment tokens, list, drain, remove");
  nodes->require_subcommand(1);
  AddToken(*nodes, g, exit_code);
  AddListShow(*nodes, g, exit_code);
  AddDrainRemove(*nodes, g, exit_code);
}

}  // namespace slipway::cli
