// Agent::WriteFile on the local agent (atomic, mode, parent directories, limits, paths kept
// under the data directory) and across the wire: NodeHub ↔ in-process node ↔ a real local
// agent on a temporary data directory, small files in one op and large ones in parts.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/executor.h"
#include "agent/hub.h"
#include "agent/in_process.h"
#include "agent/wire.h"
#include "core/clock.h"

namespace slipway {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int ModeOf(const fs::path& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// Every byte value, repeated to `size` bytes: binary content, not UTF-8.
std::string Binary(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

// The entries of `dir` (names), for checking no temporary or staging file stays behind.
std::vector<std::string> Entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class WriteFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("slipway-writefile-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    root_ = fs::canonical(root_);
    agent_ = MakeLocalAgent(root_.string(), (root_ / "askpass.sh").string());
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(WriteFileTest, LocalWritesWithTheModeAndCreatesParents) {
  fs::path p = root_ / "releases/app/1-abc/config/secrets.env";
  ASSERT_TRUE(agent_->WriteFile(p.string(), "TOKEN=abc\n", 0600).ok());
  EXPECT_EQ(Slurp(p), "TOKEN=abc\n");
  EXPECT_EQ(ModeOf(p), 0600);
  ASSERT_TRUE(agent_->WriteFile(p.string(), "TOKEN=new\n", 0640).ok());  // replaced
  EXPECT_EQ(Slurp(p), "TOKEN=new\n");
  EXPECT_EQ(ModeOf(p), 0640);
  EXPECT_EQ(Entries(p.parent_path()), std::vector<std::string>{"secrets.env"});
}

TEST_F(WriteFileTest, LocalTakesEmptyAndBinaryContentUpToTheLimit) {
  fs::path empty = root_ / "empty";
  ASSERT_TRUE(agent_->WriteFile(empty.string(), "", 0600).ok());
  EXPECT_TRUE(fs::exists(empty));
  EXPECT_EQ(fs::file_size(empty), 0u);
  std::string big = Binary(kMaxWriteFileBytes);
  ASSERT_TRUE(agent_->WriteFile((root_ / "big").string(), big, 0600).ok());
  EXPECT_EQ(Slurp(root_ / "big"), big);
  auto over = agent_->WriteFile((root_ / "over").string(), big + "x", 0600);
  EXPECT_EQ(over.code(), Code::kInvalid);
  EXPECT_FALSE(fs::exists(root_ / "over"));
}

TEST_F(WriteFileTest, LocalRefusesPathsOutsideTheDataDirectoryAndBadModes) {
  fs::path outside = fs::temp_directory_path() / ("slipway-outside-" + std::to_string(getpid()));
  fs::remove_all(outside);
  fs::create_directories(outside);
  EXPECT_EQ(agent_->WriteFile((outside / "x").string(), "x", 0600).code(), Code::kInvalid);
  EXPECT_EQ(agent_->WriteFile((root_ / "a/../../x").string(), "x", 0600).code(), Code::kInvalid);
  EXPECT_EQ(agent_->WriteFile("relative/x", "x", 0600).code(), Code::kInvalid);
  EXPECT_EQ(agent_->WriteFile(root_.string(), "x", 0600).code(), Code::kInvalid);
  EXPECT_EQ(agent_->WriteFile((root_ / "m").string(), "x", 04755).code(), Code::kInvalid);
  // A directory of the release that is a symlink out of the data directory (a repository
  // can carry one) is not written through.
  fs::create_directory_symlink(outside, root_ / "link");
  EXPECT_EQ(agent_->WriteFile((root_ / "link/secret").string(), "x", 0600).code(), Code::kInvalid);
  EXPECT_EQ(agent_->WriteFile((root_ / "link/sub/secret").string(), "x", 0600).code(),
            Code::kInvalid);
  EXPECT_TRUE(fs::is_empty(outside));
  fs::remove_all(outside);
}

// The same calls through the protocol: NodeHub (control plane, root /cp) ↔ in-process node
// whose local agent works on its own root.
class WireWriteFileTest : public WriteFileTest {
 protected:
  void SetUp() override {
    WriteFileTest::SetUp();
    NodeHubOptions o;
    o.root = "/cp";
    o.heartbeat = 50ms;
    hub_ = std::make_unique<NodeHub>(SystemClock::Instance(), o);
    hub_->Start();
    InProcessNodeOptions n;
    n.name = "n1";
    n.data_dir = root_.string();
    n.askpass = (root_ / "askpass.sh").string();
    node_ = InProcessNode::Start(*hub_, n);
    ASSERT_TRUE(node_->WaitWelcomed(5s));
  }
  void TearDown() override {
    node_.reset();
    hub_->Stop();
    WriteFileTest::TearDown();
  }
  Agent& remote() { return hub_->AgentFor("n1"); }

  std::unique_ptr<NodeHub> hub_;
  std::unique_ptr<InProcessNode> node_;
};

TEST_F(WireWriteFileTest, ASmallFileTravelsInOneOp) {
  ASSERT_TRUE(remote().WriteFile("/cp/releases/app/1/.env", "A=1\nB=\xff\n", 0600).ok());
  EXPECT_EQ(Slurp(root_ / "releases/app/1/.env"), "A=1\nB=\xff\n");
  EXPECT_EQ(ModeOf(root_ / "releases/app/1/.env"), 0600);
}

TEST_F(WireWriteFileTest, ALargeBinaryFileTravelsInPartsAndLeavesNoStaging) {
  std::string big = Binary(3 * wire::kWritePartBytes + 12345);
  ASSERT_TRUE(remote().WriteFile("/cp/releases/app/1/blob.bin", big, 0644).ok());
  EXPECT_EQ(Slurp(root_ / "releases/app/1/blob.bin"), big);
  EXPECT_EQ(ModeOf(root_ / "releases/app/1/blob.bin"), 0644);
  EXPECT_EQ(Entries(root_ / "releases/app/1"), std::vector<std::string>{"blob.bin"});
  std::string max = Binary(kMaxWriteFileBytes);
  ASSERT_TRUE(remote().WriteFile("/cp/max.bin", max, 0600).ok());
  EXPECT_EQ(Slurp(root_ / "max.bin"), max);
}

TEST_F(WireWriteFileTest, LimitsAndPathsAreCheckedOnBothSides) {
  EXPECT_EQ(remote().WriteFile("/cp/x", std::string(kMaxWriteFileBytes + 1, 'a'), 0600).code(),
            Code::kInvalid);
  EXPECT_EQ(remote().WriteFile("/etc/x", "x", 0600).code(), Code::kInvalid);
  EXPECT_EQ(remote().WriteFile("/cp", "x", 0600).code(), Code::kInvalid);
  EXPECT_EQ(remote().WriteFile("/cp/x", "x", 01777).code(), Code::kInvalid);
  EXPECT_FALSE(fs::exists(root_ / "x"));
}

// What a node does with write_file ops it gets, malformed or out of order.
TEST_F(WriteFileTest, TheOpRefusesEscapesAndPartsOutOfOrder) {
  OpContext ctx;
  ctx.emit = [](protocol::EventKind, json) {};
  ctx.root = root_.string();
  auto run = [&](json args) { return RunOpKind(*agent_, "write_file", args, ctx); };
  json escape = wire::WriteFileArgs("../x", "x", 0600, "").front();
  EXPECT_EQ(run(escape).status().code(), Code::kInvalid);
  json absolute = wire::WriteFileArgs("/etc/x", "x", 0600, "").front();
  EXPECT_EQ(run(absolute).status().code(), Code::kInvalid);
  json not_base64 = {{"path", "x"}, {"mode", 0600}, {"data", "***"}};
  EXPECT_EQ(run(not_base64).status().code(), Code::kInvalid);

  auto parts = wire::WriteFileArgs("f.bin", Binary(2 * wire::kWritePartBytes + 1), 0600, "up1");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(run(parts[1]).status().code(), Code::kInvalid);  // part 0 never came
  ASSERT_TRUE(run(parts[0]).ok());
  EXPECT_EQ(run(parts[2]).status().code(), Code::kInvalid);  // part 1 skipped
  ASSERT_TRUE(run(parts[1]).ok());
  ASSERT_TRUE(run(parts[2]).ok());
  EXPECT_EQ(Slurp(root_ / "f.bin"), Binary(2 * wire::kWritePartBytes + 1));
  EXPECT_EQ(Entries(root_), std::vector<std::string>{"f.bin"});
  json bad_id = parts[0];
  bad_id["upload"] = "../../x";
  EXPECT_EQ(run(bad_id).status().code(), Code::kInvalid);
}

}  // namespace
}  // namespace slipway
