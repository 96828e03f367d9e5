#pragma once
// What the manifest's readers share (manifest.cpp, manifest_rollout.cpp): the error they
// throw, value parsers and the Reader that checks one node at a time. Internal to
// src/manifest/.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "manifest/manifest.h"

namespace slipway::manifest_detail {

namespace limits = manifest_limits;

// Thrown by Reader::Fail and caught by ParseManifest, which turns it into file:line:column.
struct ManifestError {
  YAML::Mark mark;
  std::string message;
};

enum class Parsed { kOk, kMalformed, kTooLarge };

constexpr long long kKiB = 1LL << 10;
constexpr long long kMiB = 1LL << 20;
constexpr long long kGiB = 1LL << 30;
constexpr long long kTiB = 1LL << 40;

Parsed ParseDurationMs(std::string_view text, long long& ms);
Parsed ParseBytesValue(std::string_view text, long long& out);
// The largest whole unit, as a user would write it: 0s, 100ms, 1m, 24h.
std::string FormatDuration(std::chrono::milliseconds d);
std::string FormatBytes(long long n);
// A user's value quoted in a message, cut short (on a character boundary) so that an error
// stays one readable line.
std::string Shown(const std::string& s);

// Error-reporting helpers bound to the node being read. Throws ManifestError, caught in
// ParseManifest; nothing escapes this file.
class Reader {
 public:
  [[noreturn]] static void Fail(const YAML::Node& node, const std::string& msg) {
    throw ManifestError{node.Mark(), msg};
  }

  static void Length(const YAML::Node& node, const std::string& key, std::size_t max_bytes) {
    const std::size_t n = node.Scalar().size();
    if (n > max_bytes) {
      Fail(node, key + ": too long (" + std::to_string(n) + " bytes; the limit is " +
                     std::to_string(max_bytes) + ")");
    }
  }

  static std::string Scalar(const YAML::Node& node, const std::string& key,
                            std::size_t max_bytes = limits::kStringBytes) {
    if (!node.IsScalar()) Fail(node, key + ": expected a string");
    Length(node, key, max_bytes);
    return node.Scalar();
  }

  // A list of strings (or one string): at most `max_items` of `noun`, each at most
  // `max_bytes`.
  static std::vector<std::string> Steps(const YAML::Node& node, const std::string& key,
                                        const std::string& noun, std::size_t max_items,
                                        std::size_t max_bytes) {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      Length(node, key, max_bytes);
      out.push_back(node.Scalar());
      return out;
    }
    if (!node.IsSequence()) Fail(node, key + ": expected a list of shell commands");
    for (const auto& item : node) {
      if (out.size() == max_items)
        Fail(item,
             key + ": too many " + noun + " (the limit is " + std::to_string(max_items) + ")");
      if (!item.IsScalar() || item.Scalar().empty())
        Fail(item, key + ": each step must be a command string");
      Length(item, key, max_bytes);
      out.push_back(item.Scalar());
    }
    return out;
  }

  static std::chrono::milliseconds Duration(const YAML::Node& node, const std::string& key,
                                            std::chrono::milliseconds min,
                                            std::chrono::milliseconds max) {
    long long ms = 0;
    Parsed p = node.IsScalar() ? ParseDurationMs(node.Scalar(), ms) : Parsed::kMalformed;
    if (p == Parsed::kMalformed) Fail(node, key + ": expected a duration like 10s or 500ms");
    if (p == Parsed::kTooLarge || ms < min.count() || ms > max.count()) {
      Fail(node, key + ": must be between " + FormatDuration(min) + " and " + FormatDuration(max));
    }
    return std::chrono::milliseconds(ms);
  }

  static long long Bytes(const YAML::Node& node, const std::string& key, long long min,
                         long long max) {
    long long n = 0;
    Parsed p = node.IsScalar() ? ParseBytesValue(node.Scalar(), n) : Parsed::kMalformed;
    if (p == Parsed::kMalformed) Fail(node, key + ": expected a size like 256MiB");
    if (p == Parsed::kTooLarge || n < min || n > max)
      Fail(node, key + ": must be between " + FormatBytes(min) + " and " + FormatBytes(max));
    return n;
  }

  static int Int(const YAML::Node& node, const std::string& key, int min, int max) {
    if (!node.IsScalar()) Fail(node, key + ": expected a number");
    const std::string& s = node.Scalar();
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v < min || v > max) {
      Fail(node, key + ": expected a whole number from " + std::to_string(min) + " to " +
                     std::to_string(max));
    }
    return static_cast<int>(v);
  }

  // A decimal number in [min, max] ("0.05", "2", "1e-3"); NaN and infinities fail.
  static double Number(const YAML::Node& node, const std::string& key, double min, double max) {
    char* end = nullptr;
    double v = node.IsScalar() ? std::strtod(node.Scalar().c_str(), &end) : -1;
    if (!node.IsScalar() || node.Scalar().empty() || *end != '\0' || !(v >= min && v <= max)) {
      Fail(node, key + ": expected a number from " + Trimmed(min) + " to " + Trimmed(max));
    }
    return v;
  }
  static std::string Trimmed(double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  static double Cpus(const YAML::Node& node) {
    char* end = nullptr;
    double cpus = node.IsScalar() ? std::strtod(node.Scalar().c_str(), &end) : -1;
    // Written so that NaN fails too.
    if (!node.IsScalar() || *end != '\0' || !(cpus > 0 && cpus <= 1024))
      Fail(node, "run.cpus: expected a positive number like 0.5");
    return cpus;
  }

  // Rejects keys outside `allowed`, so a typo is an error and not a silent default.
  static void Keys(const YAML::Node& node, const std::string& where,
                   const std::set<std::string>& allowed) {
    if (!node.IsMap()) Fail(node, (where.empty() ? "manifest" : where) + ": expected a mapping");
    std::set<std::string> seen;
    for (const auto& kv : node) {
      // yaml-cpp keeps the first of two equal keys and never reads the second: refuse it, so
      // a value that looks set (and was never validated) cannot hide behind another.
      if (!seen.insert(kv.first.Scalar()).second) {
        const std::string key = Shown(kv.first.Scalar());
        Fail(kv.first, "duplicate key '" + (where.empty() ? key : where + "." + key) + "'");
      }
      if (!allowed.count(kv.first.Scalar())) {
        const std::string key = Shown(kv.first.Scalar());
        std::string known;
        for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
        Fail(kv.first, "unknown key '" + (where.empty() ? key : where + "." + key) +
                           "' (expected one of: " + known + ")");
      }
    }
  }
};

}  // namespace slipway::manifest_detail
