// repos.yaml: a good file, then every error with its file:line:column, the bounds (size,
// entries, alias expansion, nesting) and the repository check of LoadReposFile.
#include "manifest/repos_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

namespace slipway {
namespace {
namespace fs = std::filesystem;

std::string ErrorOf(const std::string& text) {
  auto r = ParseReposFile(text, "repos.yaml");
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Code::kInvalid);
  return r.status().message();
}

// Whether `message` starts with "repos.yaml:<line>:<column>: " and contains `needle`.
void ExpectError(const std::string& text, const std::string& where, const std::string& needle) {
  std::string m = ErrorOf(text);
  EXPECT_EQ(m.rfind("repos.yaml:" + where + ": ", 0), 0u) << m;
  EXPECT_NE(m.find(needle), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(ReposFile, ParsesPathsAndUrlsSortedByName) {
  auto t = ParseReposFile(
      "# repositories on this node\n"
      "shop: /srv/git/shop.git\n"
      "api: https://git.example.com/team/api.git\n"
      "docs: \"https://deploy:s3cret@git.example.com/docs.git\"\n",
      "repos.yaml");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ(RepoNames(*t), (std::vector<std::string>{"api", "docs", "shop"}));
  const RepoEntry& api = (*t)[0];
  EXPECT_EQ(api.kind, RepoKind::kUrl);
  EXPECT_EQ(api.location, "https://git.example.com/team/api.git");
  EXPECT_EQ((std::pair{api.line, api.column}), (std::pair{3, 6}));
  const RepoEntry& docs = (*t)[1];
  EXPECT_EQ(docs.location, "https://deploy:s3cret@git.example.com/docs.git");
  EXPECT_EQ(docs.Redacted(), "https://deploy:***@git.example.com/docs.git");
  const RepoEntry& shop = (*t)[2];
  EXPECT_EQ(shop.kind, RepoKind::kPath);
  EXPECT_EQ(shop.Redacted(), "/srv/git/shop.git");
  EXPECT_EQ((std::pair{shop.line, shop.column}), (std::pair{2, 7}));
  EXPECT_STREQ(ToString(RepoKind::kPath), "path");
  EXPECT_STREQ(ToString(RepoKind::kUrl), "url");
}

TEST(ReposFile, AnEmptyDocumentHasNoRepositories) {
  for (const char* text : {"", "# nothing here yet\n", "~\n", "---\n"}) {
    auto t = ParseReposFile(text, "repos.yaml");
    ASSERT_TRUE(t.ok()) << text << ": " << t.status().message();
    EXPECT_TRUE(t->empty());
  }
}

TEST(ReposFile, ReportsEachMistakeWhereItIs) {
  ExpectError("- /srv/a.git\n", "1:1", "expected a mapping");
  ExpectError("shop: /srv/a.git\nShop: /srv/b.git\n", "2:1", "repository name 'Shop'");
  ExpectError("shop: /srv/a.git\n9lives: /srv/b.git\n", "2:1", "starting with a letter");
  ExpectError("shop: /srv/a.git\n[a, b]: /srv/b.git\n", "2:1", "expected a repository name");
  ExpectError("shop:\n  - /srv/a.git\n", "2:3",
              "shop: expected an absolute path or a repository URL");
  ExpectError("shop: {path: /srv/a.git}\n", "1:7", "expected an absolute path");
  ExpectError("shop: ''\n", "1:7", "expected an absolute path");
  ExpectError("shop: /srv/a.git\napi: srv/api.git\n", "2:6", "api: repository must be");
  ExpectError("api: ftp://example.com/r.git\n", "1:6", "scheme must be");
  ExpectError("api: 'ext::sh -c touch% /tmp/x'\n", "1:6", "not allowed");
  ExpectError("api: -uhttps://example.com/r.git\n", "1:6", "must not begin with '-'");
  ExpectError("api: git@github.com:o/r.git\n", "1:6", "scp-like");
  ExpectError("shop: /srv/a.git\nshop: /srv/b.git\n", "2:1", "duplicate repository name 'shop'");
  ExpectError("shop: /srv/\xff.git\n", "1:7", "not valid UTF-8");
  std::string m = ErrorOf("shop: /srv/a.git\napi: [/srv/b.git\n");
  EXPECT_EQ(m.rfind("repos.yaml:", 0), 0u) << m;
  EXPECT_EQ(m.find("repos.yaml:1:"), std::string::npos) << m;
}

TEST(ReposFile, ANameMayNotBeLongerThanAnAppName) {
  std::string ok(63, 'a'), too_long(64, 'a');
  EXPECT_TRUE(ParseReposFile(ok + ": /srv/a.git\n", "repos.yaml").ok());
  ExpectError(too_long + ": /srv/a.git\n", "1:1", "(max 63)");
  EXPECT_TRUE(IsRepoName("shop-2"));
  for (const char* bad : {"", "-shop", "2shop", "sh op", "shop_2", "shöp", "shop/x"})
    EXPECT_FALSE(IsRepoName(bad)) << bad;
}

TEST(ReposFile, MessagesNeverRepeatACredential) {
  std::string m = ErrorOf("api: ftp://deploy:hunter2-secret@example.com/r.git\n");
  EXPECT_EQ(m.find("hunter2"), std::string::npos) << m;
  m = ErrorOf("api: https://deploy:hunter2-secret@exa mple.com/r.git\n");
  EXPECT_EQ(m.find("hunter2"), std::string::npos) << m;
}

TEST(ReposFile, AtMost256Repositories) {
  std::string text;
  for (int i = 0; i < 256; ++i) text += "r" + std::to_string(i) + ": /srv/r.git\n";
  auto t = ParseReposFile(text, "repos.yaml");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->size(), repos_limits::kEntries);
  ExpectError(text + "one-more: /srv/r.git\n", "257:1", "too many repositories (the limit is 256)");
}

TEST(ReposFile, RefusesAFileOverTheSizeLimitBeforeParsing) {
  std::string text = "shop: /srv/a.git\n# " + std::string(repos_limits::kFileBytes, 'x') + "\n";
  ExpectError(text, "1:1", "the limit is 262144 bytes");
}

TEST(ReposFile, AnAliasBombIsRefusedQuickly) {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    text += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) text += (i ? ", *" : "*") + prev;
    text += "]\n";
  }
  auto started = std::chrono::steady_clock::now();
  std::string m = ErrorOf(text);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_EQ(m.rfind("repos.yaml:", 0), 0u) << m;
  EXPECT_NE(m.find("YAML aliases count once per use"), std::string::npos) << m;
}

TEST(ReposFile, DeepNestingIsRefused) {
  std::string text = "shop: " + std::string(40, '[') + std::string(40, ']') + "\n";
  std::string m = ErrorOf(text);
  EXPECT_NE(m.find("deeper than 16 levels"), std::string::npos) << m;
  EXPECT_EQ(m.rfind("repos.yaml:1:", 0), 0u) << m;
}

class ReposFileOnDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("slipway-repos-" + std::to_string(getpid()));
    fs::create_directories(dir_ / "bare.git" / "objects");
    std::ofstream(dir_ / "bare.git" / "HEAD") << "ref: refs/heads/main\n";
    fs::create_directories(dir_ / "work" / ".git");
    fs::create_directories(dir_ / "plain");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Write(const std::string& text) {
    std::string path = (dir_ / "repos.yaml").string();
    std::ofstream(path) << text;
    return path;
  }
  fs::path dir_;
};

TEST_F(ReposFileOnDisk, LoadsBareAndWorkTreeRepositories) {
  std::string path =
      Write("bare: " + (dir_ / "bare.git").string() + "\nwork: " + (dir_ / "work").string() +
            "\nremote: https://example.com/r.git\n");
  auto t = LoadReposFile(path);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(RepoNames(*t), (std::vector<std::string>{"bare", "remote", "work"}));
}

TEST_F(ReposFileOnDisk, APathThatIsNotARepositoryIsNamedWithItsPosition) {
  std::string path = Write("bare: " + (dir_ / "bare.git").string() +
                           "\nplain: " + (dir_ / "plain").string() + "\n");
  auto t = LoadReposFile(path);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), path + ":2:8: plain: " + (dir_ / "plain").string() +
                                      " is not a git repository on this node");
  path = Write("gone: " + (dir_ / "missing").string() + "\n");
  EXPECT_NE(LoadReposFile(path).status().message().find(path + ":1:7: gone: "), std::string::npos);
}

TEST_F(ReposFileOnDisk, AMissingOrHugeFileIsRefused) {
  auto t = LoadReposFile((dir_ / "nope.yaml").string());
  EXPECT_EQ(t.status().code(), Code::kNotFound);
  EXPECT_EQ(LoadReposFile(dir_.string()).status().code(), Code::kNotFound);  // a directory
  std::string path = Write(std::string(repos_limits::kFileBytes + 1, '#'));
  EXPECT_EQ(LoadReposFile(path).status().code(), Code::kInvalid);
  EXPECT_NE(LoadReposFile(path).status().message().find(path + ":1:1: "), std::string::npos);
}

}  // namespace
}  // namespace slipway
