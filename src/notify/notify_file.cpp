#include "notify/notify_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace slipway {
namespace {

namespace limits = notify_limits;

// Thrown while reading the tree, caught in ParseNotifyFile; nothing escapes this file.
struct NotifyFileError {
  YAML::Mark mark;
  std::string message;
};

[[noreturn]] void Fail(const YAML::Node& node, const std::string& message) {
  throw NotifyFileError{node.Mark(), message};
}

std::string Where(const std::string& file, const YAML::Mark& mark) {
  // yaml-cpp marks are 0-based; editors count from 1.
  if (mark.line < 0) return file + ":1:1";
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

const std::set<std::string>& Keys() {
  static const std::set<std::string> kKeys = {"name",   "kind", "url",    "secret",
                                              "events", "apps", "ca_file"};
  return kKeys;
}

// A key for a message: as written when it is a short plain word (a URL written as a key by
// mistake is not repeated), else nothing.
std::string ShownKey(const std::string& key) {
  bool plain = !key.empty() && key.size() <= 32 && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return plain ? " '" + key + "'" : "";
}

// A text field: a scalar, or nothing (null) for "".
std::string Text(const YAML::Node& value, const std::string& where) {
  if (value.IsNull()) return "";
  if (!value.IsScalar()) Fail(value, where + ": expected a text");
  return value.Scalar();
}

// A list of words: a sequence of at most `max` scalars (checked before any is read, so an
// alias to a huge list costs nothing), or nothing (null).
std::vector<std::string> Words(const YAML::Node& value, const std::string& where, std::size_t max) {
  std::vector<std::string> out;
  if (value.IsNull()) return out;
  if (!value.IsSequence()) Fail(value, where + ": expected a list");
  if (value.size() > max) Fail(value, where + ": at most " + std::to_string(max) + " entries");
  for (const auto& item : value) {
    if (!item.IsScalar()) Fail(item, where + ": expected a list of names");
    out.push_back(item.Scalar());
  }
  return out;
}

NotifyTarget ReadTarget(const YAML::Node& node, std::size_t index) {
  const std::string where = "targets[" + std::to_string(index) + "]";
  if (!node.IsMap()) Fail(node, where + ": expected a mapping (kind, url, …)");
  NotifyTarget t;
  std::map<std::string, YAML::Node> fields;  // key → its value, for the marks of errors
  for (const auto& kv : node) {
    if (!kv.first.IsScalar() || !Keys().count(kv.first.Scalar()))
      Fail(kv.first, where + ": unknown key" +
                         (kv.first.IsScalar() ? ShownKey(kv.first.Scalar()) : std::string()) +
                         " (name, kind, url, secret, events, apps, ca_file)");
    const std::string& key = kv.first.Scalar();
    // yaml-cpp keeps both of two equal keys: the second must not silently lose.
    if (!fields.emplace(key, kv.second).second)
      Fail(kv.first, where + ": duplicate key '" + key + "'");
    const std::string field = where + "." + key;
    if (key == "name") t.name = Text(kv.second, field);
    if (key == "kind") t.kind = Text(kv.second, field);
    if (key == "url") t.url = Text(kv.second, field);
    if (key == "secret") t.secret = Text(kv.second, field);
    if (key == "ca_file") t.ca_file = Text(kv.second, field);
    if (key == "events") t.events = Words(kv.second, field, 16);
    if (key == "apps") t.apps = Words(kv.second, field, limits::kApps);
  }
  if (Status s = ValidateTarget(t); !s.ok()) {
    // The message starts with the field it is about ("url: ..."): point at that field.
    std::string field = s.message().substr(0, s.message().find(':'));
    auto it = fields.find(field);
    Fail(it != fields.end() ? it->second : node, where + "." + s.message());
  }
  return t;
}

std::vector<NotifyTarget> Read(const YAML::Node& root) {
  if (!root.IsMap()) Fail(root, "expected a mapping with 'targets'");
  std::vector<NotifyTarget> out;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar() || kv.first.Scalar() != "targets")
      Fail(kv.first, "unknown key" +
                         (kv.first.IsScalar() ? ShownKey(kv.first.Scalar()) : std::string()) +
                         " (the file has one key, targets)");
    if (!out.empty()) Fail(kv.first, "duplicate key 'targets'");
    const YAML::Node& targets = kv.second;
    if (targets.IsNull()) continue;
    if (!targets.IsSequence()) Fail(targets, "targets: expected a list");
    if (targets.size() > limits::kTargets)
      Fail(targets, "targets: at most " + std::to_string(limits::kTargets) + " targets");
    std::set<std::string> names;
    std::size_t index = 0;
    for (const auto& item : targets) {
      NotifyTarget t = ReadTarget(item, index++);
      if (!t.name.empty() && !names.insert(t.name).second)
        Fail(item, "targets[" + std::to_string(index - 1) + "]: duplicate name '" + t.name + "'");
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::string TooLarge(const std::string& file, std::uintmax_t size) {
  return file + ":1:1: notify file is " + std::to_string(size) + " bytes; the limit is " +
         std::to_string(limits::kFileBytes) + " bytes";
}

}  // namespace

Result<std::vector<NotifyTarget>> ParseNotifyFile(const std::string& text,
                                                  const std::string& file) {
  if (text.size() > limits::kFileBytes) return Invalid(TooLarge(file, text.size()));
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return std::vector<NotifyTarget>{};
    return Read(root);
  } catch (const NotifyFileError& e) {
    return Invalid(Where(file, e.mark) + ": " + e.message);
  } catch (const YAML::Exception& e) {
    // A syntax error: yaml-cpp's message describes the syntax, not the text.
    return Invalid(Where(file, e.mark) + ": " + e.msg);
  }
}

Result<std::vector<NotifyTarget>> LoadNotifyFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return NotFound(path + ": cannot read the notify file (not a regular file)");
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound(path + ": cannot read the notify file: " + ec.message());
  // Checked before reading, so a huge file is never read whole.
  if (size > limits::kFileBytes) return Invalid(TooLarge(path, size));
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot read the notify file");
  std::stringstream text;
  text << in.rdbuf();
  return ParseNotifyFile(text.str(), path);
}

}  // namespace slipway
