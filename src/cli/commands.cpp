#include "cli/commands.h"

#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <map>
#include <thread>

#include "cli/client.h"
#include "cli/config.h"
#include "manifest/manifest.h"

namespace slipway::cli {

using json = nlohmann::json;

int Fail(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return 2;
}

void RunCall(GlobalOptions& g, int* exit_code, const std::string& method, const std::string& path,
             const nlohmann::json& body, const std::function<void(const nlohmann::json&)>& human,
             int timeout_ms) {
  auto c = Client(g, *exit_code);
  if (!c) return;
  auto r = c->Call(method, path, body, timeout_ms);
  if (!r.ok()) {
    *exit_code = Fail(r.status().message());
    return;
  }
  if (g.json)
    std::cout << r->dump() << "\n";
  else
    human(*r);
  *exit_code = 0;
}

std::optional<ApiClient> Client(GlobalOptions& g, int& exit_code) {
  Credentials resolved = ResolveCredentials({g.server, g.token});
  g.server = resolved.server;
  auto c = ApiClient::Create(resolved.server, resolved.token);
  if (!c.ok()) {
    exit_code = Fail(c.status().message());
    return std::nullopt;
  }
  return *c;
}

namespace {

std::string Str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

std::string ShortSha(const json& d) {
  std::string c = Str(d, "commit");
  return c == "-" || c.empty() ? "-" : c.substr(0, 7);
}

bool Tty() {
  return isatty(STDOUT_FILENO);
}

// Renders one event for humans: stage ticks and indented log lines.
void PrintEvent(const json& e, std::map<std::string, long long>& stage_started) {
  std::string stage = e["stage"], state = e["state"], text = e["text"];
  long long ts = e["ts_ms"];
  bool color = Tty();
  auto paint = [&](const char* code, const std::string& s) {
    return color ? fmt::format("\033[{}m{}\033[0m", code, s) : s;
  };
  if (state == "started") {
    stage_started[stage] = ts;
    std::cout << paint("1", fmt::format("▸ {}", stage)) << "\n";
  } else if (state == "succeeded" && stage_started.count(stage)) {
    std::cout << paint("32", fmt::format("✓ {}", stage))
              << fmt::format(" ({:.2f}s)\n", (ts - stage_started[stage]) / 1000.0);
  } else if (state == "failed") {
    std::cout << paint("31", fmt::format("✗ {}: {}", stage, text)) << "\n";
  } else if (state == "log") {
    std::cout << "  │ " << text << "\n";
  } else if (state == "rolled_back" || state == "cancelled") {
    std::cout << paint("33", text) << "\n";
  } else if (state == "succeeded") {
    std::cout << paint("32", text) << "\n";
  } else {
    std::cout << "  " << text << "\n";
  }
  std::cout.flush();
}

// Follows a deployment's events until it ends. Returns the final status.
std::string Follow(const ApiClient& client, long long id, bool as_json, int& exit_code) {
  long long after = 0;
  std::map<std::string, long long> stage_started;
  for (int failures = 0;;) {
    auto page =
        client.Call("GET", fmt::format("/api/v1/deployments/{}/events?after={}&wait=10", id, after),
                    nullptr, 20000);
    if (!page.ok()) {
      // A restarting server is not the end of the deployment: retry for a while.
      if (page.status().code() == Code::kUnavailable && ++failures < 30) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      exit_code = Fail(page.status().message());
      return "";
    }
    failures = 0;
    for (const auto& e : (*page)["events"]) {
      if (as_json) {
        std::cout << e.dump() << "\n";
        std::cout.flush();
      } else {
        PrintEvent(e, stage_started);
      }
    }
    after = (*page)["next"];
    if ((*page)["done"].get<bool>()) return (*page)["status"];
  }
}

int ExitFor(const std::string& status) {
  return status == "succeeded" ? 0 : 1;
}

// apps set NAME [--upstream URL] [--env E | --no-env]: PATCH /api/v1/apps/{app}.
void AddAppsSet(CLI::App* apps, GlobalOptions& g, int* exit_code) {
  auto* set = apps->add_subcommand("set", "Change an app's upstream or environment");
  auto name = std::make_shared<std::string>();
  auto upstream = std::make_shared<std::optional<std::string>>();
  auto env = std::make_shared<std::optional<std::string>>();
  auto no_env = std::make_shared<bool>(false);
  set->add_option("name", *name, "App name")->required();
  set->add_option_function<std::string>(
      "--upstream", [upstream](const std::string& v) { *upstream = v; },
      "The app's address in the shared environment: http://HOST[:PORT] (\"\" = none)");
  auto* env_opt = set->add_option_function<std::string>(
      "--env", [env](const std::string& v) { *env = v; }, "Environment its next deployments get");
  set->add_flag("--no-env", *no_env, "No environment from the next deployment on")
      ->excludes(env_opt);
  set->callback([=, &g] {
    json body = json::object();
    if (*upstream) body["upstream"] = **upstream;
    if (*env) body["environment"] = **env;
    if (*no_env) body["environment"] = "";
    if (body.empty()) {
      *exit_code = Fail("nothing to change: give --upstream, --env or --no-env");
      return;
    }
    RunCall(g, exit_code, "PATCH", "/api/v1/apps/" + *name, body, [name](const json& a) {
      auto shown = [&a](const char* key) {
        std::string v = Str(a, key);
        return v.empty() || v == "-" ? std::string("none") : v;
      };
      std::cout << fmt::format("{}: upstream {}, environment {}\n", *name, shown("upstream"),
                               shown("environment"));
    });
  });
}

void AddApps(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* apps = app.add_subcommand("apps", "Create, list, show and delete apps");
  apps->require_subcommand(1);

  auto* create = apps->add_subcommand("create", "Register an app and its git repository");
  auto name = std::make_shared<std::string>();
  auto repo = std::make_shared<std::string>();
  auto branch = std::make_shared<std::string>("main");
  auto secret = std::make_shared<std::string>();
  auto hosts = std::make_shared<std::vector<std::string>>();
  auto prefix = std::make_shared<std::string>();
  create->add_option("name", *name, "App name (lower-case, digits, -)")->required();
  create->add_option("--repo", *repo, "Git URL or local path")->required();
  create->add_option("--branch", *branch, "Branch whose pushes deploy");
  create->add_option("--secret", *secret, "Webhook secret (or SLIPWAY_WEBHOOK_SECRET)")
      ->envname("SLIPWAY_WEBHOOK_SECRET");
  create->add_option("--host", *hosts, "Gateway host name (repeatable; default <name>.localhost)");
  create->add_option("--path-prefix", *prefix, "Gateway path prefix");
  auto upstream = std::make_shared<std::string>();
  auto env = std::make_shared<std::string>();
  create->add_option("--upstream", *upstream,
                     "The app's address in the shared environment: http://HOST[:PORT]");
  create->add_option("--env", *env, "Environment its instances get (slipway env)");
  create->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    if (secret->empty()) {
      *exit_code = Fail("--secret is required (it signs webhooks)");
      return;
    }
    json body = {{"name", *name},
                 {"repo", *repo},
                 {"branch", *branch},
                 {"secret", *secret},
                 {"path_prefix", *prefix}};
    if (!hosts->empty()) body["hosts"] = *hosts;
    if (!upstream->empty()) body["upstream"] = *upstream;
    if (!env->empty()) body["environment"] = *env;
    auto r = c->Call("POST", "/api/v1/apps", body);
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    if (g.json) {
      std::cout << r->dump() << "\n";
    } else {
      std::cout << fmt::format(
          "created app {} (tracking {} of {})\n  gateway host: {}\n  webhook:      "
          "{}/hooks/<gitea|forgejo|github|gitlab|bitbucket>/{}\n",
          *name, *branch, Str(*r, "repo"), (*r)["hosts"][0].get<std::string>(), g.server, *name);
    }
    *exit_code = 0;
  });

  AddAppsSet(apps, g, exit_code);

  auto* list = apps->add_subcommand("list", "List apps");
  list->callback([&g, exit_code] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    auto r = c->Call("GET", "/api/v1/apps");
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    if (g.json) {
      std::cout << r->dump() << "\n";
    } else {
      std::cout << fmt::format("{:<20} {:<10} {:<10} {}\n", "APP", "BRANCH", "RELEASE", "HOST");
      for (const auto& a : (*r)["apps"]) {
        std::string rel = a.contains("release")
                              ? fmt::format("{} {}", a["release"]["number"].get<long long>(),
                                            a["release"]["commit"].get<std::string>().substr(0, 7))
                              : "-";
        std::cout << fmt::format("{:<20} {:<10} {:<10} {}\n", Str(a, "name"), Str(a, "branch"), rel,
                                 a["hosts"][0].get<std::string>());
      }
    }
    *exit_code = 0;
  });

  auto* show = apps->add_subcommand("show", "Show one app");
  auto show_name = std::make_shared<std::string>();
  show->add_option("name", *show_name)->required();
  show->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    auto r = c->Call("GET", "/api/v1/apps/" + *show_name);
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    std::cout << (g.json ? r->dump() : r->dump(2)) << "\n";
    *exit_code = 0;
  });

  auto* del =
      apps->add_subcommand("delete", "Delete an app, stop its instance and remove its releases");
  auto del_name = std::make_shared<std::string>();
  del->add_option("name", *del_name)->required();
  del->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    auto r = c->Call("DELETE", "/api/v1/apps/" + *del_name);
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    std::cout << (g.json ? r->dump() : "deleted " + *del_name) << "\n";
    *exit_code = 0;
  });
}

void AddDeploy(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* deploy = app.add_subcommand("deploy", "Deploy an app at a ref and follow it live");
  auto name = std::make_shared<std::string>();
  auto ref = std::make_shared<std::string>();
  auto detach = std::make_shared<bool>(false);
  deploy->add_option("app", *name)->required();
  deploy->add_option("--ref", *ref, "Branch, tag or commit (default: the app's branch)");
  auto nodes = std::make_shared<std::string>();
  deploy->add_flag("--detach,-d", *detach, "Queue and return without following");
  deploy->add_option("--nodes", *nodes,
                     "Run on the nodes carrying these labels (comma-separated), whatever the "
                     "manifest's nodes: says");
  deploy->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    json body = {{"ref", *ref}};
    if (!nodes->empty()) {
      json labels = json::array();
      for (std::size_t start = 0; start <= nodes->size();) {
        auto comma = std::min(nodes->find(',', start), nodes->size());
        labels.push_back(nodes->substr(start, comma - start));
        start = comma + 1;
      }
      body["nodes"] = labels;
    }
    auto r = c->Call("POST", "/api/v1/apps/" + *name + "/deployments", body);
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    long long id = (*r)["id"];
    if (!g.json)
      std::cout << fmt::format("deployment #{} of {} ({}) queued\n", id, *name, Str(*r, "ref"));
    if (*detach) {
      if (g.json) std::cout << r->dump() << "\n";
      *exit_code = 0;
      return;
    }
    std::string status = Follow(*c, id, g.json, *exit_code);
    if (status.empty()) return;
    *exit_code = ExitFor(status);
  });
}

void AddStatus(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* status = app.add_subcommand("status", "Recent deployments (of one app or all)");
  auto name = std::make_shared<std::string>();
  auto limit = std::make_shared<int>(10);
  status->add_option("app", *name);
  status->add_option("--limit", *limit, "How many deployments")->check(CLI::Range(1, 1000));
  status->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    std::string path = name->empty()
                           ? fmt::format("/api/v1/deployments?limit={}", *limit)
                           : fmt::format("/api/v1/apps/{}/deployments?limit={}", *name, *limit);
    auto r = c->Call("GET", path);
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    if (g.json) {
      std::cout << r->dump() << "\n";
    } else {
      std::cout << fmt::format("{:<6} {:<16} {:<9} {:<12} {:<9} {:<8} {}\n", "ID", "APP", "TYPE",
                               "STATUS", "STAGE", "COMMIT", "ERROR");
      for (const auto& d : (*r)["deployments"]) {
        std::cout << fmt::format("{:<6} {:<16} {:<9} {:<12} {:<9} {:<8} {}\n",
                                 d["id"].get<long long>(), Str(d, "app"), Str(d, "type"),
                                 Str(d, "status"), Str(d, "stage"), ShortSha(d),
                                 Str(d, "error") == "-" ? "" : Str(d, "error"));
      }
    }
    *exit_code = 0;
  });
}

void AddLogs(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* logs = app.add_subcommand("logs", "Events and output of a deployment (APP = its latest)");
  auto which = std::make_shared<std::string>();
  auto follow = std::make_shared<bool>(false);
  logs->add_option("target", *which, "Deployment id, or app name for its latest deployment")
      ->required();
  logs->add_flag("--follow,-f", *follow, "Keep following until the deployment ends");
  logs->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    long long id = 0;
    if (!which->empty() && which->find_first_not_of("0123456789") == std::string::npos) {
      id = std::stoll(*which);
    } else {
      auto r = c->Call("GET", "/api/v1/apps/" + *which + "/deployments?limit=1");
      if (!r.ok()) {
        *exit_code = Fail(r.status().message());
        return;
      }
      if ((*r)["deployments"].empty()) {
        *exit_code = Fail("app '" + *which + "' has no deployments yet");
        return;
      }
      id = (*r)["deployments"][0]["id"];
    }
    if (*follow) {
      std::string status = Follow(*c, id, g.json, *exit_code);
      if (!status.empty()) *exit_code = ExitFor(status);
      return;
    }
    long long after = 0;
    std::map<std::string, long long> started;
    for (;;) {
      auto page = c->Call(
          "GET", fmt::format("/api/v1/deployments/{}/events?after={}&limit=5000", id, after));
      if (!page.ok()) {
        *exit_code = Fail(page.status().message());
        return;
      }
      for (const auto& e : (*page)["events"]) {
        if (g.json)
          std::cout << e.dump() << "\n";
        else
          PrintEvent(e, started);
      }
      if ((*page)["events"].size() < 5000) break;
      after = (*page)["next"];
    }
    *exit_code = 0;
  });
}

void AddReleases(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* releases = app.add_subcommand("releases", "Retained releases of an app");
  auto name = std::make_shared<std::string>();
  releases->add_option("app", *name)->required();
  releases->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    auto r = c->Call("GET", "/api/v1/apps/" + *name + "/releases");
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    if (g.json) {
      std::cout << r->dump() << "\n";
    } else {
      std::cout << fmt::format("{:<8} {:<9} {:<11} {}\n", "RELEASE", "COMMIT", "DEPLOYMENT", "");
      for (const auto& rel : (*r)["releases"]) {
        std::cout << fmt::format("{:<8} {:<9} #{:<10} {}\n", rel["number"].get<long long>(),
                                 ShortSha(rel), rel["deployment_id"].get<long long>(),
                                 rel["current"].get<bool>() ? "← serving" : "");
      }
    }
    *exit_code = 0;
  });
}

void AddRollback(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* rollback = app.add_subcommand("rollback", "Serve a retained release again (no rebuild)");
  auto name = std::make_shared<std::string>();
  auto to = std::make_shared<long long>(0);
  rollback->add_option("app", *name)->required();
  rollback->add_option("--to", *to, "Release number (default: the one before the current)")
      ->check(CLI::PositiveNumber);
  rollback->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    json body = json::object();
    if (*to > 0) body["release"] = *to;
    auto r = c->Call("POST", "/api/v1/apps/" + *name + "/rollback", body);
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    long long id = (*r)["id"];
    if (!g.json)
      std::cout << fmt::format("rollback #{} of {} to {} queued\n", id, *name, Str(*r, "ref"));
    std::string status = Follow(*c, id, g.json, *exit_code);
    if (!status.empty()) *exit_code = ExitFor(status);
  });
}

void AddLifecycle(CLI::App& app, GlobalOptions& g, int* exit_code) {
  for (const char* verb : {"start", "stop", "restart"}) {
    std::string v = verb;
    auto* cmd = app.add_subcommand(
        v, v == "stop"    ? "Stop an app's running instance (the gateway answers 503)"
           : v == "start" ? "Start a stopped app's current release"
                          : "Replace an app's instance with a fresh one, no downtime");
    auto name = std::make_shared<std::string>();
    cmd->add_option("app", *name)->required();
    cmd->callback([=, &g] {
      auto c = Client(g, *exit_code);
      if (!c) return;
      auto r = c->Call("POST", "/api/v1/apps/" + *name + "/" + v);
      if (!r.ok()) {
        *exit_code = Fail(r.status().message());
        return;
      }
      if (v == "stop") {
        std::cout << (g.json ? r->dump() : "stopped " + *name) << "\n";
        *exit_code = 0;
        return;
      }
      long long id = (*r)["id"];
      if (!g.json) std::cout << fmt::format("{} #{} of {} queued\n", v, id, *name);
      std::string status = Follow(*c, id, g.json, *exit_code);
      if (!status.empty()) *exit_code = ExitFor(status);
    });
  }
}

void AddManifest(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* manifest = app.add_subcommand("manifest", "Work with slipway.yaml");
  manifest->require_subcommand(1);
  auto* check = manifest->add_subcommand("check", "Validate a manifest without deploying");
  auto file = std::make_shared<std::string>();
  check->add_option("file", *file, "Path to slipway.yaml")->required();
  check->callback([=, &g] {
    auto m = LoadManifest(*file);
    if (!m.ok()) {
      if (g.json)
        std::cout << json{{"ok", false}, {"error", m.status().message()}}.dump() << "\n";
      else
        std::cerr << m.status().message() << "\n";
      *exit_code = 2;
      return;
    }
    if (g.json) {
      std::cout << json{{"ok", true}, {"manifest", json::parse(m->ToJson())}}.dump() << "\n";
    } else {
      std::cout << fmt::format("{}: ok ({} build, {} test steps; runtime {}; health {})\n", *file,
                               m->build.size(), m->test.size(), m->runtime, m->health_path);
    }
    *exit_code = 0;
  });
}

}  // namespace

void RegisterCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  AddApps(app, g, exit_code);
  AddDeploy(app, g, exit_code);
  AddStatus(app, g, exit_code);
  AddLogs(app, g, exit_code);
  AddReleases(app, g, exit_code);
  AddRollback(app, g, exit_code);
  AddLifecycle(app, g, exit_code);
  AddGatewayCommands(app, g, exit_code);
  AddManifest(app, g, exit_code);
  AddAuthCommands(app, g, exit_code);
  AddReposCommands(app, g, exit_code);
  AddRolloutCommands(app, g, exit_code);
  AddSandboxCommands(app, g, exit_code);
  AddEnvCommands(app, g, exit_code);
}

}  // namespace slipway::cli
