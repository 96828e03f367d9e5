// login, logout, whoami, token, users and audit: one API call each.
#include <fmt/format.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/config.h"

namespace slipway::cli {
namespace {

using json = nlohmann::json;

// One line from stdin; without echo when stdin is a terminal.
std::string ReadPassword(const std::string& prompt) {
  bool tty = isatty(STDIN_FILENO);
  termios old{};
  if (tty) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Runs one API call and prints the result (JSON, or `human` of it); sets the exit code.
void Run(GlobalOptions& g, int* exit_code, const std::string& method, const std::string& path,
         const json& body, const std::function<void(const json&)>& human) {
  RunCall(g, exit_code, method, path, body, human);
}

std::string When(long long ms) {
  if (ms == 0) return "-";
  auto t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min);
}

std::string State(const json& t) {
  if (t["revoked"].get<bool>()) return "revoked";
  long long expires = t["expires_ms"];
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return expires != 0 && expires <= now ? "expired" : "valid";
}

void AddLogin(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* login = app.add_subcommand("login", "Save the server URL and a token for later commands");
  auto user = std::make_shared<std::string>();
  auto from_stdin = std::make_shared<bool>(false);
  login->add_option("--user,-u", *user, "Log in as a user (password from the terminal or stdin)");
  login->add_flag("--password-stdin", *from_stdin, "Read the password from stdin");
  login->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    std::string token = ResolveCredentials({g.server, g.token}).token;
    if (!user->empty()) {
      std::string password = ReadPassword("password for " + *user + ": ");
      if (password.empty()) {
        *exit_code = Fail("no password given (type it, or pipe it with --password-stdin)");
        return;
      }
      auto r = c->Call("POST", "/api/v1/auth/login",
                       json{{"username", *user}, {"password", password}, {"mode", "token"}});
      if (!r.ok()) {
        *exit_code = Fail(r.status().message());
        return;
      }
      token = (*r)["token"];
    }
    if (token.empty()) {
      *exit_code = Fail("login needs --token TOKEN, SLIPWAY_TOKEN or --user NAME");
      return;
    }
    auto checked = ApiClient::Create(g.server, token);
    auto who = checked->Call("GET", "/api/v1/auth/whoami");
    if (!who.ok()) {
      *exit_code = Fail(who.status().message());
      return;
    }
    if (auto s = SaveConfig({g.server, token}); !s.ok()) {
      *exit_code = Fail(s.message());
      return;
    }
    std::cout << fmt::format("logged in to {} as {} ({}); saved in {}\n", g.server,
                             (*who)["name"].get<std::string>(), (*who)["role"].get<std::string>(),
                             ConfigPath());
    *exit_code = 0;
  });
  auto* logout = app.add_subcommand("logout", "End the saved session and forget the token");
  logout->callback([=, &g] {
    auto c = Client(g, *exit_code);
    if (!c) return;
    (void)c->Call("POST", "/api/v1/auth/logout");  // a token (not a session) just gets forgotten
    if (auto s = RemoveConfigToken(); !s.ok()) {
      *exit_code = Fail(s.message());
      return;
    }
    std::cout << "logged out\n";
    *exit_code = 0;
  });
  auto* whoami = app.add_subcommand("whoami", "Who the saved token or session is");
  whoami->callback([=, &g] {
    Run(g, exit_code, "GET", "/api/v1/auth/whoami", nullptr, [](const json& r) {
      std::cout << fmt::format("{} ({} via {})\n", r["name"].get<std::string>(),
                               r["role"].get<std::string>(), r["kind"].get<std::string>());
    });
  });
}

void AddToken(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* token = app.add_subcommand("token", "API tokens: create, list, revoke");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "Create a token (shown once)");
  auto role = std::make_shared<std::string>();
  auto expires = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  create->add_option("--role", *role, "admin, backend, qa or viewer")->required();
  create->add_option("--expires", *expires, "Lifetime like 30d, 12h (default: never)");
  create->add_option("--name", *name, "A name to recognise it by");
  create->callback([=, &g] {
    json body = {{"role", *role}};
    if (!expires->empty()) body["expires"] = *expires;
    if (!name->empty()) body["name"] = *name;
    Run(g, exit_code, "POST", "/api/v1/tokens", body, [](const json& r) {
      std::cout << r["token"].get<std::string>() << "\n";
      std::cerr << fmt::format("token '{}' ({}) created; it is shown only this once\n",
                               r["name"].get<std::string>(), r["role"].get<std::string>());
    });
  });
  auto* list = token->add_subcommand("list", "List tokens (never their values)");
  list->callback([=, &g] {
    Run(g, exit_code, "GET", "/api/v1/tokens", nullptr, [](const json& r) {
      std::cout << fmt::format("{:<5} {:<24} {:<8} {:<8} {:<18} {:<18} {}\n", "ID", "NAME", "ROLE",
                               "STATE", "EXPIRES", "LAST USED", "CREATED BY");
      for (const auto& t : r["tokens"]) {
        std::cout << fmt::format("{:<5} {:<24} {:<8} {:<8} {:<18} {:<18} {}\n",
                                 t["id"].get<long long>(), t["name"].get<std::string>(),
                                 t["role"].get<std::string>(), State(t), When(t["expires_ms"]),
                                 When(t["last_used_ms"]), t["created_by"].get<std::string>());
      }
    });
  });
  auto* revoke = token->add_subcommand("revoke", "Revoke a token by id or name");
  auto which = std::make_shared<std::string>();
  revoke->add_option("token", *which, "Token id or name")->required();
  revoke->callback([=, &g] {
    Run(g, exit_code, "DELETE", "/api/v1/tokens/" + *which, nullptr,
        [which](const json&) { std::cout << "revoked " << *which << "\n"; });
  });
}

void AddUsers(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* users = app.add_subcommand("users", "Local and git-credential users");
  users->require_subcommand(1);
  auto* create = users->add_subcommand("create", "Create a user");
  auto name = std::make_shared<std::string>();
  auto role = std::make_shared<std::string>();
  auto git = std::make_shared<bool>(false);
  create->add_option("name", *name)->required();
  create->add_option("--role", *role, "admin, backend, qa or viewer")->required();
  create->add_flag("--git", *git, "Logs in with git credentials (no local password)");
  create->callback([=, &g] {
    json body = {{"name", *name}, {"role", *role}, {"source", *git ? "git" : "local"}};
    if (!*git) body["password"] = ReadPassword("password for " + *name + ": ");
    Run(g, exit_code, "POST", "/api/v1/users", body, [name](const json& r) {
      std::cout << fmt::format("created user {} ({})\n", *name, r["role"].get<std::string>());
    });
  });
  auto* list = users->add_subcommand("list", "List users");
  list->callback([=, &g] {
    Run(g, exit_code, "GET", "/api/v1/users", nullptr, [](const json& r) {
      for (const auto& u : r["users"]) {
        std::cout << fmt::format("{:<24} {:<8} {}\n", u["name"].get<std::string>(),
                                 u["role"].get<std::string>(), u["source"].get<std::string>());
      }
    });
  });
  auto* del = users->add_subcommand("delete", "Delete a user and end their sessions");
  auto del_name = std::make_shared<std::string>();
  del->add_option("name", *del_name)->required();
  del->callback([=, &g] {
    Run(g, exit_code, "DELETE", "/api/v1/users/" + *del_name, nullptr,
        [del_name](const json&) { std::cout << "deleted " << *del_name << "\n"; });
  });
}

void AddAudit(CLI::App& app, GlobalOptions& g, int* exit_code) {
  auto* audit = app.add_subcommand("audit", "Who changed what, from where, with what outcome");
  auto app_name = std::make_shared<std::string>();
  auto actor = std::make_shared<std::string>();
  auto since = std::make_shared<std::string>();
  auto limit = std::make_shared<int>(50);
  audit->add_option("--app", *app_name, "Only this app");
  audit->add_option("--actor", *actor, "Only this user or token");
  audit->add_option("--since", *since, "Only the last 30m, 12h, 7d …");
  audit->add_option("--limit", *limit)->check(CLI::Range(1, 1000));
  audit->callback([=, &g] {
    std::string path = fmt::format("/api/v1/audit?limit={}", *limit);
    if (!app_name->empty()) path += "&app=" + *app_name;
    if (!actor->empty()) path += "&actor=" + *actor;
    if (!since->empty()) {
      long long n = 0;
      char unit = since->back();
      try {
        n = std::stoll(since->substr(0, since->size() - 1));
      } catch (...) {
      }
      long long mult = unit == 'm'   ? 60'000
                       : unit == 'h' ? 3'600'000
                       : unit == 'd' ? 86'400'000
                                     : 0;
      if (n <= 0 || mult == 0 || n > 3650LL * 86'400'000 / mult) {
        *exit_code = Fail("--since must be like 30m, 12h or 7d");
        return;
      }
      auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
      path += fmt::format("&since={}", now - n * mult);
    }
    Run(g, exit_code, "GET", path, nullptr, [](const json& r) {
      for (const auto& a : r["audit"]) {
        std::cout << fmt::format("{}  {:<16} {:<15} {:<24} {:<22} {}\n", When(a["ts_ms"]),
                                 a["actor"].get<std::string>(), a["source"].get<std::string>(),
                                 a["action"].get<std::string>(), a["target"].get<std::string>(),
                                 a["outcome"].get<std::string>());
      }
    });
  });
}

}  // namespace

void AddAuthCommands(CLI::App& app, GlobalOptions& g, int* exit_code) {
  AddLogin(app, g, exit_code);
  AddToken(app, g, exit_code);
  AddUsers(app, g, exit_code);
  AddAudit(app, g, exit_code);
}

}  // namespace slipway::cli
