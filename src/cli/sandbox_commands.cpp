// slipway sandbox create|list|show|deploy|route|clone|snapshot|snapshots|restore|suspend|
// resume|delete|check (docs/SANDBOXES.md). One API call each, and with --wait a poll of the
// sandbox until it runs (exit 0) or fails (exit 1). Usage errors and API errors are one
// line on stderr with exit code 2.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/sandbox_args.h"
#include "cli/sandbox_cli.h"
#include "net/http.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

struct WaitOptions {
  bool wait = false;
  int timeout_s = 600;
};

void AddWait(CLI::App* cmd, WaitOptions& w) {
  cmd->add_flag("--wait", w.wait, "Wait until the sandbox runs (exit 0) or fails (exit 1)");
  cmd->add_option("--timeout", w.timeout_s, "Seconds --wait waits at most (default 600)")
      ->check(CLI::Range(1, 86400));
}

bool NameOk(const std::string& name, int* exit_code) {
  if (PathSafe(name)) return true;
  *exit_code = Fail("no such sandbox: sandbox names are 1..32 of a-z 0-9 -");
  return false;
}

// Polls GET /sandboxes/NAME every second until its status is running or failed, or the
// timeout passes. Prints the last view (JSON with --json, else the table). Sets 0 for
// running, 1 for failed or a timeout, 2 when the server stays unreachable or refuses.
void Wait(GlobalOptions& g, const ApiClient& c, const std::string& name, int timeout_s,
          int* exit_code) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  if (!g.json) std::cout << fmt::format("waiting for sandbox {} …\n", name) << std::flush;
  for (int failures = 0;;) {
    auto r = c.Call("GET", "/api/v1/sandboxes/" + name);
    bool transient = !r.ok() && r.status().code() == Code::kUnavailable && ++failures < 30;
    if (!r.ok() && !transient) {
      *exit_code = Fail(r.status().message());
      return;
    }
    std::string status = r.ok() ? SandboxStatus(*r) : "";
    if (status == "running" || status == "failed") {
      if (g.json) std::cout << r->dump() << "\n";
      if (!g.json) PrintSandbox(*r);
      *exit_code = status == "running" ? 0 : 1;
      return;
    }
    if (r.ok()) failures = 0;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << fmt::format("error: sandbox {} is still {} after {}s\n", name,
                               status.empty() ? "unreachable" : status, timeout_s);
      *exit_code = 1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// One call that makes or changes a sandbox; with --wait, then a Wait on the sandbox its
// answer names.
void CallThenWait(GlobalOptions& g, int* exit_code, const std::string& method,
                  const std::string& path, const json& body, const WaitOptions& w,
                  const std::function<void(const json&)>& human) {
  auto c = Client(g, *exit_code);
  if (!c) return;
  auto r = c->Call(method, path, body, 60000);
  if (!r.ok()) {
    *exit_code = Fail(r.status().message());
    return;
  }
  *exit_code = 0;
  if (!w.wait) {
    if (g.json) std::cout << r->dump() << "\n";
    if (!g.json) human(*r);
    return;
  }
  if (!g.json) human(*r);
  std::string name = Field(*r, "name");
  if (!PathSafe(name)) {
    *exit_code = Fail("the server's answer names no sandbox to wait for");
    return;
  }
  Wait(g, *c, name, w.timeout_s, exit_code);
}

struct CreateOptions {
  std::string name, template_name, env, entry, memory, expire_after;
  std::vector<std::string> services;
  double cpus = 0;
  WaitOptions wait;
};

// The POST /api/v1/sandboxes body; kInvalid naming a bad --service value.
Result<json> CreateBody(const CreateOptions& o) {
  auto services = ParseServiceArgs(o.services);
  if (!services.ok()) return services.status();
  json body = {{"name", o.name}};
  if (!services->empty()) body["services"] = *services;
  if (!o.template_name.empty()) body["template"] = o.template_name;
  if (!o.env.empty()) body["environment"] = o.env;
  if (!o.entry.empty()) body["entry"] = o.entry;
  if (!o.memory.empty()) body["memory"] = o.memory;
  if (o.cpus > 0) body["cpus"] = o.cpus;
  if (!o.expire_after.empty()) body["expire_after"] = o.expire_after;
  return body;
}

void AddCreate(CLI::App* sandbox, GlobalOptions& g, int* exit_code) {
  auto o = std::make_shared<CreateOptions>();
  auto* cmd = sandbox->add_subcommand("create", "Create a sandbox and deploy its branches");
  cmd->add_option("name", o->name, "Sandbox name (1..32 of a-z 0-9 -)")->required();
  cmd->add_option("--template", o->template_name, "Start from a template");
  cmd->add_option("--env", o->env, "Environment its instances get");
  cmd->add_option("--entry", o->entry, "Service its own port serves (default: the first)");
  cmd->add_option("--service", o->services, "SVC=branch:BRANCH or SVC=upstream (repeatable)");
  cmd->add_option("--memory", o->memory, "Memory limit of the sandbox: 512MiB, 2GiB");
  cmd->add_option("--cpus", o->cpus, "CPU limit of the sandbox: 0.01..64")
      ->check(CLI::Range(0.01, 64.0));
  cmd->add_option("--expire-after", o->expire_after, "Expire after this much inactivity: 14d");
  AddWait(cmd, o->wait);
  cmd->callback([o, &g, exit_code] {
    auto body = CreateBody(*o);
    if (!body.ok()) {
      *exit_code = Fail(body.status().message());
      return;
    }
    CallThenWait(g, exit_code, "POST", "/api/v1/sandboxes", *body, o->wait, [](const json& s) {
      std::cout << fmt::format("created sandbox {}: {} ({})\n", SandboxName(s), SandboxUrl(s),
                               SandboxStatus(s));
    });
  });
}

void AddList(CLI::App* sandbox, GlobalOptions& g, int* exit_code) {
  struct Filter {
    std::string status, template_name, service;
  };
  auto f = std::make_shared<Filter>();
  auto* cmd = sandbox->add_subcommand("list", "List sandboxes");
  cmd->add_option("--status", f->status, "creating|deploying|running|failed|suspended|expired");
  cmd->add_option("--template", f->template_name, "Made from this template");
  cmd->add_option("--service", f->service, "With this service");
  cmd->callback([f, &g, exit_code] {
    std::string query;
    for (const auto& [key, value] : {std::pair<std::string, std::string>{"status", f->status},
                                     {"template", f->template_name},
                                     {"service", f->service}})
      if (!value.empty())
        query += (query.empty() ? "?" : "&") + key + "=" + net::PercentEncodeComponent(value);
    RunCall(g, exit_code, "GET", "/api/v1/sandboxes" + query, nullptr, PrintSandboxList);
  });
}

// Verbs of the form `sandbox VERB NAME` with one GET or POST and a printer.
void AddSimple(CLI::App* sandbox, GlobalOptions& g, int* exit_code, const std::string& verb,
               const std::string& help, const std::string& method, const std::string& suffix,
               std::function<void(const json&)> human) {
  auto name = std::make_shared<std::string>();
  auto* cmd = sandbox->add_subcommand(verb, help);
  cmd->add_option("name", *name, "Sandbox name")->required();
  cmd->callback([=, &g] {
    if (!NameOk(*name, exit_code)) return;
    json body = method == "POST" ? json::object() : json(nullptr);
    RunCall(g, exit_code, method, "/api/v1/sandboxes/" + *name + suffix, body, human, 60000);
  });
}

void AddDeploy(CLI::App* sandbox, GlobalOptions& g, int* exit_code) {
  struct Args {
    std::string name, service;
    WaitOptions wait;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = sandbox->add_subcommand("deploy", "Redeploy a sandbox's branches (or one)");
  cmd->add_option("name", a->name, "Sandbox name")->required();
  cmd->add_option("service", a->service, "Only this service");
  AddWait(cmd, a->wait);
  cmd->callback([a, &g, exit_code] {
    if (!NameOk(a->name, exit_code)) return;
    json body = json::object();
    if (!a->service.empty()) body["service"] = a->service;
    CallThenWait(g, exit_code, "POST", "/api/v1/sandboxes/" + a->name + "/deploy", body, a->wait,
                 [a](const json&) {
                   std::cout << fmt::format("deploying {} of sandbox {}\n",
                                            a->service.empty() ? "every branch" : a->service,
                                            a->name);
                 });
  });
}

void AddRoute(CLI::App* sandbox, GlobalOptions& g, int* exit_code) {
  struct Args {
    std::string name, service, to;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = sandbox->add_subcommand("route", "Send a service's sandbox traffic elsewhere");
  cmd->add_option("name", a->name, "Sandbox name")->required();
  cmd->add_option("service", a->service, "Service")->required();
  cmd->add_option("--to", a->to, "sandbox | upstream")->required();
  cmd->callback([a, &g, exit_code] {
    if (a->to != "sandbox" && a->to != "upstream") {
      *exit_code = Fail("--to '" + a->to.substr(0, 80) + "': expected sandbox or upstream");
      return;
    }
    if (!NameOk(a->name, exit_code)) return;
    if (!PathSafe(a->service)) {
      *exit_code = Fail("no such service: service names are 1..63 of a-z 0-9 -");
      return;
    }
    RunCall(g, exit_code, "POST", "/api/v1/sandboxes/" + a->name + "/routes/" + a->service,
            json{{"to", a->to}}, [a](const json&) {
              std::cout << fmt::format("sandbox {}: {} → {}\n", a->name, a->service, a->to);
            });
  });
}

void AddClone(CLI::App* sandbox, GlobalOptions& g, int* exit_code) {
  struct Args {
    std::string name, new_name;
    WaitOptions wait;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = sandbox->add_subcommand("clone", "A new sandbox with the same services");
  cmd->add_option("name", a->name, "Sandbox to clone")->required();
  cmd->add_option("new", a->new_name, "Name of the new sandbox")->required();
  AddWait(cmd, a->wait);
  cmd->callback([a, &g, exit_code] {
    if (!NameOk(a->name, exit_code)) return;
    CallThenWait(g, exit_code, "POST", "/api/v1/sandboxes/" + a->name + "/clone",
                 json{{"name", a->new_name}}, a->wait, [a](const json& s) {
                   std::cout << fmt::format("cloned {} as {}: {} ({})\n", a->name, SandboxName(s),
                                            SandboxUrl(s), SandboxStatus(s));
                 });
  });
}

void AddRestore(CLI::App* sandbox, GlobalOptions& g, int* exit_code) {
  struct Args {
    std::int64_t id = 0;
    std::string as;
    WaitOptions wait;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = sandbox->add_subcommand("restore", "Recreate a snapshot's sandbox");
  cmd->add_option("id", a->id, "Snapshot id")->required()->check(CLI::PositiveNumber);
  cmd->add_option("--as", a->as, "Name of the new sandbox (default: the snapshot's)");
  AddWait(cmd, a->wait);
  cmd->callback([a, &g, exit_code] {
    json body = json::object();
    if (!a->as.empty()) body["name"] = a->as;
    CallThenWait(g, exit_code, "POST", fmt::format("/api/v1/snapshots/{}/restore", a->id), body,
                 a->wait, [a](const json& s) {
                   std::cout << fmt::format("restored snapshot {} as {}: {} ({})\n", a->id,
                                            SandboxName(s), SandboxUrl(s), SandboxStatus(s));
                 });
  });
}

void AddResume(CLI::App* sandbox, GlobalOptions& g, int* exit_code) {
  struct Args {
    std::string name;
    WaitOptions wait;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = sandbox->add_subcommand("resume", "Start a suspended or expired sandbox again");
  cmd->add_option("name", a->name, "Sandbox name")->required();
  AddWait(cmd, a->wait);
  cmd->callback([a, &g, exit_code] {
    if (!NameOk(a->name, exit_code)) return;
    CallThenWait(g, exit_code, "POST", "/api/v1/sandboxes/" + a->name + "/resume", json::object(),
                 a->wait, [a](const json& s) {
                   std::cout << fmt::format("resumed sandbox {} ({})\n", a->name, SandboxStatus(s));
                 });
  });
}

// check: exit 0 when the traced request went through with the header on every hop, else 1.
void AddCheck(CLI::App* sandbox, GlobalOptions& g, int* exit_code) {
  auto name = std::make_shared<std::string>();
  auto* cmd = sandbox->add_subcommand("check", "Trace a request through the sandbox's hops");
  cmd->add_option("name", *name, "Sandbox name")->required();
  cmd->callback([name, &g, exit_code] {
    if (!NameOk(*name, exit_code)) return;
    auto c = Client(g, *exit_code);
    if (!c) return;
    auto r = c->Call("GET", "/api/v1/sandboxes/" + *name + "/check", nullptr, 30000);
    if (!r.ok()) {
      *exit_code = Fail(r.status().message());
      return;
    }
    if (g.json) std::cout << r->dump() << "\n";
    if (!g.json) PrintCheck(*r);
    auto ok = r->find("ok");
    *exit_code = ok != r->end() && ok->is_boolean() && ok->get<bool>() ? 0 : 1;
  });
}

}  // namespace

void AddSandboxCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* sandbox = app.add_subcommand("sandbox",
                                     "Feature branches deployed next to the shared "
                                     "environment");
  sandbox->require_subcommand(1);
  AddCreate(sandbox, g, exit_code);
  AddList(sandbox, g, exit_code);
  AddSimple(sandbox, g, exit_code, "show", "A sandbox: port, status, health, services", "GET", "",
            PrintSandbox);
  AddDeploy(sandbox, g, exit_code);
  AddRoute(sandbox, g, exit_code);
  AddClone(sandbox, g, exit_code);
  AddSimple(sandbox, g, exit_code, "snapshot", "Record a sandbox's commits, routes, environment",
            "POST", "/snapshots", [](const json& s) { std::cout << Number(s, "id") << "\n"; });
  AddSimple(sandbox, g, exit_code, "snapshots", "A sandbox's snapshots", "GET", "/snapshots",
            PrintSnapshots);
  AddRestore(sandbox, g, exit_code);
  AddSimple(sandbox, g, exit_code, "suspend", "Stop a sandbox's instances, keep its records",
            "POST", "/suspend", [](const json& s) {
              std::cout << fmt::format("suspended sandbox {}\n", SandboxName(s));
            });
  AddResume(sandbox, g, exit_code);
  AddSimple(sandbox, g, exit_code, "delete", "Remove a sandbox: instances, apps, ports, routes",
            "DELETE", "", [](const json& r) {
              std::cout << fmt::format("deleted sandbox {}\n", Field(r, "deleted"));
            });
  AddCheck(sandbox, g, exit_code);
  AddTemplateCommands(app, g, exit_code);
}

}  // namespace slipway::cli
