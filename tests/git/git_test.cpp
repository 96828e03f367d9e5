// The git wrapper: pure checks (URLs, refs, redaction) table-driven, then the real git CLI
// on temporary repositories, including a local HTTP server that refuses every password,
// a PATH shim that records git's command line, and global git configs that try to turn a
// harmless URL into a command.
#include "git/git.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <thread>

namespace slipway::git {
namespace {
namespace fs = std::filesystem;
using std::chrono::seconds;

// ---- ValidateRepoUrl ----

TEST(ValidateRepoUrl, AcceptsSupportedForms) {
  const char* const kAccepted[] = {
      "https://github.com/o/r.git",
      "HTTPS://github.com/o/r.git",
      "http://127.0.0.1:3000/o/r.git",
      "https://user:pass@h/r.git",
      "https://user:p@ss@h/r.git",
      "https://user:p%2Fss@h/r.git",
      "https://TOKEN@h/r.git",
      "https://[::1]:8443/r.git",
      "https://host",
      "ssh://git@github.com/o/r.git",
      "ssh://git@host:2222/~/r.git",
      "git://host/r.git",
      "file:///srv/r.git",
      "file://localhost/srv/r.git",
      "/srv/git/r.git",
      "/srv/git/odd:name.git",
  };
  for (const char* url : kAccepted) {
    EXPECT_TRUE(ValidateRepoUrl(url).ok()) << url << ": " << ValidateRepoUrl(url).message();
  }
}

TEST(ValidateRepoUrl, RejectsDangerousAndUnsupportedForms) {
  struct Case {
    std::string url;
    std::string message_part;
  };
  const Case kRejected[] = {
      {"", "empty"},
      {"https://h/" + std::string(2040, 'a'), "longer than 2048"},
      {"--upload-pack=touch /tmp/x; false", "begin with '-'"},
      {"-oProxyCommand=x", "begin with '-'"},
      {"ext::sh -c touch% /tmp/x", "ext:: and fd::"},
      {"ext::sh", "ext:: and fd::"},
      {"fd::17", "ext:: and fd::"},
      {"https::h/r", "ext:: and fd::"},
      {"https://h/r git", "whitespace"},
      {"https://h/r.git\n", "whitespace"},
      {"https://h/\tr", "whitespace"},
      {std::string("https://h/r\0x", 13), "control"},
      {"https://h/r\x7f", "control"},
      {"https://h/r\x1b", "control"},
      {"git@github.com:o/r.git", "ssh://user@host/path"},
      {"github.com:o/r.git", "ssh://user@host/path"},
      {"relative/path.git", "absolute path"},
      {"ftp://h/r.git", "scheme"},
      {"ssh+git://h/r.git", "scheme"},
      {"javascript://x", "scheme"},
      {"https:///r.git", "empty host"},
      {"https://user@/r.git", "empty host"},
      {"https://:443/r.git", "empty host"},
      {"file://user@/srv/r.git", "empty host"},
      {"ssh://-oProxyCommand=x/r", "host must not begin with '-'"},
      {"ssh://git@-oProxyCommand=x/r", "host must not begin with '-'"},
      {"https://[-x]/r", "host must not begin with '-'"},
      {"ssh://-oProxyCommand=x@host/r", "user name must not begin with '-'"},
      {"ssh://%2DoProxyCommand=x@host/r", "user name must not begin with '-'"},
      {"ssh://%2DoProxyCommand=x/r", "'%'"},
      {"https://[::1/r", "']'"},
      {"https://u:pa/ss@host/r.git", "%2F"},
      {"https://host:-1/r", "port"},
  };
  for (const auto& c : kRejected) {
    Status s = ValidateRepoUrl(c.url);
    EXPECT_EQ(s.code(), Code::kInvalid) << c.url;
    EXPECT_NE(s.message().find(c.message_part), std::string::npos) << c.url << ": " << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << c.url;
  }
}

TEST(ValidateRepoUrl, MessageNeverRepeatsTheUrl) {
  Status s = ValidateRepoUrl("https://user:hunter2@-host/r.git");
  EXPECT_EQ(s.code(), Code::kInvalid);
  EXPECT_EQ(s.message().find("hunter2"), std::string::npos) << s.message();
  EXPECT_EQ(ValidateRepoUrl("https://u:" + std::string(3000, 'p') + "@h/r").message().find("pp"),
            std::string::npos);
}

// ---- ValidateRef ----

TEST(ValidateRef, AcceptsBranchTagAndCommitNames) {
  const std::string kAccepted[] = {
      "main",
      "feature/login",
      "v1.2.3",
      "release-2024.01_rc",
      "refs/heads/main",
      "HEAD",
      "a",
      "user@host",
      "x.locked",
      "abcd",
      "0123456789abcdef0123456789abcdef01234567",
      std::string(255, 'a'),
  };
  for (const auto& ref : kAccepted) {
    EXPECT_TRUE(ValidateRef(ref).ok()) << ref << ": " << ValidateRef(ref).message();
  }
}

TEST(ValidateRef, RejectsEachCheckRefFormatRuleByName) {
  struct Case {
    std::string ref;
    std::string message_part;
  };
  const Case kRejected[] = {
      {"", "empty"},
      {std::string(256, 'a'), "255"},
      {"-x", "begin with '-'"},
      {"--output=/tmp/x", "begin with '-'"},
      {"@", "'@'"},
      {"a..b", "'..'"},
      {"a b", "space"},
      {"a\tb", "control"},
      {std::string("a\0b", 3), "control"},
      {"a\x7f", "control"},
      {"a~1", "'~'"},
      {"a^", "'^'"},
      {"a:b", "':'"},
      {"a?", "'?'"},
      {"a*", "'*'"},
      {"a[0]", "'['"},
      {"a\\b", "'\\'"},
      {"/a", "begin with '/'"},
      {"a/", "end with '/'"},
      {"a.", "end with '.'"},
      {"a.lock", "'.lock'"},
      {"a.lock/b", "'.lock'"},
      {".a", "begin with '.'"},
      {"a/.b", "begin with '.'"},
      {"a@{1}", "'@{'"},
      {"a//b", "'//'"},
  };
  for (const auto& c : kRejected) {
    Status s = ValidateRef(c.ref);
    EXPECT_EQ(s.code(), Code::kInvalid) << c.ref;
    EXPECT_NE(s.message().find(c.message_part), std::string::npos) << c.ref << ": " << s.message();
  }
}

// ---- ParseRemote, RedactUrl, RedactSecrets ----

TEST(ParseRemote, SplitsEveryUrlForm) {
  struct Case {
    std::string in, url, username, password;
  };
  const Case kCases[] = {
      {"https://github.com/o/r.git", "https://github.com/o/r.git", "", ""},
      {"https://user:pass@h/r.git", "https://h/r.git", "user", "pass"},
      {"https://user:p@ss@host/x.git", "https://host/x.git", "user", "p@ss"},
      {"https://user:p%40ss@host/x.git", "https://host/x.git", "user", "p@ss"},
      {"https://us%65r:a%2Fb%3A@host/x.git", "https://host/x.git", "user", "a/b:"},
      {"https://u:100%@host/x.git", "https://host/x.git", "u", "100%"},
      {"https://TOKEN@h/r.git", "https://h/r.git", "TOKEN", ""},
      {"https://:tok@h/r.git", "https://h/r.git", "", "tok"},
      {"HTTPS://u:p@Host/r.git", "https://Host/r.git", "u", "p"},
      {"http://u:p@127.0.0.1:3000", "http://127.0.0.1:3000", "u", "p"},
      {"https://host/path@x/r.git", "https://host/path@x/r.git", "", ""},
      {"ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git", "git", ""},
      {"ssh://git:pw@host:22/r.git", "ssh://git@host:22/r.git", "git", "pw"},
      {"git://host/r.git", "git://host/r.git", "", ""},
      {"file:///srv/r.git", "file:///srv/r.git", "", ""},
      {"/srv/git/r.git", "/srv/git/r.git", "", ""},
      {"git@github.com:o/r.git", "git@github.com:o/r.git", "", ""},
  };
  for (const auto& c : kCases) {
    Remote r = ParseRemote(c.in);
    EXPECT_EQ(r.url, c.url) << c.in;
    EXPECT_EQ(r.username, c.username) << c.in;
    EXPECT_EQ(r.password, c.password) << c.in;
  }
}

TEST(RedactUrl, HidesTheSecretOfEveryUrlForm) {
  struct Case {
    std::string in, out;
  };
  const Case kCases[] = {
      {"https://user:pass@h/r.git", "https://user:***@h/r.git"},
      {"https://user:p@ss@host/x.git", "https://user:***@host/x.git"},
      {"https://user:p%40ss@host/x.git", "https://user:***@host/x.git"},
      {"https://user:pass@h", "https://user:***@h"},
      {"https://TOKEN@host/r.git", "https://***@host/r.git"},
      {"http://TOKEN@host/r.git", "http://***@host/r.git"},
      {"HTTPS://TOKEN@host/r.git", "HTTPS://***@host/r.git"},
      {"https://TOKEN:x-oauth-basic@github.com/o/r.git", "https://***:***@github.com/o/r.git"},
      {"ssh://git@host/r.git", "ssh://git@host/r.git"},
      {"git://git@host/r.git", "git://git@host/r.git"},
      {"ssh://git:pw@host/r.git", "ssh://git:***@host/r.git"},
      {"git://host/r.git", "git://host/r.git"},
      {"file:///srv/r.git", "file:///srv/r.git"},
      {"/srv/git/r.git", "/srv/git/r.git"},
      {"git@github.com:o/r.git", "git@github.com:o/r.git"},
      {"https://h/path@x/r.git", "https://h/path@x/r.git"},
      {"--upload-pack=touch /tmp/x; false", "--upload-pack=touch /tmp/x; false"},
      {"https://a b:pw@h/r", "https://a b:***@h/r"},
      {"https://h/?next=https://u:pw@h2/", "https://h/?***"},
      {"https://u:pw@h/r.git?private_token=KKK#frag", "https://u:***@h/r.git?***"},
      {"https://h/r.git#frag", "https://h/r.git#***"},
  };
  for (const auto& c : kCases) EXPECT_EQ(RedactUrl(c.in), c.out) << c.in;
}

TEST(RedactSecrets, RedactsEveryUrlInASentence) {
  EXPECT_EQ(RedactSecrets("fetch https://a:b@h1/x failed; retry ssh://git@h2/y or "
                          "http://TOK@h3 then 'https://u:p@ss@h4/z'. Done"),
            "fetch https://a:***@h1/x failed; retry ssh://git@h2/y or "
            "http://***@h3 then 'https://u:***@h4/z'. Done");
  EXPECT_EQ(RedactSecrets("fatal: unable to access 'https://u:pw@host/r.git/': 403\n"
                          "repo=https://host/r.git user=me@example.com"),
            "fatal: unable to access 'https://u:***@host/r.git/': 403\n"
            "repo=https://host/r.git user=me@example.com");
}

TEST(RedactSecrets, LeavesTextWithoutCredentialsUntouched) {
  const std::string kUntouched[] = {
      "",
      "plain text, mail root@host, scp git@h:o/r.git",
      "https://host/r.git and ssh://git@host/r.git",
      "a:b@c with no scheme separator",
  };
  for (const auto& text : kUntouched) EXPECT_EQ(RedactSecrets(text), text);
}

TEST(RedactSecrets, SurvivesDegenerateInput) {
  struct Case {
    std::string in, out;
  };
  const Case kCases[] = {
      {"://", "://"},
      {"://@", "://***@"},
      {"a://b@", "a://***@"},
      {"https://", "https://"},
      {"x://u:p@y://v:w@z/", "x://u:***@y://v:***@z/"},
      {"https://a://b@c", "https://a://***@c"},
      {"https://h\n@x", "https://h\n@x"},
  };
  for (const auto& c : kCases) EXPECT_EQ(RedactSecrets(c.in), c.out) << c.in;
}

TEST(RedactSecrets, ReplacesLiteralSecretsLongestFirst) {
  EXPECT_EQ(RedactSecrets("token abcdef and abc", {"abc", "abcdef", ""}), "token *** and ***");
  EXPECT_EQ(RedactSecrets("https://u:pw@h/x said pw", {"pw"}), "https://u:***@h/x said ***");
  EXPECT_EQ(RedactSecrets("nothing here", {}), "nothing here");
}

TEST(WriteAskpass, WritesAnExecutableHelperAndIsIdempotent) {
  char tmpl[] = "/tmp/slipway-askpass-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/sub/askpass";
  ASSERT_TRUE(WriteAskpass(path).ok());
  ASSERT_TRUE(WriteAskpass(path).ok());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(
      std::distance(fs::directory_iterator(fs::path(path).parent_path()), fs::directory_iterator()),
      1);
  fs::remove_all(tmpl);
}

// ---- Real git ----

// Answers every request with `status` and records the request heads.
class FakeHttpServer {
 public:
  explicit FakeHttpServer(std::string status) : status_(std::move(status)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), len);
    listen(fd_, 16);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeHttpServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string Url(const std::string& userinfo = "") const {
    return "http://" + userinfo + "127.0.0.1:" + std::to_string(port_) + "/r.git";
  }
  std::string requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      Handle(c);
      close(c);
    }
  }
  void Handle(int c) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0) break;
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    {
      std::lock_guard lock(mu_);
      requests_ += head;
    }
    std::string response = "HTTP/1.1 " + status_ +
                           "\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n"
                           "Connection: close\r\n\r\n";
    (void)!send(c, response.data(), response.size(), MSG_NOSIGNAL);
  }

  std::string status_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string requests_;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A bare origin with one commit on main, tagged v1, in a fresh temporary directory.
class GitRepo : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* path = std::getenv("PATH")) path_ = path;
    char tmpl[] = "/tmp/slipway-git-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    origin_ = dir_ + "/origin.git";
    askpass_ = dir_ + "/bin/askpass";
    std::string work = dir_ + "/work";
    RunGitOk({"init", "--quiet", "--bare", "--", origin_});
    RunGitOk({"init", "--quiet", "-b", "main", "--", work});
    std::ofstream(work + "/hello.txt") << "v1\n";
    RunGitOk({"-C", work, "add", "hello.txt"});
    RunGitOk({"-C", work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit",
              "--quiet", "-m", "v1"});
    RunGitOk({"-C", work, "tag", "v1"});
    RunGitOk({"-C", work, "push", "--quiet", origin_, "main", "v1"});
    head_ = RunGitOk({"-C", work, "rev-parse", "HEAD"});
    ASSERT_EQ(head_.size(), 40u);
  }
  void TearDown() override {
    setenv("PATH", path_.c_str(), 1);
    unsetenv("GIT_CONFIG_GLOBAL");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string RunGitOk(std::vector<std::string> args) {
    os::CommandSpec spec;
    spec.argv = {"git"};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {{"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_CONFIG_GLOBAL", "/dev/null"}};
    std::string out;
    auto result = os::Run(spec, [&out](os::OutputStream s, std::string_view line) {
      if (s == os::OutputStream::kStdout) out = line;
    });
    EXPECT_TRUE(result.ok() && result->exit_code == 0) << args[0];
    return out;
  }

  FetchOptions Options(const std::string& name) const {
    FetchOptions o;
    o.cache_dir = dir_ + "/cache/" + name + ".git";
    o.askpass_path = askpass_;
    o.timeout = seconds(60);
    return o;
  }

  // A global git config for the git processes under test.
  void UseGlobalConfig(const std::string& text) {
    std::ofstream(dir_ + "/gitconfig") << text;
    setenv("GIT_CONFIG_GLOBAL", (dir_ + "/gitconfig").c_str(), 1);
  }

  // Puts a `git` first in PATH that appends its arguments and environment to `log`.
  void RecordGitCommandLines(const std::string& log) {
    fs::create_directories(dir_ + "/shim");
    std::ofstream(dir_ + "/shim/git")
        << "#!/bin/sh\n{ for a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
        << "  printf 'GIT_ALLOW_PROTOCOL=%s\\n' \"$GIT_ALLOW_PROTOCOL\"\n"
        << "  printf 'GIT_SSH_COMMAND=%s\\n' \"$GIT_SSH_COMMAND\"; } >> '" << log << "'\n"
        << "PATH='" << path_ << "' exec git \"$@\"\n";
    fs::permissions(dir_ + "/shim/git", fs::perms::owner_all);
    setenv("PATH", (dir_ + "/shim:" + path_).c_str(), 1);
  }

  std::string dir_, origin_, askpass_, head_, path_;
  std::vector<std::string> lines_;
  os::LineSink sink_ = [this](os::OutputStream, std::string_view line) {
    lines_.emplace_back(line);
  };
};

TEST_F(GitRepo, FetchFromFileUrlMirrorsBranchesAndTags) {
  FetchOptions o = Options("file");
  ASSERT_TRUE(Fetch(ParseRemote("file://" + origin_), o, sink_).ok());
  EXPECT_EQ(Resolve(o.cache_dir, "main").value(), head_);
  EXPECT_EQ(Resolve(o.cache_dir, "v1").value(), head_);
  ASSERT_TRUE(Fetch(ParseRemote("file://" + origin_), o, sink_).ok());  // again, into the mirror
}

TEST_F(GitRepo, FetchFromAbsolutePath) {
  FetchOptions o = Options("path");
  Status s = Fetch(ParseRemote(origin_), o, sink_);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Resolve(o.cache_dir, "main").value(), head_);
}

TEST_F(GitRepo, FetchRefusesMaliciousUrlsBeforeRunningAnything) {
  std::string marker = dir_ + "/marker";
  const std::string kUrls[] = {
      "--upload-pack=touch " + marker + "; false",
      "--upload-pack=touch " + marker,
      "ext::sh -c touch% " + marker,
      "ext::sh%20-c%20touch%25%20" + marker,
      "fd::3",
      "-oProxyCommand=touch " + marker,
      "ssh://-oProxyCommand=touch%20" + marker + "/r",
      "ssh://-oProxyCommand=x/r",
      "ssh://git@-oProxyCommand=x/r",
      "git@github.com:o/r.git",
  };
  int n = 0;
  for (const auto& url : kUrls) {
    FetchOptions o = Options("evil" + std::to_string(n++));
    EXPECT_EQ(Fetch(Remote{url, "", ""}, o, sink_).code(), Code::kInvalid) << url;
    EXPECT_EQ(Fetch(ParseRemote(url), o, sink_).code(), Code::kInvalid) << url;
    EXPECT_FALSE(fs::exists(o.cache_dir)) << url;
    EXPECT_FALSE(fs::exists(marker)) << url;
  }
}

TEST_F(GitRepo, TransportsStayOffWhenConfigRewritesAUrlIntoACommand) {
  std::string marker = dir_ + "/marker";
  // A config that re-enables every transport and rewrites a harmless URL into a command.
  UseGlobalConfig(
      "[protocol]\n\tallow = always\n[protocol \"ext\"]\n\tallow = always\n"
      "[url \"ext::sh -c touch% " +
      marker + "% >&2\"]\n\tinsteadOf = file:///x/\n" +
      "[url \"fd::3\"]\n\tinsteadOf = file:///y/\n");
  Status s = Fetch(ParseRemote("file:///x/r.git"), Options("ext"), sink_);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("transport 'ext' not allowed"), std::string::npos) << s.message();
  EXPECT_EQ(Fetch(ParseRemote("file:///y/r.git"), Options("fd"), sink_).code(), Code::kUnavailable);
  EXPECT_FALSE(fs::exists(marker));
}

TEST_F(GitRepo, FetchKeepsUrlPasswordsOutOfArgvOutputAndMessages) {
  FakeHttpServer server("401 Unauthorized");
  std::string log = dir_ + "/argv.log";
  RecordGitCommandLines(log);
  // Handed over unparsed, as a careless caller would.
  Status s = Fetch(Remote{server.Url("alice:s3cr%40t@"), "", ""}, Options("http"), sink_);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("Authentication failed"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("s3cr"), std::string::npos) << s.message();
  for (const auto& line : lines_) EXPECT_EQ(line.find("s3cr"), std::string::npos) << line;
  EXPECT_NE(server.requests().find("Authorization: Basic YWxpY2U6czNjckB0\r\n"),
            std::string::npos);  // alice:s3cr@t, delivered by the askpass helper
  std::string argv = Slurp(log);
  EXPECT_EQ(argv.find("s3cr"), std::string::npos) << argv;
  EXPECT_EQ(argv.find("alice"), std::string::npos) << argv;
  EXPECT_NE(argv.find("\n--\n" + server.Url() + "\n+refs/heads/*"), std::string::npos) << argv;
  EXPECT_NE(argv.find("protocol.ext.allow=never"), std::string::npos);
  EXPECT_NE(argv.find("protocol.fd.allow=never"), std::string::npos);
  EXPECT_NE(argv.find("GIT_ALLOW_PROTOCOL=file:git:http:https:ssh\n"), std::string::npos);
  if (!std::getenv("GIT_SSH_COMMAND") && !std::getenv("GIT_SSH")) {
    EXPECT_NE(argv.find("GIT_SSH_COMMAND=ssh -o BatchMode=yes\n"), std::string::npos);
  }
}

TEST_F(GitRepo, ResolveRejectsOptionLikeRefsWithoutRunningGit) {
  FetchOptions o = Options("resolve");
  ASSERT_TRUE(Fetch(ParseRemote(origin_), o, sink_).ok());
  std::string out = dir_ + "/out";
  EXPECT_EQ(Resolve(o.cache_dir, "-x").status().code(), Code::kInvalid);
  EXPECT_EQ(Resolve(o.cache_dir, "--output=" + out).status().code(), Code::kInvalid);
  EXPECT_EQ(Resolve(o.cache_dir, "main~1").status().code(), Code::kInvalid);
  EXPECT_EQ(Resolve("", "main").status().code(), Code::kInvalid);
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(GitRepo, ResolveBranchTagAndShortSha) {
  FetchOptions o = Options("names");
  ASSERT_TRUE(Fetch(ParseRemote(origin_), o, sink_).ok());
  for (const auto& ref :
       std::vector<std::string>{"main", "refs/heads/main", "v1", head_.substr(0, 7), head_}) {
    auto sha = Resolve(o.cache_dir, ref);
    ASSERT_TRUE(sha.ok()) << ref << ": " << sha.status().message();
    EXPECT_EQ(*sha, head_) << ref;
  }
  EXPECT_EQ(Resolve(o.cache_dir, "nope").status().code(), Code::kNotFound);
}

TEST_F(GitRepo, ExportNeedsAFullShaAndWritesItsTree) {
  FetchOptions o = Options("export");
  ASSERT_TRUE(Fetch(ParseRemote(origin_), o, sink_).ok());
  std::string dest = dir_ + "/tree";
  EXPECT_EQ(Export(o.cache_dir, "main", dest, sink_).code(), Code::kInvalid);
  EXPECT_EQ(Export(o.cache_dir, head_.substr(0, 7), dest, sink_).code(), Code::kInvalid);
  EXPECT_EQ(Export(o.cache_dir, "--output=x", dest, sink_).code(), Code::kInvalid);
  EXPECT_FALSE(fs::exists(dest));
  ASSERT_TRUE(Export(o.cache_dir, head_, dest, sink_).ok());
  EXPECT_EQ(Slurp(dest + "/hello.txt"), "v1\n");
  EXPECT_FALSE(fs::exists(dest + "/.git"));
  EXPECT_EQ(Export(o.cache_dir, head_, dest, sink_).code(), Code::kConflict);
}

TEST_F(GitRepo, CheckCredentialsOnALocalRepositoryWithoutAuth) {
  EXPECT_TRUE(CheckCredentials(origin_, "", "", askpass_, seconds(30)).ok());
  Status s = CheckCredentials("file://" + origin_, "bob", "pw", askpass_, seconds(30));
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_TRUE(fs::exists(askpass_));  // written because it was missing
}

TEST_F(GitRepo, CheckCredentialsOnAMissingPathIsUnavailable) {
  Status s = CheckCredentials(dir_ + "/missing.git", "bob", "hunter2secret", askpass_, seconds(30));
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("does not appear to be a git repository"), std::string::npos)
      << s.message();
  EXPECT_EQ(s.message().find("hunter2secret"), std::string::npos);
  EXPECT_EQ(CheckCredentials("-x", "bob", "pw", askpass_, seconds(30)).code(), Code::kInvalid);
}

TEST_F(GitRepo, CheckCredentialsReportsARefusedPasswordAsUnauthorized) {
  FakeHttpServer server("401 Unauthorized");
  std::string log = dir_ + "/argv.log";
  RecordGitCommandLines(log);
  Status s = CheckCredentials(server.Url(), "alice", "s3cr@t:pw", askpass_, seconds(30));
  EXPECT_EQ(s.code(), Code::kUnauthorized);
  EXPECT_EQ(s.message(), "invalid username or password");
  EXPECT_NE(server.requests().find("Authorization: Basic YWxpY2U6czNjckB0OnB3\r\n"),
            std::string::npos);  // alice:s3cr@t:pw
  EXPECT_EQ(Slurp(log).find("s3cr"), std::string::npos);
  EXPECT_NE(Slurp(log).find("ls-remote\n--heads\n--\n" + server.Url() + "\n"), std::string::npos);
  // The same password written into the URL is moved out of it.
  s = CheckCredentials(server.Url("alice:s3cr%40t:pw@"), "", "", askpass_, seconds(30));
  EXPECT_EQ(s.code(), Code::kUnauthorized);
  EXPECT_EQ(Slurp(log).find("s3cr"), std::string::npos);
}

TEST_F(GitRepo, CheckCredentialsReportsOtherHttpErrorsAsUnavailable) {
  FakeHttpServer server("500 Internal Server Error");
  Status s = CheckCredentials(server.Url("alice:s3cr%40t@"), "", "", askpass_, seconds(30));
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_NE(s.message().find("500"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("s3cr"), std::string::npos) << s.message();
}

TEST_F(GitRepo, ConfiguredCredentialHelpersAreNeverAsked) {
  FakeHttpServer server("401 Unauthorized");
  std::string helper_log = dir_ + "/helper.log";
  UseGlobalConfig("[credential]\n\thelper = \"!f() { cat >/dev/null; echo asked >> " + helper_log +
                  "; }; f\"\n");
  EXPECT_EQ(CheckCredentials(server.Url(), "alice", "pw", askpass_, seconds(30)).code(),
            Code::kUnauthorized);
  EXPECT_FALSE(fs::exists(helper_log)) << Slurp(helper_log);
}

TEST_F(GitRepo, ListBranchesOfAPathAndAFileUrl) {
  RunGitOk({"-C", origin_, "branch", "feature/x", "main"});
  for (const std::string& url : {origin_, "file://" + origin_}) {
    auto listed = ListBranches({url, "", ""}, askpass_, seconds(30));
    ASSERT_TRUE(listed.ok()) << listed.status().message();
    ASSERT_EQ(listed->branches.size(), 2u);
    EXPECT_EQ(listed->branches[0].name, "feature/x");
    EXPECT_EQ(listed->branches[1].name, "main");
    EXPECT_EQ(listed->branches[1].commit, head_);
    EXPECT_FALSE(listed->truncated);
  }
}

TEST_F(GitRepo, ListBranchesStopsAtTheLimit) {
  std::ofstream refs(origin_ + "/packed-refs");
  refs << "# pack-refs with: peeled fully-peeled sorted\n";
  for (std::size_t i = 0; i <= kMaxBranches + 5; ++i)
    refs << head_ << " refs/heads/b" << std::setw(6) << std::setfill('0') << i << "\n";
  refs.close();
  auto listed = ListBranches({origin_, "", ""}, askpass_, seconds(60));
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  EXPECT_EQ(listed->branches.size(), kMaxBranches);
  EXPECT_TRUE(listed->truncated);
  EXPECT_EQ(listed->branches.front().name, "b000000");
}

TEST_F(GitRepo, ListBranchesRefusesBadUrlsAndReportsMissingRepositories) {
  EXPECT_EQ(ListBranches({"-x", "", ""}, askpass_, seconds(30)).status().code(), Code::kInvalid);
  EXPECT_EQ(ListBranches({"relative/path", "", ""}, askpass_, seconds(30)).status().code(),
            Code::kInvalid);
  auto listed =
      ListBranches({dir_ + "/missing.git", "bob", "hunter2secret"}, askpass_, seconds(30));
  EXPECT_EQ(listed.status().code(), Code::kUnavailable);
  EXPECT_EQ(listed.status().message().find("hunter2secret"), std::string::npos);
}

TEST_F(GitRepo, ListBranchesReportsARefusedPasswordAsUnauthorized) {
  FakeHttpServer server("401 Unauthorized");
  std::string log = dir_ + "/argv.log";
  RecordGitCommandLines(log);
  auto listed = ListBranches({server.Url(), "alice", "s3cr@t:pw"}, askpass_, seconds(30));
  EXPECT_EQ(listed.status().code(), Code::kUnauthorized);
  EXPECT_EQ(listed.status().message(), "invalid username or password");
  EXPECT_NE(server.requests().find("Authorization: Basic YWxpY2U6czNjckB0OnB3\r\n"),
            std::string::npos);  // alice:s3cr@t:pw
  EXPECT_EQ(Slurp(log).find("s3cr"), std::string::npos);
  EXPECT_NE(Slurp(log).find("ls-remote\n--heads\n--\n" + server.Url() + "\n"), std::string::npos);
}

}  // namespace
}  // namespace slipway::git
