#pragma once
// repos.yaml: the git repositories a node offers by name (`slipway agent --repos F`, and
// `slipway server --repos F` for the server's own node), listed by `slipway repos` and
// `slipway branches REPO`.
//
//   shop: /srv/git/shop.git                                 # a repository on this node
//   api: https://git.example.com/team/api.git               # any location an app repo may have
//   docs: https://deploy:s3cret@git.example.com/docs.git    # credentials allowed, shown redacted
//
// One mapping of name → location. Names follow the rule of app names (lower-case letters,
// digits and '-', starting with a letter, at most 63 characters), each at most once.
// Locations pass git::ValidateRepoUrl: an absolute path (kind "path") or an http(s)://,
// ssh://, git:// or file:// URL (kind "url"). The file is operator-written but still read
// defensively: its size, its entries and what its YAML aliases expand to are bounded, and
// every error is one line "file:line:column: message" that never repeats a credential.
#include <cstddef>
#include <string>
#include <vector>

#include "core/status.h"

namespace slipway {

namespace repos_limits {
inline constexpr std::size_t kFileBytes = 256 * 1024;  // the raw text, before parsing
inline constexpr std::size_t kEntries = 256;           // = protocol::kMaxRepos (hello)
// The parsed tree with every alias expanded where it is used (as for manifests).
inline constexpr std::size_t kExpandedBytes = 1024 * 1024;
inline constexpr std::size_t kNodes = 10'000;
inline constexpr int kDepth = 16;
}  // namespace repos_limits

enum class RepoKind { kPath, kUrl };
const char* ToString(RepoKind kind);  // "path" | "url"

struct RepoEntry {
  std::string name;
  RepoKind kind = RepoKind::kPath;
  std::string location;  // as written: a URL may hold credentials (never show it as is)
  int line = 0;          // 1-based position of the location in the file
  int column = 0;

  // The location for display: credentials, query and fragment of a URL redacted
  // (git::RedactUrl); a path as written.
  std::string Redacted() const;
};

// Sorted by name.
using RepoTable = std::vector<RepoEntry>;

// Parses repos.yaml text; `file` names it in messages ("repos.yaml:3:7: ..."). An empty
// document is an empty table. Every error is kInvalid. Text over kFileBytes is refused
// before parsing; a tree whose aliases expand past the limits is refused before any entry
// is read, and the work done on it is bounded by kNodes visits.
Result<RepoTable> ParseReposFile(const std::string& text, const std::string& file);

// Reads `path` and parses it (messages name `path`), then checks that every path entry is a
// git repository on this machine: a directory holding HEAD and objects/ (bare), or .git.
// kNotFound when the file cannot be read; kInvalid otherwise.
Result<RepoTable> LoadReposFile(const std::string& path);

// Whether `name` may name a repository: the rule of app names.
bool IsRepoName(const std::string& name);

// The names of `table`, in order (what an agent's hello lists).
std::vector<std::string> RepoNames(const RepoTable& table);

}  // namespace slipway
