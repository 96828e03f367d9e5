// Parsing of the sandbox verbs' --service values (cli/sandbox_args.h).
#include "cli/sandbox_args.h"

#include <fmt/format.h>

namespace slipway::cli {
namespace {

constexpr const char* kSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

// The value as it may be repeated in one line: printable ASCII, at most 80 characters.
std::string Quoted(const std::string& arg) {
  std::string out;
  for (char c : arg.substr(0, 80)) out += c >= 0x20 && c < 0x7f ? c : '?';
  return "'" + out + (arg.size() > 80 ? "…'" : "'");
}

Status Bad(const std::string& arg) {
  return Invalid(
      fmt::format("--service {}: expected SVC=branch:BRANCH or SVC=upstream", Quoted(arg)));
}

}  // namespace

bool PathSafe(const std::string& name) {
  return !name.empty() && name.size() <= 64 && name.find_first_not_of(kSafe) == std::string::npos;
}

Result<nlohmann::json> ParseServiceArg(const std::string& arg) {
  auto eq = arg.find('=');
  if (eq == std::string::npos) return Bad(arg);
  std::string name = arg.substr(0, eq), what = arg.substr(eq + 1);
  if (!PathSafe(name)) return Bad(arg);
  if (what == "upstream") return nlohmann::json{{"name", name}, {"upstream", true}};
  const std::string prefix = "branch:";
  if (what.rfind(prefix, 0) != 0 || what.size() == prefix.size()) return Bad(arg);
  return nlohmann::json{{"name", name}, {"branch", what.substr(prefix.size())}};
}

Result<nlohmann::json> ParseServiceArgs(const std::vector<std::string>& args) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& arg : args) {
    auto one = ParseServiceArg(arg);
    if (!one.ok()) return one.status();
    list.push_back(*one);
  }
  return list;
}

std::string FormatBytes(long long bytes) {
  if (bytes <= 0) return "-";
  static const char* kUnits[] = {"TiB", "GiB", "MiB", "KiB"};
  for (int i = 0; i < 4; ++i) {
    long long unit = 1LL << (10 * (4 - i));
    if (bytes % unit == 0) return fmt::format("{}{}", bytes / unit, kUnits[i]);
  }
  return fmt::format("{}B", bytes);
}

}  // namespace slipway::cli
