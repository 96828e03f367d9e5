// pause, resume and maintenance: the gateway's hold on an app's requests. One API call each.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

// 30000 → "30s", 90000 → "90s", 120000 → "2m", 1500 → "1500ms".
std::string HumanDuration(long long ms) {
  if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0 && ms >= 120'000) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

// One line: "hello: paused (requests held up to 30s)".
std::string Describe(const std::string& app, const json& gateway) {
  std::string mode = gateway.value("mode", "");
  if (mode == "paused") {
    return fmt::format("{}: paused (requests held up to {})", app,
                       HumanDuration(gateway.value("max_ms", 0LL)));
  }
  if (mode == "maintenance") return app + ": in maintenance (the gateway answers 503)";
  return app + ": open (requests flow again)";
}

// POSTs `body` to the app's `verb` route and prints the new mode; sets the exit code.
void Change(GlobalOptions& g, int* exit_code, const std::string& app, const std::string& verb,
            const json& body) {
  auto c = Client(g, *exit_code);
  if (!c) return;
  auto r = c->Call("POST", "/api/v1/apps/" + app + "/" + verb, body);
  if (!r.ok()) {
    *exit_code = Fail(r.status().message());
    return;
  }
  if (!r->contains("gateway") || !(*r)["gateway"].is_object()) {
    *exit_code = Fail("the server's answer has no gateway state");
    return;
  }
  std::cout << (g.json ? r->dump() : Describe(app, (*r)["gateway"])) << "\n";
  *exit_code = 0;
}

}  // namespace

void AddGatewayCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* pause = app.add_subcommand(
      "pause", "Hold new requests to an app at the gateway until `slipway resume`");
  auto pause_app = std::make_shared<std::string>();
  auto max = std::make_shared<std::string>();
  pause->add_option("app", *pause_app)->required();
  auto* max_opt = pause->add_option(
      "--max", *max, "How long each held request waits before a 503 (1s..1h; default 30s)");
  pause->callback([=, &g] {
    json body = json::object();
    if (max_opt->count() > 0) body["max"] = *max;
    Change(g, exit_code, *pause_app, "pause", body);
  });

  auto* maintenance = app.add_subcommand(
      "maintenance", "Answer every request to an app with 503 and a message, until resume");
  auto maint_app = std::make_shared<std::string>();
  auto message = std::make_shared<std::string>();
  maintenance->add_option("app", *maint_app)->required();
  maintenance->add_option("--message", *message, "Text of the 503 page (1..1024 bytes)")
      ->required();
  maintenance->callback([=, &g] {
    Change(g, exit_code, *maint_app, "maintenance", json{{"message", *message}});
  });

  auto* resume = app.add_subcommand("resume", "End pause or maintenance; held requests proceed");
  auto resume_app = std::make_shared<std::string>();
  resume->add_option("app", *resume_app)->required();
  resume->callback([=, &g] { Change(g, exit_code, *resume_app, "resume", json::object()); });
}

}  // namespace slipway::cli
