#pragma once
// The git CLI, wrapped. Credentials never appear in a command line, a URL that is logged,
// an error message or an event: they reach git through an askpass helper and environment
// variables of the one git process that needs them.
//
// Every function here defends itself, whatever its callers checked before: repository URLs
// and refs are validated before any git process starts, options can never be smuggled in
// as a URL or a ref (`--` and `--end-of-options` separate them), git's `ext::` and `fd::`
// transports are disabled, and everything that leaves this module as text (sink lines,
// Status messages) has passed through RedactSecrets.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "os/process.h"

namespace slipway::git {

// Ok when `url` is a repository location git may be pointed at: an http://, https://,
// ssh://, git:// or file:// URL (scheme case-insensitive) or an absolute local path
// starting with '/'. Otherwise kInvalid with a one-line message that never repeats the URL
// (it may hold a password). Rejected: empty, over 2048 bytes, a leading '-', whitespace or
// control characters (NUL and DEL included), git transports (`ext::`, `fd::`, `x::`), any
// other scheme, scp-like `user@host:path` (write `ssh://user@host/path`), relative paths,
// an empty host (allowed only as `file:///path`), a host or user name starting with '-',
// a '%' in a host name and a non-numeric port.
Status ValidateRepoUrl(const std::string& url);

// Ok when `ref` is a branch or tag name by the rules of `git check-ref-format
// --allow-onelevel`, at most 255 bytes; a 4-40 character hex commit id passes the same
// rules. kInvalid naming the rule broken otherwise (the ref itself is not repeated).
Status ValidateRef(const std::string& ref);

struct Remote {
  std::string url;       // without credentials (ssh keeps its login name, see ParseRemote)
  std::string username;  // percent-decoded; "" when none
  std::string password;  // percent-decoded; "" when none
};

// Splits "scheme://user:password@host/path" into a clean URL and credentials. The user
// info ends at the LAST '@' before the first '/' after "://", so "p@ss" may be written
// as is; a '/' in a user name or password MUST be percent-encoded as %2F (an unencoded
// one ends the host part). Username and password come back percent-decoded ("p%40ss" ->
// "p@ss"). The clean URL has no user info and a lower-case scheme, except that an ssh://
// URL keeps "user@" (ssh takes the login name from nowhere else; the password is still
// removed). Strings without "://" (local paths) come back unchanged, without credentials.
// Does not validate: see ValidateRepoUrl.
Remote ParseRemote(const std::string& url);

// `url` for display: "user:pass@" -> "user:***@"; a user-only "TOKEN@" on any scheme but
// ssh/git -> "***@" (that is how access tokens are written into http(s) URLs); ssh and
// git user-only ("ssh://git@host/r.git") unchanged; "TOKEN:x-oauth-basic@" -> "***:***@".
// A password containing '@' is hidden whole (the user info ends at the last '@' before
// the first '/', as in ParseRemote); further URLs inside `url` are redacted as by
// RedactSecrets. Anything else comes back unchanged.
std::string RedactUrl(const std::string& url);

// `text` (an error message, a line of git output, a log line) with the user info of every
// "scheme://userinfo@" in it redacted as RedactUrl does; the rest is untouched. In free
// text the user info of a URL ends at '/', whitespace or a control character. Costs one
// search when `text` has no "://".
std::string RedactSecrets(std::string_view text);
// As above, then every occurrence of each non-empty string of `secrets` (a password, a
// token) replaced by "***", longest first so that no part of a longer secret is left.
std::string RedactSecrets(std::string_view text, const std::vector<std::string>& secrets);

struct FetchOptions {
  std::string cache_dir;     // bare mirror, created on first use
  std::string askpass_path;  // helper script, written when missing (see WriteAskpass)
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  const std::atomic<bool>* cancel = nullptr;
};

// Writes the askpass helper script at `path` (mode 0700; replaced atomically, so a git
// process running the old copy is never disturbed). Idempotent. kUnavailable on I/O errors.
Status WriteAskpass(const std::string& path);

// Fetches all branches of `remote` into the mirror (`git fetch -- <url> <refspecs>`).
// remote.url is validated first (kInvalid; no process runs); user info still inside it
// is moved out of the URL and used as credentials when remote.username/password are
// empty. Credentials go only to the askpass helper's environment; git's credential
// helpers are disabled so nothing is stored. Only file, git, http, https and ssh
// transports are allowed; ssh runs with BatchMode=yes unless GIT_SSH_COMMAND or GIT_SSH
// is set. Output lines go to `sink` redacted (URLs and the known credentials). kInvalid
// for a bad URL or a missing cache_dir/askpass_path; kTimeout, kCancelled; kUnavailable
// when git fails, with git's last error line (redacted) in the message.
Status Fetch(const Remote& remote, const FetchOptions& options, const os::LineSink& sink);

// Resolves a branch, tag or (abbreviated) sha in the mirror to a full 40-hex commit sha.
// kInvalid when `ref` fails ValidateRef (no process runs); kNotFound when it names no
// commit.
Result<std::string> Resolve(const std::string& cache_dir, const std::string& ref);

// Writes the tree of `commit` into `dest` (created; must not exist), without .git.
// kInvalid unless `commit` is a full 40-hex sha; kConflict when dest exists; kUnavailable
// when git archive fails. Output lines reach `sink` redacted.
Status Export(const std::string& cache_dir, const std::string& commit, const std::string& dest,
              const os::LineSink& sink);

// Checks that `username`/`password` open the repository at `url` by running
// `git ls-remote --heads -- <clean url>`, the credentials supplied only through the
// askpass helper at `askpass_path` (written when missing), as Fetch does: never in argv,
// the URL or any message. User info inside `url` is used when both username and password
// are empty. Ok on success; kInvalid for a bad URL; kUnauthorized ("invalid username or
// password") when git reports an authentication failure (HTTP 401/403, "Authentication
// failed", "could not read Username", ssh "Permission denied (publickey…)"); kTimeout
// after `timeout`; kUnavailable with git's redacted reason otherwise.
Status CheckCredentials(const std::string& url, const std::string& username,
                        const std::string& password, const std::string& askpass_path,
                        std::chrono::milliseconds timeout);

// One branch of a repository: its short name ("main", "feature/x") and the commit it
// points at (40 or 64 hex digits).
struct Branch {
  std::string name;
  std::string commit;
};

struct BranchList {
  std::vector<Branch> branches;  // in the order git listed them (by ref name)
  bool truncated = false;        // more than kMaxBranches: the rest were left out
};

// At most this many branches are kept by ListBranches.
inline constexpr std::size_t kMaxBranches = 10000;

// The branches of the repository at `remote.url` (any location ValidateRepoUrl accepts,
// absolute paths included): `git ls-remote --heads -- <clean url>` outside any work tree,
// credentials (user info in the URL, or remote.username/password, which win as in Fetch)
// supplied only through the askpass helper at `askpass_path` (written when missing) and
// never in argv, a message or a line. Branch names that are not valid UTF-8 or fail
// ValidateRef are skipped; past kMaxBranches the list stops and `truncated` is set.
// Errors: kInvalid for a bad URL (no process runs); kUnauthorized ("invalid username or
// password") when git reports an authentication failure; kTimeout after `timeout`;
// kUnavailable with git's redacted reason otherwise.
Result<BranchList> ListBranches(const Remote& remote, const std::string& askpass_path,
                                std::chrono::milliseconds timeout);

}  // namespace slipway::git
