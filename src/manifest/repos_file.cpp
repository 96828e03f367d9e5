#include "manifest/repos_file.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/utf8.h"
#include "git/git.h"

namespace slipway {
namespace {

namespace limits = repos_limits;

// Thrown while reading the tree, caught in ParseReposFile; nothing escapes this file.
struct ReposError {
  YAML::Mark mark;
  std::string message;
};

[[noreturn]] void Fail(const YAML::Node& node, const std::string& message) {
  throw ReposError{node.Mark(), message};
}

std::string Where(const std::string& file, const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; editors count from 1.
  if (mark.line < 0) return file + ":1:1";
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// A name quoted in a message, cut short on a character boundary so the error stays one line.
std::string Shown(const std::string& s) {
  constexpr std::size_t kMax = 64;
  if (s.size() <= kMax) return s;
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

// Bounds what reading the tree can cost before any entry is read, as the manifest parser
// does: yaml-cpp shares an aliased node instead of copying it, so a small file can describe
// a huge (or cyclic) tree. Every use of an alias counts, and the walk stops at the first
// limit crossed, so it never visits more than kNodes nodes.
class ExpandedSize {
 public:
  void Visit(const YAML::Node& node, int depth) {
    if (depth > limits::kDepth)
      Fail(node, "repos file nesting is deeper than " + std::to_string(limits::kDepth) +
                     " levels (YAML aliases count once per use)");
    if (++nodes_ > limits::kNodes)
      Fail(node, "repos file exceeds the size limit of " + std::to_string(limits::kNodes) +
                     " values (YAML aliases count once per use)");
    if (node.IsScalar()) return AddText(node);
    if (node.IsSequence()) {
      for (const auto& item : node) Visit(item, depth + 1);
    } else if (node.IsMap()) {
      for (const auto& kv : node) {
        Visit(kv.first, depth + 1);
        Visit(kv.second, depth + 1);
      }
    }
  }

 private:
  void AddText(const YAML::Node& node) {
    bytes_ += node.Scalar().size();
    if (bytes_ > limits::kExpandedBytes)
      Fail(node,
           "repos file exceeds the size limit of 1 MiB of text once expanded (YAML aliases "
           "count once per use)");
    if (!IsUtf8(node.Scalar())) Fail(node, "repos file text is not valid UTF-8");
  }

  std::size_t nodes_ = 0;
  std::size_t bytes_ = 0;
};

RepoEntry ReadEntry(const YAML::Node& key, const YAML::Node& value) {
  if (!key.IsScalar()) Fail(key, "expected a repository name");
  const std::string& name = key.Scalar();
  if (!IsRepoName(name))
    Fail(key, "repository name '" + Shown(name) +
                  "' must be lower-case letters, digits and '-', starting with a letter (max 63)");
  if (!value.IsScalar() || value.Scalar().empty())
    Fail(value, name + ": expected an absolute path or a repository URL");
  // The message never repeats the location: a URL may hold a password.
  if (auto s = git::ValidateRepoUrl(value.Scalar()); !s.ok())
    Fail(value, name + ": " + s.message());
  RepoEntry e;
  e.name = name;
  e.location = value.Scalar();
  e.kind = e.location.front() == '/' ? RepoKind::kPath : RepoKind::kUrl;
  e.line = value.Mark().line + 1;
  e.column = value.Mark().column + 1;
  return e;
}

RepoTable Read(const YAML::Node& root) {
  if (!root.IsMap()) Fail(root, "expected a mapping of repository names to paths or URLs");
  RepoTable table;
  std::set<std::string> seen;
  for (const auto& kv : root) {
    if (table.size() == limits::kEntries)
      Fail(kv.first,
           "too many repositories (the limit is " + std::to_string(limits::kEntries) + ")");
    RepoEntry e = ReadEntry(kv.first, kv.second);
    // yaml-cpp keeps both of two equal keys: the second must not silently lose.
    if (!seen.insert(e.name).second) Fail(kv.first, "duplicate repository name '" + e.name + "'");
    table.push_back(std::move(e));
  }
  std::sort(table.begin(), table.end(),
            [](const RepoEntry& a, const RepoEntry& b) { return a.name < b.name; });
  return table;
}

// A bare repository (HEAD and objects/) or a work tree with .git (a directory or, for a
// linked work tree or submodule, a file).
bool IsGitRepository(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return false;
  if (fs::exists(fs::path(path) / ".git", ec)) return true;
  return fs::is_regular_file(fs::path(path) / "HEAD", ec) &&
         fs::is_directory(fs::path(path) / "objects", ec);
}

}  // namespace

// The rule of app names: lower-case letters, digits and '-', starting with a letter, 1..63.
bool IsRepoName(const std::string& name) {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

const char* ToString(RepoKind kind) {
  return kind == RepoKind::kPath ? "path" : "url";
}

std::string RepoEntry::Redacted() const {
  return kind == RepoKind::kPath ? location : git::RedactUrl(location);
}

Result<RepoTable> ParseReposFile(const std::string& text, const std::string& file) {
  if (text.size() > limits::kFileBytes)
    return Invalid(file + ":1:1: repos file is " + std::to_string(text.size()) +
                   " bytes; the limit is " + std::to_string(limits::kFileBytes) + " bytes");
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return RepoTable{};
    ExpandedSize().Visit(root, 1);
    return Read(root);
  } catch (const ReposError& e) {
    return Invalid(Where(file, e.mark) + ": " + e.message);
  } catch (const YAML::DeepRecursion& e) {
    return Invalid(Where(file, e.mark) + ": repos file nesting is deeper than " +
                   std::to_string(limits::kDepth) + " levels");
  } catch (const YAML::Exception& e) {
    return Invalid(Where(file, e.mark) + ": " + e.msg);
  }
}

Result<RepoTable> LoadReposFile(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound(path + ": cannot read the repos file: " + ec.message());
  // Checked before reading, so a huge file (or a device) is never read whole.
  if (size > limits::kFileBytes)
    return Invalid(path + ":1:1: repos file is " + std::to_string(size) + " bytes; the limit is " +
                   std::to_string(limits::kFileBytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot read the repos file");
  std::stringstream text;
  text << in.rdbuf();
  auto table = ParseReposFile(text.str(), path);
  if (!table.ok()) return table;
  for (const auto& e : *table) {
    if (e.kind == RepoKind::kPath && !IsGitRepository(e.location))
      return Invalid(path + ":" + std::to_string(e.line) + ":" + std::to_string(e.column) + ": " +
                     e.name + ": " + e.location + " is not a git repository on this node");
  }
  return table;
}

std::vector<std::string> RepoNames(const RepoTable& table) {
  std::vector<std::string> names;
  names.reserve(table.size());
  for (const auto& e : table) names.push_back(e.name);
  return names;
}

}  // namespace slipway
