#include "os/process.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace slipway::os {
namespace {

namespace fs = std::filesystem;

struct Output {
  int exit_code = -1;
  std::vector<std::string> out, err;
};

// Runs `command` the way the process runtime wraps it and collects its output.
Output RunShell(const std::string& command, const std::string& cwd = "") {
  CommandSpec spec;
  spec.argv = ShellCommand(command);
  spec.cwd = cwd;
  Output o;
  auto r = Run(spec, [&](OutputStream s, std::string_view line) {
    (s == OutputStream::kStdout ? o.out : o.err).emplace_back(line);
  });
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (r.ok()) o.exit_code = r->exit_code;
  return o;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "slipway-process-XXXXXX").string();
    path_ = mkdtemp(pattern.data()) ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Waits (bounded) until `done` holds; a liveness bound, not a timing assertion.
template <typename F>
bool Eventually(F done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

struct WrapCase {
  const char* command;
  const char* script;  // what /bin/sh -c is given
};

class ShellCommandWrapping : public ::testing::TestWithParam<WrapCase> {};

TEST_P(ShellCommandWrapping, PutsExecBeforeTheProgram) {
  auto argv = ShellCommand(GetParam().command);
  ASSERT_EQ(argv.size(), 3u);
  EXPECT_EQ(argv[0], "/bin/sh");
  EXPECT_EQ(argv[1], "-c");
  EXPECT_EQ(argv[2], GetParam().script);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ShellCommandWrapping,
    ::testing::Values(
        WrapCase{"./server", "exec ./server"},
        WrapCase{"./server --port=$PORT", "exec ./server --port=$PORT"},
        WrapCase{"FOO=bar ./server", "FOO=bar exec ./server"},
        WrapCase{"FOO=\"a b\" BAR=1 ./server --x=1", "FOO=\"a b\" BAR=1 exec ./server --x=1"},
        WrapCase{"A='x y' B=\"q\\\"r\" C=d\\ e ./s", "A='x y' B=\"q\\\"r\" C=d\\ e exec ./s"},
        WrapCase{"_X1=  ./s", "_X1=  exec ./s"}, WrapCase{"  ./s", "  exec ./s"},
        WrapCase{"exec ./server", "exec ./server"},
        WrapCase{"FOO=bar exec ./server", "FOO=bar exec ./server"}, WrapCase{"FOO=bar", "FOO=bar"},
        WrapCase{"1X=2 ./s", "exec 1X=2 ./s"}, WrapCase{"FOO='open ./s", "FOO='open ./s"},
        WrapCase{"! ./s", "! ./s"}, WrapCase{"echo a; echo b", "echo a; echo b"},
        WrapCase{"a && b", "a && b"}, WrapCase{"a | b", "a | b"},
        WrapCase{"FOO=$(id) ./s", "FOO=$(id) ./s"}, WrapCase{"a\nb", "a\nb"},
        WrapCase{"exit 3", "exit 3"}, WrapCase{"umask", "umask"},
        WrapCase{"FOO=1 cd /", "FOO=1 cd /"}, WrapCase{"echo hi", "exec echo hi"}));

TEST(ShellCommand, AssignmentsReachTheProgram) {
  auto o = RunShell("FOO=bar printenv FOO");
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, std::vector<std::string>{"bar"});
  EXPECT_TRUE(o.err.empty()) << o.err.front();
}

TEST(ShellCommand, QuotedValuesSurvive) {
  auto o = RunShell(R"(FOO="a b" BAR='c  d' BAZ=e\ f QUX="x\"y" printenv FOO BAR BAZ QUX)");
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, (std::vector<std::string>{"a b", "c  d", "e f", "x\"y"}));
}

TEST(ShellCommand, ProcfileStyleCommandWithArguments) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  {
    std::ofstream script(dir.path() + "/server");
    script << "#!/bin/sh\necho \"$FOO|$BAR|$*\"\n";
  }
  fs::permissions(dir.path() + "/server", fs::perms::owner_all);
  auto o = RunShell(R"(FOO="a b" BAR=1 ./server --x=1 "two words")", dir.path());
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, std::vector<std::string>{"a b|1|--x=1 two words"});
}

TEST(ShellCommand, ListsAndPipelinesStillWork) {
  EXPECT_EQ(RunShell("echo a; echo b").out, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(RunShell("true && echo ok").out, std::vector<std::string>{"ok"});
  EXPECT_EQ(RunShell("false || echo fallback").out, std::vector<std::string>{"fallback"});
  EXPECT_EQ(RunShell("echo hello | tr a-z A-Z").out, std::vector<std::string>{"HELLO"});
  EXPECT_EQ(RunShell("FOO=1; echo $FOO").out, std::vector<std::string>{"1"});
  EXPECT_EQ(RunShell("exit 3").exit_code, 3);
}

TEST(ShellCommand, DetachedAssignmentCommandRecordsTheProgramsPid) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  CommandSpec spec;
  spec.argv = ShellCommand("FOO=\"a b\" sleep 30");
  auto d = SpawnDetached(spec, dir.path() + "/log");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const std::string proc = "/proc/" + std::to_string(d->pid);
  // The shell execs sleep in place: the recorded pid becomes sleep (it would stay "sh" if
  // the shell forked, and vanish if the assignment broke the command).
  EXPECT_TRUE(Eventually([&] { return ReadFile(proc + "/comm") == "sleep\n"; }))
      << ReadFile(proc + "/comm") << ReadFile(dir.path() + "/log");
  // The kernel names the process at exec before it lays out the new arguments: cmdline
  // and environ may read empty for a moment after comm changed.
  const std::string argv(
      "sleep\0"
      "30\0",
      9);
  EXPECT_TRUE(Eventually([&] { return ReadFile(proc + "/cmdline") == argv; }))
      << ReadFile(proc + "/cmdline");
  EXPECT_TRUE(Eventually([&] {
    return ReadFile(proc + "/environ").find(std::string("\0FOO=a b\0", 9)) != std::string::npos;
  }));
  StopGroup(d->pid, d->start_ticks, std::chrono::milliseconds(500));
  EXPECT_TRUE(Eventually([&] { return !IsAlive(d->pid, d->start_ticks); }));
}

// The server runs with umask 077; what it starts must not inherit that.
class ChildUmask : public ::testing::Test {
 protected:
  void SetUp() override { saved_ = umask(077); }
  void TearDown() override { umask(saved_); }

 private:
  mode_t saved_ = 022;
};

TEST_F(ChildUmask, RunResetsItTo022) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto o = RunShell("umask; touch made; stat -c %a made", dir.path());
  EXPECT_EQ(o.out, (std::vector<std::string>{"0022", "644"}));
}

TEST_F(ChildUmask, SpawnDetachedResetsItTo022) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  CommandSpec spec;
  spec.argv = ShellCommand("umask");
  auto d = SpawnDetached(spec, dir.path() + "/log");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(Eventually([&] { return ReadFile(dir.path() + "/log") == "0022\n"; }))
      << ReadFile(dir.path() + "/log");
}

}  // namespace
}  // namespace slipway::os
