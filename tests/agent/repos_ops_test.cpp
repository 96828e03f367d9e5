// list_repos and list_branches: their wire forms stay inside one frame, and the calls travel
// as ops from the hub to an in-process node running a real LocalAgent on a real repository.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "agent/hub.h"
#include "agent/in_process.h"
#include "agent/wire.h"
#include "core/clock.h"
#include "core/protocol.h"

namespace slipway {
namespace {
using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

git::BranchList Branches(std::size_t n, std::size_t name_bytes) {
  git::BranchList list;
  for (std::size_t i = 0; i < n; ++i) {
    std::string name = "b" + std::to_string(i);
    name.resize(std::max(name_bytes, name.size()), 'x');
    list.branches.push_back({name, std::string(40, 'a')});
  }
  return list;
}

// Whether `value` travels as the value of one result frame.
bool FitsOneFrame(const json& value) {
  protocol::OpResult r{"t7.1", true, "", value};
  return protocol::Decode(protocol::Encode(r)).ok();
}

TEST(ReposWire, TenThousandBranchesOfUsualNamesFitOneFrame) {
  json v = wire::BranchesToWire(Branches(git::kMaxBranches, 40));
  EXPECT_FALSE(v.at("truncated").get<bool>());
  EXPECT_EQ(v.at("branches").size(), git::kMaxBranches);
  EXPECT_TRUE(FitsOneFrame(v));
  git::BranchList back = wire::BranchesFromWire(v);
  ASSERT_EQ(back.branches.size(), git::kMaxBranches);
  EXPECT_EQ(back.branches[17].name, Branches(18, 40).branches[17].name);
  EXPECT_EQ(back.branches[17].commit, std::string(40, 'a'));
}

TEST(ReposWire, LongNamesAreCutAtTheFrameBudget) {
  json v = wire::BranchesToWire(Branches(git::kMaxBranches, 250));
  EXPECT_TRUE(v.at("truncated").get<bool>());
  EXPECT_LT(v.at("branches").size(), git::kMaxBranches);
  EXPECT_GT(v.at("branches").size(), 3000u);
  EXPECT_LE(v.dump().size(), wire::kMaxListBytes + 64);
  EXPECT_TRUE(FitsOneFrame(v));
  git::BranchList truncated = Branches(3, 10);
  truncated.truncated = true;  // already cut by git::ListBranches: stays marked
  EXPECT_TRUE(wire::BranchesToWire(truncated).at("truncated").get<bool>());
}

TEST(ReposWire, TheLongestRepositoryListFitsOneFrame) {
  std::vector<RepoView> repos;
  for (int i = 0; i < 256; ++i)
    repos.push_back({std::string(63, 'r'), "url", "https://h/" + std::string(2030, '"')});
  json v = wire::ReposToWire(repos);
  EXPECT_TRUE(v.at("truncated").get<bool>());
  EXPECT_TRUE(FitsOneFrame(v));
  repos.resize(3);
  v = wire::ReposToWire(repos);
  EXPECT_FALSE(v.at("truncated").get<bool>());
  EXPECT_EQ(wire::ReposFromWire(v).size(), 3u);
}

std::string RunGit(const std::vector<std::string>& args) {
  os::CommandSpec spec;
  spec.argv = {"git", "-c", "user.name=t", "-c", "user.email=t@example.com"};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {{"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_CONFIG_GLOBAL", "/dev/null"}};
  std::string out;
  auto r = os::Run(spec, [&out](os::OutputStream s, std::string_view line) {
    if (s == os::OutputStream::kStdout) out = line;
  });
  EXPECT_TRUE(r.ok() && r->exit_code == 0) << args[0];
  return out;
}

class ReposOverTheProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("slipway-repos-ops-" + std::to_string(getpid()))).string();
    fs::create_directories(dir_ + "/data");
    std::string work = dir_ + "/shop";
    RunGit({"init", "--quiet", "-b", "main", "--", work});
    RunGit({"-C", work, "commit", "--quiet", "--allow-empty", "-m", "v1"});
    RunGit({"-C", work, "branch", "release/1"});
    head_ = RunGit({"-C", work, "rev-parse", "HEAD"});
    RepoTable repos = {
        {"remote", RepoKind::kUrl, "http://deploy:pw-never-shown@127.0.0.1:1/r.git", 2, 9},
        {"shop", RepoKind::kPath, work, 1, 7}};
    NodeHubOptions o;
    o.root = dir_ + "/data";
    o.heartbeat = 50ms;
    o.silence = 2s;
    hub_ = std::make_unique<NodeHub>(SystemClock::Instance(), o);
    hub_->Start();
    InProcessNodeOptions n{"local", {}, o.root, dir_ + "/data/askpass.sh", nullptr, repos};
    node_ = InProcessNode::Start(*hub_, n);
    ASSERT_TRUE(node_->WaitWelcomed(5s));
  }
  void TearDown() override {
    node_.reset();
    hub_->Stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_, head_;
  std::unique_ptr<NodeHub> hub_;
  std::unique_ptr<InProcessNode> node_;
};

TEST_F(ReposOverTheProtocol, TheHelloNamesTheRepositories) {
  auto v = hub_->Get("local");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->capabilities.repos, (std::vector<std::string>{"remote", "shop"}));
}

TEST_F(ReposOverTheProtocol, ListReposShowsLocationsRedacted) {
  auto repos = hub_->AgentFor("local").ListRepos();
  ASSERT_TRUE(repos.ok()) << repos.status().message();
  ASSERT_EQ(repos->size(), 2u);
  EXPECT_EQ((*repos)[0].name, "remote");
  EXPECT_EQ((*repos)[0].kind, "url");
  EXPECT_EQ((*repos)[0].location, "http://deploy:***@127.0.0.1:1/r.git");
  EXPECT_EQ((*repos)[1].kind, "path");
  EXPECT_EQ((*repos)[1].location, dir_ + "/shop");
}

TEST_F(ReposOverTheProtocol, ListBranchesOfAPathRepository) {
  auto listed = hub_->AgentFor("local").ListBranches("shop", "", "");
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  ASSERT_EQ(listed->branches.size(), 2u);
  EXPECT_EQ(listed->branches[0].name, "main");
  EXPECT_EQ(listed->branches[0].commit, head_);
  EXPECT_EQ(listed->branches[1].name, "release/1");
  EXPECT_FALSE(listed->truncated);
}

TEST_F(ReposOverTheProtocol, UnknownRepositoriesAndUnreachableHostsKeepTheirCode) {
  auto none = hub_->AgentFor("local").ListBranches("nope", "", "");
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  auto down = hub_->AgentFor("local").ListBranches("remote", "alice", "caller-secret");
  EXPECT_EQ(down.status().code(), Code::kUnavailable);
  EXPECT_EQ(down.status().message().find("pw-never-shown"), std::string::npos);
  EXPECT_EQ(down.status().message().find("caller-secret"), std::string::npos);
}

}  // namespace
}  // namespace slipway
