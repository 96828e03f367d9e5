// slipway rollout status|promote|abort APP: a phased rollout's live status and a human's
// decision. One API call each; errors are one line on stderr with exit code 2.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

std::string SideLine(const json& s) {
  return fmt::format("{:.1f}% errors ({} of {}), p95 {:.1f} ms", s.value("error_rate", 0.0) * 100,
                     s.value("errors", 0), s.value("requests", 0), s.value("p95_ms", 0.0));
}

void PrintRollout(const json& r) {
  const json stages = r.value("stages", json::array());
  std::cout << fmt::format(
      "{}: rollout of release {} (deployment #{}): {}, stage {}/{}, canary "
      "weight {}%",
      r.value("app", "?"), r.value("release", 0), r.value("deployment_id", 0),
      r.value("state", "?"), r.value("stage", 0), stages.size(), r.value("weight", 0));
  if (r.value("bake_ms", 0) > 0)
    std::cout << fmt::format(", baked {:.1f}s of {:.1f}s", r.value("baked_ms", 0) / 1000.0,
                             r.value("bake_ms", 0) / 1000.0);
  std::cout << "\n";
  int i = 0;
  for (const auto& s : stages) {
    std::string labels;
    for (const auto& l : s.value("nodes", json::array()))
      labels += (labels.empty() ? "" : ",") + l.get<std::string>();
    std::cout << fmt::format("  stage {} [{}] {}%: {}\n", ++i, labels, s.value("weight", 0),
                             s.value("state", "?"));
  }
  std::cout << fmt::format("  canary:   {}  (last {}s)\n", SideLine(r.value("canary", json{})),
                           r.value("window_seconds", 0));
  std::cout << fmt::format("  baseline: {}\n", SideLine(r.value("baseline", json{})));
  if (r.value("interval", 0) > 0)
    std::cout << fmt::format(
        "  interval {}: {}{}\n", r.value("interval", 0), r.value("verdict", "?"),
        r.value("reason", "").empty() ? "" : " (" + r.value("reason", "") + ")");
  if (!r.value("note", "").empty()) std::cout << "  " << r.value("note", "") << "\n";
  if (!r.value("error", "").empty()) std::cout << "  " << r.value("error", "") << "\n";
}

// App names are URL-safe; anything else would change the path the call goes to.
bool SafeName(const std::string& name, int* exit_code) {
  bool ok =
      !name.empty() && name.size() <= 64 &&
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
          std::string::npos;
  if (!ok) *exit_code = Fail("no such app: app names are 1..64 of a-z 0-9 . _ -");
  return ok;
}

}  // namespace

void AddRolloutCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* rollout = app.add_subcommand("rollout", "A phased rollout: its status, promote or abort");
  rollout->require_subcommand(1);
  auto name = std::make_shared<std::string>();
  auto* status = rollout->add_subcommand("status", "Stage, weights, canary and baseline figures");
  status->add_option("app", *name, "App name")->required();
  status->callback([&g, exit_code, name] {
    if (!SafeName(*name, exit_code)) return;
    RunCall(g, exit_code, "GET", "/api/v1/apps/" + *name + "/rollout", nullptr, PrintRollout);
  });
  for (const char* verb : {"promote", "abort"}) {
    std::string v = verb;
    auto* cmd = rollout->add_subcommand(
        v, v == "promote" ? "End the current stage's bake (or pause) and go on to the next stage"
                          : "Stop the rollout: all traffic back to the previous release");
    cmd->add_option("app", *name, "App name")->required();
    cmd->callback([&g, exit_code, name, v] {
      if (!SafeName(*name, exit_code)) return;
      RunCall(g, exit_code, "POST", "/api/v1/apps/" + *name + "/rollout/" + v, json::object(),
              [v](const json& r) {
                std::cout << fmt::format("{}: {} asked (stage {}, {})\n", r.value("app", "?"), v,
                                         r.value("stage", 0), r.value("state", "?"));
              });
    });
  }
}

}  // namespace slipway::cli
