// slipway template create|update|list|show|delete: reusable sandbox definitions
// (docs/SANDBOXES.md). One API call each; errors are one line on stderr with exit code 2.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "cli/sandbox_args.h"
#include "cli/sandbox_cli.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

struct TemplateOptions {
  std::string name, env, entry, memory;
  std::vector<std::string> services;
  double cpus = 0;
};

// The template body; with `with_name` (create) it carries the name too.
Result<json> TemplateBody(const TemplateOptions& o, bool with_name) {
  auto services = ParseServiceArgs(o.services);
  if (!services.ok()) return services.status();
  json body = {{"services", *services}};
  if (with_name) body["name"] = o.name;
  if (!o.env.empty()) body["environment"] = o.env;
  if (!o.entry.empty()) body["entry"] = o.entry;
  if (!o.memory.empty()) body["memory"] = o.memory;
  if (o.cpus > 0) body["cpus"] = o.cpus;
  return body;
}

std::string ServicesText(const json& t) {
  std::string out;
  auto it = t.find("services");
  if (it == t.end() || !it->is_array()) return "-";
  for (const auto& s : *it) {
    std::string branch = Field(s, "branch");
    out += (out.empty() ? "" : " ") + Field(s, "name") + "=" +
           (branch.empty() ? "upstream" : "branch:" + branch);
  }
  return out.empty() ? "-" : out;
}

void PrintTemplate(const json& t) {
  std::cout << fmt::format("template {}\n  services:     {}\n", Field(t, "name"), ServicesText(t));
  std::string env = Field(t, "environment"), entry = Field(t, "entry");
  std::cout << fmt::format("  environment:  {}\n  entry:        {}\n", env.empty() ? "-" : env,
                           entry.empty() ? "(the first service)" : entry);
  std::cout << fmt::format("  memory:       {}\n", FormatBytes(Number(t, "memory_bytes")));
  auto cpus = t.find("cpus");
  bool has_cpus = cpus != t.end() && cpus->is_number() && cpus->get<double>() > 0;
  std::cout << fmt::format("  cpus:         {}\n",
                           has_cpus ? fmt::format("{:g}", cpus->get<double>()) : "-");
}

void PrintTemplates(const json& answer) {
  std::cout << fmt::format("{:<20} {:<14} {}\n", "TEMPLATE", "ENVIRONMENT", "SERVICES");
  auto it = answer.find("templates");
  if (it == answer.end() || !it->is_array()) return;
  for (const auto& t : *it) {
    std::string env = Field(t, "environment");
    std::cout << fmt::format("{:<20} {:<14} {}\n", Field(t, "name"), env.empty() ? "-" : env,
                             ServicesText(t));
  }
}

// create (POST) and update (PUT): the same options.
void AddSave(CLI::App* tmpl, GlobalOptions& g, int* exit_code, bool create) {
  auto o = std::make_shared<TemplateOptions>();
  auto* cmd = tmpl->add_subcommand(create ? "create" : "update",
                                   create ? "Save a new template" : "Replace a template's body");
  cmd->add_option("name", o->name, "Template name (1..32 of a-z 0-9 -)")->required();
  cmd->add_option("--service", o->services, "SVC=branch:BRANCH or SVC=upstream (repeatable)")
      ->required();
  cmd->add_option("--env", o->env, "Environment its sandboxes get");
  cmd->add_option("--entry", o->entry, "Service a sandbox's own port serves");
  cmd->add_option("--memory", o->memory, "Memory limit: 512MiB, 2GiB");
  cmd->add_option("--cpus", o->cpus, "CPU limit: 0.01..64")->check(CLI::Range(0.01, 64.0));
  cmd->callback([o, &g, exit_code, create] {
    if (!PathSafe(o->name)) {
      *exit_code = Fail("template names are 1..32 of a-z 0-9 -");
      return;
    }
    auto body = TemplateBody(*o, create);
    if (!body.ok()) {
      *exit_code = Fail(body.status().message());
      return;
    }
    std::string path = create ? "/api/v1/templates" : "/api/v1/templates/" + o->name;
    RunCall(g, exit_code, create ? "POST" : "PUT", path, *body, [create](const json& t) {
      std::cout << fmt::format("{} template {}\n", create ? "created" : "updated",
                               Field(t, "name"));
    });
  });
}

void AddNamed(CLI::App* tmpl, GlobalOptions& g, int* exit_code, const std::string& verb,
              const std::string& help, const std::string& method,
              std::function<void(const json&)> human) {
  auto name = std::make_shared<std::string>();
  auto* cmd = tmpl->add_subcommand(verb, help);
  cmd->add_option("name", *name, "Template name")->required();
  cmd->callback([=, &g] {
    if (!PathSafe(*name)) {
      *exit_code = Fail("no such template: template names are 1..32 of a-z 0-9 -");
      return;
    }
    RunCall(g, exit_code, method, "/api/v1/templates/" + *name, nullptr, human);
  });
}

}  // namespace

void AddTemplateCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* tmpl = app.add_subcommand("template", "Reusable sandbox definitions");
  tmpl->require_subcommand(1);
  AddSave(tmpl, g, exit_code, true);
  AddSave(tmpl, g, exit_code, false);
  auto* list = tmpl->add_subcommand("list", "List templates");
  list->callback([&g, exit_code] {
    RunCall(g, exit_code, "GET", "/api/v1/templates", nullptr, PrintTemplates);
  });
  AddNamed(tmpl, g, exit_code, "show", "One template", "GET", PrintTemplate);
  AddNamed(tmpl, g, exit_code, "delete", "Delete a template (its sandboxes stay)", "DELETE",
           [](const json& r) { std::cout << "deleted template " << Field(r, "deleted") << "\n"; });
}

}  // namespace slipway::cli
