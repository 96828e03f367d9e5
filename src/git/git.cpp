#include "git/git.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace slipway::git {
namespace fs = std::filesystem;

Remote ParseRemote(const std::string& url) {
  Remote r{url, "", ""};
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return r;
  auto at = url.find('@', scheme + 3);
  auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) return r;
  std::string userinfo = url.substr(scheme + 3, at - scheme - 3);
  auto colon = userinfo.find(':');
  r.username = userinfo.substr(0, colon);
  if (colon != std::string::npos) r.password = userinfo.substr(colon + 1);
  r.url = url.substr(0, scheme + 3) + url.substr(at + 1);
  return r;
}

std::string RedactUrl(const std::string& url) {
  Remote r = ParseRemote(url);
  if (r.username.empty()) return url;
  auto scheme = r.url.find("://");
  return r.url.substr(0, scheme + 3) + r.username + (r.password.empty() ? "" : ":***") + "@" +
         r.url.substr(scheme + 3);
}

Status WriteAskpass(const std::string& path) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  out << "#!/bin/sh\n"
         "# Answers git's credential prompts from the environment of this one git process.\n"
         "case \"$1\" in\n"
         "  Username*) printf '%s\\n' \"$SLIPWAY_GIT_USERNAME\" ;;\n"
         "  *) printf '%s\\n' \"$SLIPWAY_GIT_PASSWORD\" ;;\n"
         "esac\n";
  out.close();
  if (!out || chmod(path.c_str(), 0700) != 0)
    return Unavailable("cannot write askpass helper " + path);
  return Status::Ok();
}

namespace {

os::LineSink Redacting(const os::LineSink& sink, const std::string& secret) {
  return [sink, secret](os::OutputStream s, std::string_view line) {
    if (secret.empty() || line.find(secret) == std::string_view::npos) return sink(s, line);
    std::string text(line);
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "***");
    }
    sink(s, text);
  };
}

Status RunGit(const std::vector<std::string>& args, const os::CommandSpec& base,
              const os::LineSink& sink, const os::RunOptions& options) {
  os::CommandSpec spec = base;
  spec.argv = {"git"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  auto result = os::Run(spec, sink, options);
  if (!result.ok()) return result.status();
  // Name the subcommand, not the -C option that may come first.
  std::string verb = args[0] == "-C" && args.size() > 2 ? args[2] : args[0];
  if (result->timed_out) return {Code::kTimeout, "git " + verb + " timed out"};
  if (result->cancelled) return {Code::kCancelled, "git " + verb + " cancelled"};
  if (result->exit_code != 0) {
    return Unavailable("git " + verb + " exited with " + std::to_string(result->exit_code));
  }
  return Status::Ok();
}

os::CommandSpec BaseSpec() {
  os::CommandSpec spec;
  spec.env = {{"GIT_TERMINAL_PROMPT", "0"}, {"LC_ALL", "C"}, {"GIT_CONFIG_NOSYSTEM", "1"}};
  return spec;
}

}  // namespace

Status Fetch(const Remote& remote, const FetchOptions& options, const os::LineSink& sink) {
  auto redacted = Redacting(sink, remote.password);
  os::CommandSpec spec = BaseSpec();
  os::RunOptions run{options.timeout, options.cancel};
  if (!fs::exists(fs::path(options.cache_dir) / "HEAD")) {
    std::error_code ec;
    fs::create_directories(options.cache_dir, ec);
    if (auto s = RunGit({"init", "--quiet", "--bare", options.cache_dir}, spec, redacted, run);
        !s.ok())
      return s;
  }
  if (!remote.username.empty()) {
    spec.env["GIT_ASKPASS"] = options.askpass_path;
    spec.env["SLIPWAY_GIT_USERNAME"] = remote.username;
    spec.env["SLIPWAY_GIT_PASSWORD"] = remote.password;
  }
  return RunGit({"-C", options.cache_dir, "fetch", "--quiet", "--force", "--prune", "--no-tags",
                 remote.url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
                spec, redacted, run);
}

Result<std::string> Resolve(const std::string& cache_dir, const std::string& ref) {
  if (ref.empty() || ref[0] == '-') return Invalid("bad ref '" + ref + "'");
  std::string sha;
  auto capture = [&sha](os::OutputStream s, std::string_view line) {
    if (s == os::OutputStream::kStdout) sha = std::string(line);
  };
  auto s = RunGit({"-C", cache_dir, "rev-parse", "--verify", "--quiet", ref + "^{commit}"},
                  BaseSpec(), capture, {std::chrono::seconds(30), nullptr});
  if (!s.ok() || sha.size() != 40)
    return NotFound("'" + ref + "' names no commit in the repository");
  return sha;
}

Status Export(const std::string& cache_dir, const std::string& commit, const std::string& dest,
              const os::LineSink& sink) {
  std::error_code ec;
  if (fs::exists(dest)) return Conflict(dest + " already exists");
  fs::create_directories(dest, ec);
  if (ec) return Unavailable("cannot create " + dest + ": " + ec.message());
  os::CommandSpec spec = BaseSpec();
  spec.argv = {
      "/bin/sh", "-c",      "set -e; git -C \"$1\" archive --format=tar \"$2\" | tar -x -C \"$3\"",
      "export",  cache_dir, commit,
      dest};
  auto result = os::Run(spec, sink, {std::chrono::minutes(5), nullptr});
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) return Unavailable("git archive of " + commit + " failed");
  return Status::Ok();
}

}  // namespace slipway::git
