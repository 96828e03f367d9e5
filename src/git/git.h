#pragma once
// The git CLI, wrapped. Credentials never appear in a command line, a URL that is logged,
// or an event: they reach git through an askpass helper and environment variables of the
// one git process that needs them.
#include <atomic>
#include <string>

#include "core/status.h"
#include "os/process.h"

namespace slipway::git {

struct Remote {
  std::string url;       // without credentials
  std::string username;  // "" when none
  std::string password;
};

// Splits "https://user:token@host/x.git" into a clean URL and credentials. Local paths,
// file://, git:// and URLs without user info come back unchanged.
Remote ParseRemote(const std::string& url);
// The URL with any password replaced by "***", for display.
std::string RedactUrl(const std::string& url);

struct FetchOptions {
  std::string cache_dir;     // bare mirror, created on first use
  std::string askpass_path;  // helper script (see WriteAskpass)
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  const std::atomic<bool>* cancel = nullptr;
};

// Writes the askpass helper script at `path` (mode 0700). Idempotent.
Status WriteAskpass(const std::string& path);

// Fetches all branches and tags of `remote` into the mirror. Output lines go to `sink`
// with the password redacted. kUnavailable when git fails.
Status Fetch(const Remote& remote, const FetchOptions& options, const os::LineSink& sink);

// Resolves a branch, tag or (abbreviated) sha in the mirror to a full commit sha.
// kNotFound when it names no commit.
Result<std::string> Resolve(const std::string& cache_dir, const std::string& ref);

// Writes the tree of `commit` into `dest` (created; must not exist), without .git.
Status Export(const std::string& cache_dir, const std::string& commit, const std::string& dest,
              const os::LineSink& sink);

}  // namespace slipway::git
