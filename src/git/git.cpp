#include "git/git.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/utf8.h"

namespace slipway::git {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxUrlBytes = 2048;
constexpr std::size_t kMaxRefBytes = 255;
constexpr std::size_t kMaxReasonBytes = 300;
constexpr std::size_t kMaxErrorTextBytes = 16 * 1024;

// ASCII-only classification: <cctype> depends on the locale and is undefined for
// negative chars, and a URL or ref is checked byte by byte.
bool IsControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
// RFC 3986 scheme characters, as git's own is_urlschemechar() counts them.
bool IsSchemeChar(char c, bool first) {
  return IsAlnum(c) || (!first && (c == '+' || c == '-' || c == '.'));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// "%XX" decoded; a '%' not followed by two hex digits is kept as it is.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && IsHex(s[i + 1]) && IsHex(s[i + 2])) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsFullSha(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), IsHex);
}

std::string SchemeOf(std::string_view url) {
  auto sep = url.find("://");
  return sep == std::string_view::npos ? "" : Lower(url.substr(0, sep));
}

// ---- Repository URLs ----

// git hands "<transport>::<address>" to a helper program (transport.c), `ext::` running an
// arbitrary command: the same scan git makes, so nothing it would treat that way passes.
bool HasTransportPrefix(std::string_view url) {
  std::size_t i = 0;
  while (i < url.size() && IsSchemeChar(url[i], i == 0)) ++i;
  return url.substr(i).starts_with("::");
}

bool IsAllowedScheme(std::string_view scheme) {
  return scheme == "http" || scheme == "https" || scheme == "ssh" || scheme == "git" ||
         scheme == "file";
}

// "" or ":" followed by digits only.
bool IsPortSuffix(std::string_view port) {
  if (port.empty()) return true;
  return port[0] == ':' &&
         std::all_of(port.begin() + 1, port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The host may be "[v6]" or "name", then an optional ":port". A '%' is refused in a host
// name so that no encoded "-" can reach ssh; a non-numeric port is usually a password
// holding an unencoded '/'.
Status ValidateHostPort(std::string_view hostport) {
  std::string_view host = hostport, port;
  bool bracketed = hostport.starts_with('[');
  if (bracketed) {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return Invalid("repository URL host lacks its ']'");
    host = hostport.substr(1, close - 1);
    port = hostport.substr(close + 1);
  } else if (auto colon = hostport.find(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon);
  }
  if (host.empty()) return Invalid("repository URL has an empty host");
  if (host[0] == '-') return Invalid("repository URL host must not begin with '-'");
  if (!bracketed && host.find('%') != std::string_view::npos)
    return Invalid("repository URL host must not contain '%'");
  if (!IsPortSuffix(port))
    return Invalid("repository URL port must be a number (a '/' in a password must be %2F)");
  return Status::Ok();
}

// `authority` is what lies between "://" and the first '/'.
Status ValidateAuthority(std::string_view scheme, std::string_view authority) {
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) {
    if (authority.empty() && scheme == "file") return Status::Ok();  // file:///path
    return ValidateHostPort(authority);
  }
  // ssh gets "user@host" as one argument: a user name starting with '-' is an option too.
  if (PercentDecode(authority.substr(0, at)).starts_with('-'))
    return Invalid("repository URL user name must not begin with '-'");
  return ValidateHostPort(authority.substr(at + 1));
}

std::string NotAUrlMessage(std::string_view url) {
  auto colon = url.find(':');
  if (colon != std::string_view::npos && colon < url.find('/'))
    return "scp-like 'user@host:path' repositories are not accepted; write "
           "ssh://user@host/path instead";
  return "repository must be an http(s)://, ssh://, git:// or file:// URL or an absolute path";
}

// ---- Refs ----

Status CheckRefCharacters(std::string_view ref) {
  for (char c : ref) {
    if (IsControl(c)) return Invalid("ref must not contain control characters");
    if (c == ' ') return Invalid("ref must not contain a space");
    if (std::string_view("~^:?*[\\").find(c) != std::string_view::npos)
      return Invalid(std::string("ref must not contain '") + c + "'");
  }
  return Status::Ok();
}

Status CheckRefComponents(std::string_view ref) {
  std::size_t start = 0;
  while (start <= ref.size()) {
    auto end = std::min(ref.find('/', start), ref.size());
    std::string_view part = ref.substr(start, end - start);
    if (part.starts_with('.')) return Invalid("no part of a ref may begin with '.'");
    if (part.ends_with(".lock")) return Invalid("no part of a ref may end with '.lock'");
    start = end + 1;
  }
  return Status::Ok();
}

// ---- Redaction ----

// ssh and git:// user names are login names ("git@"), not secrets; anywhere else a user
// name alone is how access tokens are written ("https://TOKEN@host/r.git").
bool UserNameIsPublic(std::string_view scheme) {
  return scheme == "ssh" || scheme == "git" || scheme == "git+ssh" || scheme == "ssh+git";
}

std::string RedactedUserinfo(std::string_view scheme, std::string_view userinfo) {
  auto colon = userinfo.find(':');
  if (colon == std::string_view::npos)
    return UserNameIsPublic(scheme) ? std::string(userinfo) : "***";
  // GitHub's legacy form puts the token in the user name: "TOKEN:x-oauth-basic@".
  if (userinfo.substr(colon + 1) == "x-oauth-basic") return "***:***";
  return std::string(userinfo.substr(0, colon)) + ":***";
}

// In free text a URL's user info ends where its authority does ('/') or where the URL
// itself must end (whitespace, control characters). Quotes do not end it: a password may
// contain one, and hiding too much is the safe mistake.
std::size_t AuthorityEnd(std::string_view text, std::size_t from) {
  while (from < text.size() && text[from] != '/' && !IsSpace(text[from]) && !IsControl(text[from]))
    ++from;
  return from;
}

std::string SchemeEndingAt(std::string_view text, std::size_t sep) {
  std::size_t start = sep;
  while (start > 0 && IsSchemeChar(text[start - 1], false)) --start;
  return Lower(text.substr(start, sep - start));
}

void ReplaceAll(std::string& text, const std::string& secret) {
  for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3))
    text.replace(pos, secret.size(), "***");
}

// ---- Running git ----

// Before every subcommand: git's command-running transports off even if a config file or
// an insteadOf rewrite leads there, and no credential helper from ~/.gitconfig (one could
// store the password on disk, or answer with someone else's).
const std::vector<std::string>& HardenedOptions() {
  static const std::vector<std::string> kOptions = {"-c", "protocol.ext.allow=never",
                                                    "-c", "protocol.fd.allow=never",
                                                    "-c", "credential.helper="};
  return kOptions;
}

os::CommandSpec BaseSpec() {
  os::CommandSpec spec;
  spec.env = {{"GIT_TERMINAL_PROMPT", "0"}, {"LC_ALL", "C"}, {"GIT_CONFIG_NOSYSTEM", "1"}};
  return spec;
}

// What git said on stderr: its first "fatal:"/"error:" line names the cause (later lines
// are advice), and the whole text tells an authentication failure apart.
struct ErrorText {
  std::string first_fatal, last, all;

  void Add(std::string_view line) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    if (first_fatal.empty() && (line.starts_with("fatal:") || line.starts_with("error:")))
      first_fatal = line;
    last = line;
    if (all.size() < kMaxErrorTextBytes) all.append(line).append("\n");
  }
  std::string Reason() const {
    const std::string& r = first_fatal.empty() ? last : first_fatal;
    return r.size() <= kMaxReasonBytes ? r : r.substr(0, kMaxReasonBytes) + "...";
  }
};

struct GitCall {
  std::string verb;                  // names the command in messages
  std::vector<std::string> args;     // after "git" and the hardened options
  os::CommandSpec spec;              // cwd and environment
  std::vector<std::string> secrets;  // hidden in every line and message
  os::RunOptions run;
  ErrorText* errors = nullptr;  // receives the redacted stderr when set
};

// Runs git; every line reaches `sink` (may be empty) redacted. kUnavailable with git's
// reason on a non-zero exit, kTimeout, kCancelled.
Status RunGit(const GitCall& call, const os::LineSink& sink) {
  os::CommandSpec spec = call.spec;
  spec.argv = {"git"};
  spec.argv.insert(spec.argv.end(), HardenedOptions().begin(), HardenedOptions().end());
  spec.argv.insert(spec.argv.end(), call.args.begin(), call.args.end());
  ErrorText local;
  ErrorText& errors = call.errors ? *call.errors : local;
  auto redacting = [&](os::OutputStream s, std::string_view line) {
    std::string clean = RedactSecrets(line, call.secrets);
    if (s == os::OutputStream::kStderr) errors.Add(clean);
    if (sink) sink(s, clean);
  };
  auto result = os::Run(spec, redacting, call.run);
  if (!result.ok())
    return {result.status().code(), RedactSecrets(result.status().message(), call.secrets)};
  if (result->timed_out) return {Code::kTimeout, "git " + call.verb + " timed out"};
  if (result->cancelled) return {Code::kCancelled, "git " + call.verb + " cancelled"};
  if (result->exit_code == 0) return Status::Ok();
  std::string reason = errors.Reason();
  return Unavailable("git " + call.verb + " exited with " + std::to_string(result->exit_code) +
                     (reason.empty() ? "" : ": " + reason));
}

// The URL git is given and the credentials it gets: user info still inside remote.url is
// taken out of the command line, and explicit credentials win over it.
Remote Effective(const Remote& remote) {
  Remote r = ParseRemote(remote.url);
  if (!remote.username.empty() || !remote.password.empty()) {
    r.username = remote.username;
    r.password = remote.password;
  }
  return r;
}

bool HasCredentials(const Remote& r) {
  return !r.username.empty() || !r.password.empty();
}

// What must never be shown. A user name alone on http(s) is an access token.
std::vector<std::string> SecretsOf(const Remote& r) {
  std::vector<std::string> secrets;
  if (!r.password.empty()) secrets.push_back(r.password);
  std::string scheme = SchemeOf(r.url);
  bool token_user = r.password.empty() || r.password == "x-oauth-basic";
  if (token_user && !r.username.empty() && !UserNameIsPublic(scheme) && scheme != "file")
    secrets.push_back(r.username);
  return secrets;
}

Status EnsureAskpass(const Remote& r, const std::string& askpass_path) {
  if (!HasCredentials(r)) return Status::Ok();
  if (askpass_path.empty()) return Invalid("credentials need an askpass helper path");
  std::error_code ec;
  if (fs::exists(askpass_path, ec)) return Status::Ok();
  return WriteAskpass(askpass_path);
}

// The environment of a git process that talks to a remote. GIT_ALLOW_PROTOCOL overrides
// every protocol.*.allow setting, so no configuration can re-enable ext:: or fd::.
// BatchMode keeps ssh from waiting on a prompt nobody will answer.
os::CommandSpec RemoteSpec(const Remote& r, const std::string& askpass_path) {
  os::CommandSpec spec = BaseSpec();
  spec.env["GIT_ALLOW_PROTOCOL"] = "file:git:http:https:ssh";
  if (!std::getenv("GIT_SSH_COMMAND") && !std::getenv("GIT_SSH"))
    spec.env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes";
  if (HasCredentials(r)) {
    spec.env["GIT_ASKPASS"] = askpass_path;
    spec.env["SLIPWAY_GIT_USERNAME"] = r.username;
    spec.env["SLIPWAY_GIT_PASSWORD"] = r.password;
  }
  return spec;
}

Status EnsureMirror(const std::string& cache_dir, const os::RunOptions& run,
                    const os::LineSink& sink) {
  if (fs::exists(fs::path(cache_dir) / "HEAD")) return Status::Ok();
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) return Unavailable("cannot create " + cache_dir + ": " + ec.message());
  return RunGit({.verb = "init",
                 .args = {"init", "--quiet", "--bare", "--", cache_dir},
                 .spec = BaseSpec(),
                 .run = run},
                sink);
}

// A commit id: 40 hex digits (SHA-1) or 64 (SHA-256 repositories).
bool IsCommitId(std::string_view s) {
  return (s.size() == 40 || s.size() == 64) && std::all_of(s.begin(), s.end(), IsHex);
}

// Collects the lines of `git ls-remote --heads` ("<commit> TAB refs/heads/<name>"), keeping at
// most kMaxBranches well-formed ones.
class BranchCollector {
 public:
  void Add(std::string_view line) {
    constexpr std::string_view kHeads = "refs/heads/";
    auto tab = line.find('\t');
    if (tab == std::string_view::npos) return;
    std::string_view commit = line.substr(0, tab), ref = line.substr(tab + 1);
    if (!ref.starts_with(kHeads) || !IsCommitId(commit)) return;
    std::string name(ref.substr(kHeads.size()));
    if (!IsUtf8(name) || !ValidateRef(name).ok()) return;
    if (list_.branches.size() == kMaxBranches) {
      list_.truncated = true;
      return;
    }
    list_.branches.push_back({std::move(name), std::string(commit)});
  }
  BranchList Take() { return std::move(list_); }

 private:
  BranchList list_;
};

// Lower-cased, as git's own messages are not.
bool IsAuthFailure(const std::string& errors) {
  static const char* const kMarkers[] = {
      "authentication failed",        "could not read username",      "could not read password",
      "returned error: 401",          "returned error: 403",          "http basic: access denied",
      "invalid username or password", "permission denied (publickey", "permission denied (password",
      "terminal prompts disabled"};
  std::string text = Lower(errors);
  return std::any_of(std::begin(kMarkers), std::end(kMarkers),
                     [&text](const char* m) { return text.find(m) != std::string::npos; });
}

}  // namespace

Status ValidateRepoUrl(const std::string& url) {
  if (url.empty()) return Invalid("repository URL is empty");
  if (url.size() > kMaxUrlBytes) return Invalid("repository URL is longer than 2048 bytes");
  if (url[0] == '-') return Invalid("repository URL must not begin with '-'");
  if (HasTransportPrefix(url))
    return Invalid("git transports such as ext:: and fd:: are not allowed in a repository URL");
  if (std::any_of(url.begin(), url.end(), [](char c) { return IsSpace(c) || IsControl(c); }))
    return Invalid("repository URL must not contain whitespace or control characters");
  if (url[0] == '/') return Status::Ok();
  auto sep = url.find("://");
  if (sep == std::string::npos) return Invalid(NotAUrlMessage(url));
  std::string scheme = Lower(std::string_view(url).substr(0, sep));
  if (!IsAllowedScheme(scheme))
    return Invalid("repository URL scheme must be http, https, ssh, git or file");
  auto start = sep + 3;
  auto end = std::min(url.find('/', start), url.size());
  return ValidateAuthority(scheme, std::string_view(url).substr(start, end - start));
}

Status ValidateRef(const std::string& ref) {
  if (ref.empty()) return Invalid("ref is empty");
  if (ref.size() > kMaxRefBytes) return Invalid("ref is longer than 255 bytes");
  if (ref == "@") return Invalid("ref must not be '@'");
  if (ref[0] == '-') return Invalid("ref must not begin with '-'");
  if (ref[0] == '/') return Invalid("ref must not begin with '/'");
  if (ref.back() == '/') return Invalid("ref must not end with '/'");
  if (ref.back() == '.') return Invalid("ref must not end with '.'");
  if (auto s = CheckRefCharacters(ref); !s.ok()) return s;
  if (ref.find("..") != std::string::npos) return Invalid("ref must not contain '..'");
  if (ref.find("@{") != std::string::npos) return Invalid("ref must not contain '@{'");
  if (ref.find("//") != std::string::npos) return Invalid("ref must not contain '//'");
  return CheckRefComponents(ref);
}

Remote ParseRemote(const std::string& url) {
  Remote r{url, "", ""};
  auto sep = url.find("://");
  if (sep == std::string::npos) return r;
  std::string scheme = Lower(std::string_view(url).substr(0, sep));
  auto start = sep + 3;
  auto end = std::min(url.find('/', start), url.size());
  auto at = std::string_view(url).substr(start, end - start).rfind('@');
  if (at == std::string_view::npos) {
    r.url = scheme + url.substr(sep);
    return r;
  }
  std::string_view userinfo = std::string_view(url).substr(start, at);
  auto colon = userinfo.find(':');
  std::string_view user = userinfo.substr(0, colon);
  r.username = PercentDecode(user);
  if (colon != std::string_view::npos) r.password = PercentDecode(userinfo.substr(colon + 1));
  // ssh takes the login name only from the URL; it is not a secret.
  std::string login = scheme == "ssh" && !user.empty() ? std::string(user) + "@" : "";
  r.url = scheme + "://" + login + url.substr(start + at + 1);
  return r;
}

std::string RedactUrl(const std::string& full) {
  // A query or fragment may carry a token too (…?private_token=…): never shown.
  auto q = full.find_first_of("?#", full.find("://") == std::string::npos ? 0 : full.find("://"));
  const std::string url = q == std::string::npos ? full : full.substr(0, q) + full[q] + "***";
  // The user info of one URL ends only at its first '/', as in ParseRemote, even when an
  // invalid URL holds whitespace; any further URL inside it is handled as free text.
  auto sep = url.find("://");
  if (sep == std::string::npos) return url;
  auto start = sep + 3;
  auto end = std::min(url.find('/', start), url.size());
  auto at = std::string_view(url).substr(start, end - start).rfind('@');
  if (at == std::string_view::npos) return RedactSecrets(url);
  std::string userinfo = RedactedUserinfo(Lower(std::string_view(url).substr(0, sep)),
                                          std::string_view(url).substr(start, at));
  return RedactSecrets(url.substr(0, start) + userinfo + url.substr(start + at));
}

std::string RedactSecrets(std::string_view text) {
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t copied = 0;
  while (sep != std::string_view::npos) {
    std::size_t start = sep + 3;
    std::size_t end = AuthorityEnd(text, start);
    auto at = text.substr(start, end - start).rfind('@');
    if (at != std::string_view::npos) {
      out.append(text.substr(copied, start - copied));
      out += RedactedUserinfo(SchemeEndingAt(text, sep), text.substr(start, at));
      copied = start + at;
    }
    sep = text.find("://", std::max(start, copied));
  }
  out.append(text.substr(copied));
  return out;
}

std::string RedactSecrets(std::string_view text, const std::vector<std::string>& secrets) {
  std::string out = RedactSecrets(text);
  std::vector<const std::string*> ordered;
  for (const auto& s : secrets) {
    if (!s.empty()) ordered.push_back(&s);
  }
  // Longest first: replacing "abc" inside "abcdef" would leave "def" showing.
  std::sort(ordered.begin(), ordered.end(),
            [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  for (const std::string* s : ordered) ReplaceAll(out, *s);
  return out;
}

Status WriteAskpass(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  // Written aside and renamed over: a git process may be executing the current copy.
  std::string tmp =
      path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter.fetch_add(1));
  std::ofstream out(tmp, std::ios::trunc);
  out << "#!/bin/sh\n"
         "# Answers git's credential prompts from the environment of this one git process.\n"
         "case \"$1\" in\n"
         "  Username*) printf '%s\\n' \"$SLIPWAY_GIT_USERNAME\" ;;\n"
         "  *) printf '%s\\n' \"$SLIPWAY_GIT_PASSWORD\" ;;\n"
         "esac\n";
  out.close();
  if (out && chmod(tmp.c_str(), 0700) == 0) fs::rename(tmp, path, ec);
  if (!out || ec || !fs::exists(path)) {
    fs::remove(tmp, ec);
    return Unavailable("cannot write askpass helper " + path);
  }
  return Status::Ok();
}

Status Fetch(const Remote& remote, const FetchOptions& options, const os::LineSink& sink) {
  if (auto s = ValidateRepoUrl(remote.url); !s.ok()) return s;
  if (options.cache_dir.empty()) return Invalid("fetch needs a cache directory");
  Remote r = Effective(remote);
  if (auto s = EnsureAskpass(r, options.askpass_path); !s.ok()) return s;
  GitCall call{
      .verb = "fetch",
      .args = {"-C", options.cache_dir, "fetch", "--quiet", "--force", "--prune", "--no-tags", "--",
               r.url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
      .spec = RemoteSpec(r, options.askpass_path),
      .secrets = SecretsOf(r),
      .run = {options.timeout, options.cancel}};
  os::LineSink redacted = [&call, &sink](os::OutputStream s, std::string_view line) {
    if (sink) sink(s, RedactSecrets(line, call.secrets));
  };
  if (auto s = EnsureMirror(options.cache_dir, call.run, redacted); !s.ok()) return s;
  return RunGit(call, sink);
}

Result<std::string> Resolve(const std::string& cache_dir, const std::string& ref) {
  if (auto s = ValidateRef(ref); !s.ok()) return s;
  if (cache_dir.empty()) return Invalid("resolve needs a cache directory");
  std::string sha;
  auto capture = [&sha](os::OutputStream s, std::string_view line) {
    if (s == os::OutputStream::kStdout) sha = std::string(line);
  };
  auto s = RunGit({.verb = "rev-parse",
                   .args = {"-C", cache_dir, "rev-parse", "--verify", "--quiet", "--end-of-options",
                            ref + "^{commit}"},
                   .spec = BaseSpec(),
                   .run = {std::chrono::seconds(30), nullptr}},
                  capture);
  if (s.code() == Code::kTimeout) return s;
  if (!s.ok() || !IsFullSha(sha))
    return NotFound("'" + ref + "' names no commit in the repository");
  return sha;
}

Status Export(const std::string& cache_dir, const std::string& commit, const std::string& dest,
              const os::LineSink& sink) {
  if (!IsFullSha(commit)) return Invalid("export needs a full 40-hex commit id");
  if (cache_dir.empty()) return Invalid("export needs a cache directory");
  std::error_code ec;
  if (fs::exists(dest)) return Conflict(dest + " already exists");
  fs::create_directories(dest, ec);
  if (ec) return Unavailable("cannot create " + dest + ": " + ec.message());
  os::CommandSpec spec = BaseSpec();
  spec.argv = {
      "/bin/sh", "-c",      "set -e; git -C \"$1\" archive --format=tar \"$2\" | tar -x -C \"$3\"",
      "export",  cache_dir, commit,
      dest};
  auto redacted = [&sink](os::OutputStream s, std::string_view line) {
    if (sink) sink(s, RedactSecrets(line));
  };
  auto result = os::Run(spec, redacted, {std::chrono::minutes(5), nullptr});
  if (!result.ok()) return {result.status().code(), RedactSecrets(result.status().message())};
  if (result->exit_code != 0) return Unavailable("git archive of " + commit + " failed");
  return Status::Ok();
}

Status CheckCredentials(const std::string& url, const std::string& username,
                        const std::string& password, const std::string& askpass_path,
                        std::chrono::milliseconds timeout) {
  if (auto s = ValidateRepoUrl(url); !s.ok()) return s;
  Remote r = Effective({url, username, password});
  if (auto s = EnsureAskpass(r, askpass_path); !s.ok()) return s;
  ErrorText errors;
  GitCall call{.verb = "ls-remote",
               .args = {"ls-remote", "--heads", "--", r.url},
               .spec = RemoteSpec(r, askpass_path),
               .secrets = SecretsOf(r),
               .run = {timeout, nullptr},
               .errors = &errors};
  // Outside any work tree, so no repository's config (insteadOf, sshCommand) applies.
  call.spec.cwd = "/";
  Status s = RunGit(call, nullptr);
  if (s.code() == Code::kUnavailable && IsAuthFailure(errors.all))
    return {Code::kUnauthorized, "invalid username or password"};
  return s;
}

Result<BranchList> ListBranches(const Remote& remote, const std::string& askpass_path,
                                std::chrono::milliseconds timeout) {
  if (auto s = ValidateRepoUrl(remote.url); !s.ok()) return s;
  Remote r = Effective(remote);
  if (auto s = EnsureAskpass(r, askpass_path); !s.ok()) return s;
  ErrorText errors;
  GitCall call{.verb = "ls-remote",
               .args = {"ls-remote", "--heads", "--", r.url},
               .spec = RemoteSpec(r, askpass_path),
               .secrets = SecretsOf(r),
               .run = {timeout, nullptr},
               .errors = &errors};
  // Outside any work tree, so no repository's config (insteadOf, sshCommand) applies.
  call.spec.cwd = "/";
  BranchCollector branches;
  Status s = RunGit(call, [&branches](os::OutputStream stream, std::string_view line) {
    if (stream == os::OutputStream::kStdout) branches.Add(line);
  });
  if (s.code() == Code::kUnavailable && IsAuthFailure(errors.all))
    return Status(Code::kUnauthorized, "invalid username or password");
  if (!s.ok()) return s;
  return branches.Take();
}

}  // namespace slipway::git
