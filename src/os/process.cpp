#include "os/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace slipway::os {
namespace {

// argv/envp prepared before fork: the child may only call async-signal-safe functions.
struct ExecArgs {
  std::vector<std::string> argv_storage, env_storage;
  std::vector<char*> argv, envp;

  explicit ExecArgs(const CommandSpec& spec) : argv_storage(spec.argv) {
    std::map<std::string, std::string> env;
    if (!spec.clear_env) {
      for (char** e = environ; *e; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
      }
    }
    for (const auto& [k, v] : spec.env) env[k] = v;
    for (const auto& [k, v] : env) env_storage.push_back(k + "=" + v);
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
};

[[noreturn]] void ExecChild(const CommandSpec& spec, ExecArgs& args) {
  if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) _exit(126);
  // Not every library opens its descriptors close-on-exec (Asio's listening sockets do
  // not): without this an instance would hold the gateway's port after a server crash.
  if (close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < 65536; ++fd) close(fd);
  }
  // Reset signal dispositions the server may have changed.
  signal(SIGPIPE, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // The server keeps its own files private with umask 077; builds and apps get the usual
  // default, so what they create stays readable as they expect.
  umask(022);
  execvpe(args.argv[0], args.argv.data(), args.envp.data());
  _exit(127);
}

void ReadLines(int fd, std::string& pending, OutputStream stream, const LineSink& sink,
               bool& open) {
  char buf[8192];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    open = false;
    if (!pending.empty()) sink(stream, pending);
    pending.clear();
    return;
  }
  pending.append(buf, static_cast<std::size_t>(n));
  std::size_t start = 0, nl;
  while ((nl = pending.find('\n', start)) != std::string::npos) {
    sink(stream, std::string_view(pending).substr(start, nl - start));
    start = nl + 1;
  }
  pending.erase(0, start);
  // An endless line is flushed in pieces instead of growing without bound.
  if (pending.size() > 64 * 1024) {
    sink(stream, pending);
    pending.clear();
  }
}

}  // namespace

Result<RunResult> Run(const CommandSpec& spec, const LineSink& sink, const RunOptions& options) {
  if (spec.argv.empty()) return Invalid("empty command");
  ExecArgs args(spec);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Unavailable(std::string("pipe: ") + strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return Unavailable(std::string("pipe: ") + strerror(errno));
  }
  pid_t pid = fork();
  if (pid < 0) return Unavailable(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    ExecChild(spec, args);
  }
  setpgid(pid, pid);
  close(out[1]);
  close(err[1]);
  RunResult result;
  std::string pending_out, pending_err;
  bool out_open = true, err_open = true;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  while (out_open || err_open) {
    pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    int rc = poll(fds, 2, 100);
    if (rc > 0) {
      if (fds[0].revents) ReadLines(out[0], pending_out, OutputStream::kStdout, sink, out_open);
      if (fds[1].revents) ReadLines(err[0], pending_err, OutputStream::kStderr, sink, err_open);
    }
    bool cancelled = options.cancel && options.cancel->load();
    if (cancelled || std::chrono::steady_clock::now() >= deadline) {
      result.cancelled = cancelled;
      result.timed_out = !cancelled;
      kill(-pid, SIGKILL);
      break;
    }
  }
  close(out[0]);
  close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Leave nothing of the step behind (a build that daemonised a helper, say).
  kill(-pid, SIGKILL);
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

Result<Detached> SpawnDetached(const CommandSpec& spec, const std::string& log_path) {
  if (spec.argv.empty()) return Invalid("empty command");
  ExecArgs args(spec);
  int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log < 0) return Unavailable("cannot open " + log_path + ": " + strerror(errno));
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    close(log);
    return Unavailable(std::string("pipe: ") + strerror(errno));
  }
  pid_t child = fork();
  if (child < 0) {
    close(log);
    close(report[0]);
    close(report[1]);
    return Unavailable(std::string("fork: ") + strerror(errno));
  }
  if (child == 0) {
    // Intermediate child: start the real process in a new session and exit, so that init
    // adopts it.
    pid_t grandchild = fork();
    if (grandchild != 0) {
      int32_t v = grandchild;
      (void)!write(report[1], &v, sizeof v);
      _exit(grandchild > 0 ? 0 : 1);
    }
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
    ExecChild(spec, args);
  }
  close(log);
  close(report[1]);
  int32_t pid = 0;
  ssize_t n;
  while ((n = read(report[0], &pid, sizeof pid)) < 0 && errno == EINTR) {
  }
  close(report[0]);
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof pid || pid <= 0) return Unavailable("could not start process");
  Detached d;
  d.pid = pid;
  d.start_ticks = StartTicks(pid);
  return d;
}

namespace {
// Fields of /proc/<pid>/stat after the command name: state is field 3, pgrp 5, starttime 22.
bool ReadStat(int pid, char& state, int& pgrp, long long& start_ticks) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return false;
  std::istringstream rest(line.substr(close_paren + 2));
  std::string field;
  std::vector<std::string> f;
  while (rest >> field) f.push_back(field);
  if (f.size() < 20) return false;
  state = f[0][0];
  pgrp = std::stoi(f[2]);
  start_ticks = std::stoll(f[19]);
  return true;
}
}  // namespace

long long StartTicks(int pid) {
  char state;
  int pgrp;
  long long ticks = 0;
  return ReadStat(pid, state, pgrp, ticks) ? ticks : 0;
}

bool IsAlive(int pid, long long start_ticks) {
  if (pid <= 0) return false;
  char state;
  int pgrp;
  long long ticks;
  if (!ReadStat(pid, state, pgrp, ticks)) return false;
  if (state == 'Z' || state == 'X') return false;
  return start_ticks == 0 || ticks == start_ticks;
}

long long GroupRssBytes(int pgid) {
  long long total = 0;
  DIR* dir = opendir("/proc");
  if (!dir) return 0;
  long page = sysconf(_SC_PAGESIZE);
  while (dirent* e = readdir(dir)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    char state;
    int pgrp;
    long long ticks;
    if (!ReadStat(pid, state, pgrp, ticks) || pgrp != pgid) continue;
    std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
    long long size = 0, resident = 0;
    if (statm >> size >> resident) total += resident * page;
  }
  closedir(dir);
  return total;
}

void StopGroup(int pgid, long long start_ticks, std::chrono::milliseconds grace) {
  // A dead leader means the pid (and group id) may belong to someone else by now.
  if (!IsAlive(pgid, start_ticks)) return;
  kill(-pgid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!IsAlive(pgid, start_ticks)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(-pgid, SIGKILL);
}

namespace {

// End of the shell word that starts at `i`, honouring quotes and backslashes; npos when a
// quote is left open (the shell then reports the error itself).
std::size_t WordEnd(const std::string& s, std::size_t i) {
  while (i < s.size() && s[i] != ' ' && s[i] != '\t') {
    if (s[i] == '\\') {
      i += 2;
    } else if (s[i] == '\'') {
      i = s.find('\'', i + 1);
      if (i == std::string::npos) return i;
      ++i;
    } else if (s[i] == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\') ++i;
      }
      if (i >= s.size()) return std::string::npos;
      ++i;
    } else {
      ++i;
    }
  }
  return std::min(i, s.size());
}

// NAME=value with a shell variable name.
bool IsAssignment(std::string_view word) {
  auto eq = word.find('=');
  if (eq == 0 || eq == std::string_view::npos || std::isdigit(static_cast<unsigned char>(word[0])))
    return false;
  for (char c : word.substr(0, eq)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// Where `exec ` goes in a simple command: after any leading NAME=value words, before the
// program. npos when nothing should be inserted: no program, exec already there, an open
// quote, or a word that only means something to the shell itself (`exec exit 3` or
// `exec umask` would look for a program of that name and fail).
std::size_t ExecPosition(const std::string& command) {
  static const std::set<std::string_view> kKeep = {
      "exec",    "!",     "{",        "if",     "while",   "until", "for",    "case",
      "break",   ":",     "continue", ".",      "eval",    "exit",  "export", "readonly",
      "return",  "set",   "shift",    "times",  "trap",    "unset", "cd",     "umask",
      "wait",    "alias", "unalias",  "read",   "getopts", "jobs",  "fg",     "bg",
      "command", "type",  "hash",     "ulimit", "local"};
  std::size_t i = command.find_first_not_of(" \t");
  while (i != std::string::npos) {
    std::size_t end = WordEnd(command, i);
    if (end == std::string::npos) return end;
    std::string_view word = std::string_view(command).substr(i, end - i);
    if (!IsAssignment(word)) return kKeep.count(word) ? std::string::npos : i;
    i = command.find_first_not_of(" \t", end);
  }
  return std::string::npos;
}

}  // namespace

std::vector<std::string> ShellCommand(const std::string& command) {
  if (command.find_first_of(";&|\n()`") != std::string::npos) return {"/bin/sh", "-c", command};
  // `FOO=bar exec ./server`, not `exec FOO=bar ./server`: the shell exports the assignments
  // to the program it execs, as it would for `FOO=bar ./server`.
  std::size_t at = ExecPosition(command);
  if (at == std::string::npos) return {"/bin/sh", "-c", command};
  return {"/bin/sh", "-c", command.substr(0, at) + "exec " + command.substr(at)};
}

}  // namespace slipway::os
