// slipway env create|set|unset|show|list|delete: environments (docs/ENVIRONMENTS.md).
// Values come from flags (--var K=V, --secret K=V), from stdin (--secret K=-, so a secret
// never sits in argv) or from files (--secret-file K=PATH, --file REL=LOCALPATH). One API
// call per verb; errors are one line on stderr with exit code 2, and never quote a value.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "cli/commands.h"
#include "core/utf8.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxFileBytes = 1024 * 1024;
// The API server's request cap (net::HttpServerOptions::max_body).
constexpr std::size_t kMaxRequestBytes = 1024 * 1024;

struct ChangeFlags {
  std::vector<std::string> vars, secrets, secret_files, files;
};

void AddChangeFlags(CLI::App* cmd, ChangeFlags& f) {
  cmd->add_option("--var", f.vars, "Variable KEY=VALUE (repeatable)")->allow_extra_args(false);
  cmd->add_option("--secret", f.secrets,
                  "Secret KEY=VALUE, or KEY=- to read the value from stdin (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--secret-file", f.secret_files,
                  "Secret KEY=PATH: the value is the file's content (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--file", f.files,
                  "File REL=LOCALPATH: the local file lands at REL in the release (repeatable)")
      ->allow_extra_args(false);
}

// Splits "KEY=REST"; false (and a message naming the flag, never the text) when malformed.
bool SplitPair(const std::string& text, const char* flag, const char* rest, std::string& key,
               std::string& value, std::string& error) {
  auto eq = text.find('=');
  if (eq == 0 || eq == std::string::npos) {
    error = fmt::format("{} expects {}", flag, rest);
    return false;
  }
  key = text.substr(0, eq);
  value = text.substr(eq + 1);
  return true;
}

// A file's content; strips one trailing newline when asked (secrets typed or echoed).
Result<std::string> ReadAll(std::istream& in, bool strip_newline) {
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Invalid("read error");
  if (strip_newline && !data.empty() && data.back() == '\n') {
    data.pop_back();
    if (!data.empty() && data.back() == '\r') data.pop_back();
  }
  return data;
}

Result<std::string> ReadFile(const std::string& path, const std::string& what, bool strip) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Invalid(fmt::format("{}: cannot read {}", what, path));
  in.seekg(0, std::ios::end);
  if (in.tellg() > static_cast<std::streamoff>(kMaxFileBytes))
    return Invalid(fmt::format("{}: {} is larger than 1 MiB", what, path));
  in.seekg(0);
  auto data = ReadAll(in, strip);
  if (!data.ok()) return Invalid(fmt::format("{}: cannot read {}", what, path));
  if (!IsUtf8(*data)) return Invalid(fmt::format("{}: {} is not UTF-8 text", what, path));
  return data;
}

// Adds key → value to `into`; a key given twice is an error.
Status Put(json& into, const std::string& key, std::string value) {
  if (!IsUtf8(key)) return Invalid("a name or path is not UTF-8");
  if (into.contains(key)) return Invalid(fmt::format("'{}' is given twice", key.substr(0, 64)));
  if (!IsUtf8(value)) return Invalid(fmt::format("the value of '{}' is not UTF-8", key));
  into[key] = std::move(value);
  return Status::Ok();
}

Status AddSecrets(const ChangeFlags& f, json& secrets) {
  bool stdin_used = false;
  std::string key, value, error;
  for (const auto& s : f.secrets) {
    if (!SplitPair(s, "--secret", "KEY=VALUE or KEY=- (stdin)", key, value, error))
      return Invalid(error);
    if (value == "-") {
      if (stdin_used) return Invalid("only one --secret can read stdin (KEY=-)");
      stdin_used = true;
      auto read = ReadAll(std::cin, true);
      if (!read.ok()) return Invalid("--secret " + key + "=-: cannot read stdin");
      value = std::move(*read);
    }
    if (auto st = Put(secrets, key, std::move(value)); !st.ok()) return st;
  }
  for (const auto& s : f.secret_files) {
    if (!SplitPair(s, "--secret-file", "KEY=PATH", key, value, error)) return Invalid(error);
    auto read = ReadFile(value, "--secret-file " + key, true);
    if (!read.ok()) return read.status();
    if (auto st = Put(secrets, key, std::move(*read)); !st.ok()) return st;
  }
  return Status::Ok();
}

// The {vars, secrets, files} of the flags (only the kinds given).
Result<json> BodyOf(const ChangeFlags& f) {
  json vars = json::object(), secrets = json::object(), files = json::object();
  std::string key, value, error;
  for (const auto& v : f.vars) {
    if (!SplitPair(v, "--var", "KEY=VALUE", key, value, error)) return Invalid(error);
    if (auto st = Put(vars, key, value); !st.ok()) return st;
  }
  if (auto st = AddSecrets(f, secrets); !st.ok()) return st;
  for (const auto& v : f.files) {
    if (!SplitPair(v, "--file", "REL=LOCALPATH", key, value, error)) return Invalid(error);
    auto read = ReadFile(value, "--file " + key, false);
    if (!read.ok()) return read.status();
    if (auto st = Put(files, key, std::move(*read)); !st.ok()) return st;
  }
  json body = json::object();
  if (!vars.empty()) body["vars"] = vars;
  if (!secrets.empty()) body["secrets"] = secrets;
  if (!files.empty()) body["files"] = files;
  if (body.dump().size() > kMaxRequestBytes - 1024)
    return Invalid(
        "the request would exceed the server's 1 MiB limit: send large files with separate "
        "`slipway env set NAME --file REL=PATH` calls");
  return body;
}

// Environment names are URL-safe; anything else would change the path the call goes to.
bool SafeName(const std::string& name, int* exit_code) {
  bool ok = !name.empty() && name.size() <= 64 &&
            name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.-") == std::string::npos;
  if (!ok)
    *exit_code =
        Fail("environment names are 1..64 of a-z 0-9 _ . -, starting with a letter or digit");
  return ok;
}

std::string When(const json& j, const char* key) {
  long long ms = j.value(key, 0LL);
  if (ms <= 0) return "-";
  auto t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min);
}

std::string Joined(const json& list) {
  std::string out;
  for (const auto& x : list)
    if (x.is_string()) out += (out.empty() ? "" : ", ") + x.get<std::string>();
  return out.empty() ? "-" : out;
}

void PrintEnvironment(const json& e) {
  std::cout << fmt::format("environment {} (created {}, updated {})\n", e.value("name", ""),
                           When(e, "created_ms"), When(e, "updated_ms"));
  std::cout << "  variables:\n";
  const json vars = e.contains("vars") && e["vars"].is_object() ? e["vars"] : json::object();
  for (const auto& [k, v] : vars.items())
    std::cout << fmt::format("    {}={}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
  std::cout << fmt::format("  secrets:   {}  (values are never shown)\n",
                           Joined(e.value("secrets", json::array())));
  std::cout << fmt::format("  files:     {}\n", Joined(e.value("files", json::array())));
}

void PrintList(const json& r) {
  std::cout << fmt::format("{:<24} {:>5} {:>8} {:>6}  {}\n", "ENVIRONMENT", "VARS", "SECRETS",
                           "FILES", "UPDATED");
  for (const auto& e : r.value("environments", json::array())) {
    std::cout << fmt::format("{:<24} {:>5} {:>8} {:>6}  {}\n", e.value("name", ""),
                             e.value("vars", json::object()).size(),
                             e.value("secrets", json::array()).size(),
                             e.value("files", json::array()).size(), When(e, "updated_ms"));
  }
}

// create and set: the same flags, POST or PATCH.
void AddChangeVerb(CLI::App* env, GlobalOptions& g, int* exit_code, bool create) {
  auto* cmd = env->add_subcommand(create ? "create" : "set", create ? "Create an environment"
                                                                    : "Set variables, secrets or "
                                                                      "files of an environment");
  auto name = std::make_shared<std::string>();
  auto flags = std::make_shared<ChangeFlags>();
  cmd->add_option("name", *name, "Environment name")->required();
  AddChangeFlags(cmd, *flags);
  cmd->callback([&g, exit_code, name, flags, create] {
    if (!SafeName(*name, exit_code)) return;
    auto body = BodyOf(*flags);
    if (!body.ok()) {
      *exit_code = Fail(body.status().message());
      return;
    }
    if (!create && body->empty()) {
      *exit_code = Fail("nothing to set: give --var, --secret, --secret-file or --file");
      return;
    }
    if (create) (*body)["name"] = *name;
    RunCall(g, exit_code, create ? "POST" : "PATCH",
            create ? "/api/v1/environments" : "/api/v1/environments/" + *name, *body,
            [create](const json& e) {
              std::cout << (create ? "created " : "updated ");
              PrintEnvironment(e);
            });
  });
}

}  // namespace

void AddEnvCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* env = app.add_subcommand("env", "Environments: variables, secrets and files for apps");
  env->require_subcommand(1);
  AddChangeVerb(env, g, exit_code, true);
  AddChangeVerb(env, g, exit_code, false);

  auto name = std::make_shared<std::string>();
  auto keys = std::make_shared<std::vector<std::string>>();
  auto* unset = env->add_subcommand("unset", "Remove variables, secrets or files by name");
  unset->add_option("name", *name, "Environment name")->required();
  unset->add_option("keys", *keys, "Variable or secret names, file paths")->required();
  unset->callback([&g, exit_code, name, keys] {
    if (!SafeName(*name, exit_code)) return;
    RunCall(g, exit_code, "PATCH", "/api/v1/environments/" + *name, {{"unset", *keys}},
            [](const json& e) {
              std::cout << "updated ";
              PrintEnvironment(e);
            });
  });

  auto* show = env->add_subcommand("show", "Show an environment (secrets by name only)");
  show->add_option("name", *name, "Environment name")->required();
  show->callback([&g, exit_code, name] {
    if (!SafeName(*name, exit_code)) return;
    RunCall(g, exit_code, "GET", "/api/v1/environments/" + *name, nullptr, PrintEnvironment);
  });

  auto* list = env->add_subcommand("list", "List environments");
  list->callback([&g, exit_code] {
    RunCall(g, exit_code, "GET", "/api/v1/environments", nullptr, PrintList);
  });

  auto* del = env->add_subcommand("delete", "Delete an environment no app or sandbox uses");
  del->add_option("name", *name, "Environment name")->required();
  del->callback([&g, exit_code, name] {
    if (!SafeName(*name, exit_code)) return;
    RunCall(g, exit_code, "DELETE", "/api/v1/environments/" + *name, nullptr,
            [name](const json&) { std::cout << "deleted environment " << *name << "\n"; });
  });
}

}  // namespace slipway::cli
