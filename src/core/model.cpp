#include "core/model.h"

#include <algorithm>
#include <array>
#include <utility>

namespace slipway {
namespace {

constexpr std::array<std::pair<Stage, const char*>, 13> kStages{{
    {Stage::kQueued, "queued"},
    {Stage::kFetch, "fetch"},
    {Stage::kCheckout, "checkout"},
    {Stage::kBuild, "build"},
    {Stage::kTest, "test"},
    {Stage::kRelease, "release"},
    {Stage::kStart, "start"},
    {Stage::kVerify, "verify"},
    {Stage::kRollout, "rollout"},
    {Stage::kSwitch, "switch"},
    {Stage::kWatch, "watch"},
    {Stage::kDrain, "drain"},
    {Stage::kDone, "done"},
}};

constexpr std::array<std::pair<DeployStatus, const char*>, 6> kStatuses{{
    {DeployStatus::kQueued, "queued"},
    {DeployStatus::kRunning, "running"},
    {DeployStatus::kSucceeded, "succeeded"},
    {DeployStatus::kFailed, "failed"},
    {DeployStatus::kRolledBack, "rolled_back"},
    {DeployStatus::kCancelled, "cancelled"},
}};

constexpr std::array<std::pair<GatewayMode, const char*>, 3> kGatewayModes{{
    {GatewayMode::kOpen, "open"},
    {GatewayMode::kPaused, "paused"},
    {GatewayMode::kMaintenance, "maintenance"},
}};

template <typename E, std::size_t N>
const char* Name(const std::array<std::pair<E, const char*>, N>& table, E e) {
  for (const auto& [value, name] : table)
    if (value == e) return name;
  return "unknown";
}

template <typename E, std::size_t N>
std::optional<E> Parse(const std::array<std::pair<E, const char*>, N>& table,
                       const std::string& s) {
  for (const auto& [value, name] : table)
    if (s == name) return value;
  return std::nullopt;
}

}  // namespace

const char* ToString(Stage s) {
  return Name(kStages, s);
}
std::optional<Stage> StageFromString(const std::string& s) {
  return Parse(kStages, s);
}
const char* ToString(DeployStatus s) {
  return Name(kStatuses, s);
}
std::optional<DeployStatus> DeployStatusFromString(const std::string& s) {
  return Parse(kStatuses, s);
}
const char* ToString(GatewayMode m) {
  return Name(kGatewayModes, m);
}
std::optional<GatewayMode> GatewayModeFromString(const std::string& s) {
  return Parse(kGatewayModes, s);
}

std::string JoinNodes(const std::vector<std::string>& nodes) {
  std::string out;
  for (const auto& n : nodes) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::vector<std::string> SplitNodes(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = std::min(text.find(',', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (out.empty()) out.push_back("local");
  return out;
}

}  // namespace slipway
