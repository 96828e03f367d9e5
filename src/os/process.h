#pragma once
// Child processes without a shell-out library: run-to-completion with live output (build
// and test steps, git), and detached long-running instances that outlive the server.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace slipway::os {

struct CommandSpec {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH
  std::string cwd;                         // "" = inherit
  std::map<std::string, std::string> env;  // added to (and overriding) the inherited environment
  bool clear_env = false;                  // start from an empty environment instead
};

enum class OutputStream { kStdout, kStderr };
using LineSink = std::function<void(OutputStream, std::string_view line)>;

struct RunOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
  const std::atomic<bool>* cancel = nullptr;  // checked while the command runs
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
};

// Runs a command in its own process group, feeding each output line to `sink` as it
// arrives. On timeout or cancel the whole group is killed. Errors: kUnavailable when the
// program cannot be started. A non-zero exit is a RunResult, not an error.
Result<RunResult> Run(const CommandSpec& spec, const LineSink& sink,
                      const RunOptions& options = {});

struct Detached {
  int pid = 0;                // also the process group and session id
  long long start_ticks = 0;  // from /proc/<pid>/stat, to recognise the pid after a restart
};

// Starts a long-running process in a new session, not a child of this process (it is
// re-parented to init at once), so it survives a server crash and never becomes our
// zombie. stdin is /dev/null; stdout and stderr are appended to `log_path`.
Result<Detached> SpawnDetached(const CommandSpec& spec, const std::string& log_path);

// True when `pid` runs, is not a zombie and (if start_ticks != 0) started at start_ticks.
bool IsAlive(int pid, long long start_ticks);
long long StartTicks(int pid);
// Resident memory of every process in the process group, in bytes.
long long GroupRssBytes(int pgid);
// SIGTERM to the group, then SIGKILL after `grace` if anything is left. Returns once the
// leader is gone or the kill was sent.
void StopGroup(int pgid, long long start_ticks, std::chrono::milliseconds grace);

// Wraps a user command for /bin/sh -c. When it is one simple command (no ; & | newline,
// parentheses or backquotes), `exec` is inserted before the program, after any leading
// NAME=value assignments ("FOO=\"a b\" ./server" becomes "FOO=\"a b\" exec ./server", which
// the shell runs with FOO exported), so the recorded pid is the app itself and signals reach
// it. Anything else (a list or pipeline, only assignments, a reserved word or a builtin
// that is not also a program, exec already present, an unclosed quote) is passed to the
// shell unchanged.
std::vector<std::string> ShellCommand(const std::string& command);

}  // namespace slipway::os
