#include "cli/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace slipway::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Credentials LoadConfig() {
  std::ifstream in(ConfigPath());
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (!j.is_object()) return {};
  return {j.value("server", ""), j.value("token", "")};
}

}  // namespace

std::string ConfigPath() {
  std::string base = Env("XDG_CONFIG_HOME");
  if (base.empty()) base = Env("HOME").empty() ? "." : Env("HOME") + "/.config";
  return base + "/slipway/config";
}

Credentials ResolveCredentials(const Credentials& flags) {
  Credentials out = flags;
  if (out.server.empty()) out.server = Env("SLIPWAY_SERVER");
  if (out.token.empty()) out.token = Env("SLIPWAY_TOKEN");
  if (out.server.empty() || out.token.empty()) {
    Credentials saved = LoadConfig();
    // A saved token belongs to the server it was saved with.
    bool same_server = out.server.empty() || out.server == saved.server;
    if (out.server.empty()) out.server = saved.server;
    if (out.token.empty() && same_server) out.token = saved.token;
  }
  if (out.server.empty()) out.server = "http://127.0.0.1:3452";
  return out;
}

Status SaveConfig(const Credentials& c) {
  std::string path = ConfigPath();
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  std::filesystem::create_directories(dir, ec);
  chmod(dir.c_str(), 0700);
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("cannot write " + path);
  std::string text = nlohmann::json{{"server", c.server}, {"token", c.token}}.dump() + "\n";
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = fchmod(fd, 0600) == 0 && ok;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) return Unavailable("cannot write " + path);
  return Status::Ok();
}

Status RemoveConfigToken() {
  Credentials saved = LoadConfig();
  if (saved.server.empty() && saved.token.empty()) return Status::Ok();
  saved.token.clear();
  return SaveConfig(saved);
}

}  // namespace slipway::cli
