// slipway rollout status|promote|abort APP: a phased rollout's live status and a human's
// decision. One API call each; errors are one line on stderr with exit code 2.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

// Fields read leniently: a record from before a restart has no live figures (null stage,
// no weight), and a status must print whatever the server left out.
long long Int(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<long long>() : 0;
}
double Num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}
std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string SideLine(const json& s) {
  return fmt::format("{:.1f}% errors ({} of {}), p95 {:.1f} ms", Num(s, "error_rate") * 100,
                     Int(s, "errors"), Int(s, "requests"), Num(s, "p95_ms"));
}

void PrintStages(const json& stages) {
  int i = 0;
  for (const auto& s : stages) {
    if (!s.is_object()) continue;
    std::string labels;
    for (const auto& l : s.value("nodes", json::array()))
      if (l.is_string()) labels += (labels.empty() ? "" : ",") + l.get<std::string>();
    std::string state = Str(s, "state");
    std::cout << fmt::format("  stage {} [{}] {}%{}\n", ++i, labels, Int(s, "weight"),
                             state.empty() ? "" : ": " + state);
  }
}

void PrintRollout(const json& r) {
  const json stages = r.value("stages", json::array());
  std::cout << fmt::format("{}: rollout (deployment #{}): {}", Str(r, "app"),
                           Int(r, "deployment_id"), Str(r, "state"));
  if (Int(r, "stage") > 0)
    std::cout << fmt::format(", release {}, stage {}/{}, canary weight {}%", Int(r, "release"),
                             Int(r, "stage"), stages.size(), Int(r, "weight"));
  if (Int(r, "bake_ms") > 0)
    std::cout << fmt::format(", baked {:.1f}s of {:.1f}s", Int(r, "baked_ms") / 1000.0,
                             Int(r, "bake_ms") / 1000.0);
  std::cout << "\n";
  PrintStages(stages);
  if (r.contains("canary") && r["canary"].is_object()) {
    std::cout << fmt::format("  canary:   {}  (last {}s)\n", SideLine(r["canary"]),
                             Int(r, "window_seconds"));
    if (r.contains("baseline") && r["baseline"].is_object())
      std::cout << fmt::format("  baseline: {}\n", SideLine(r["baseline"]));
  }
  if (Int(r, "interval") > 0)
    std::cout << fmt::format("  interval {}: {}{}\n", Int(r, "interval"), Str(r, "verdict"),
                             Str(r, "reason").empty() ? "" : " (" + Str(r, "reason") + ")");
  for (const char* key : {"note", "error"})
    if (!Str(r, key).empty()) std::cout << "  " << Str(r, key) << "\n";
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
                std::cout << fmt::format("{}: {} accepted (stage {}, {} when asked)\n",
                                         Str(r, "app"), v, Int(r, "stage"), Str(r, "state"));
              });
    });
  }
}

}  // namespace slipway::cli
