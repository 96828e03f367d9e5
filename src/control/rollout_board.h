#pragma once
// Where a running rollout and the people watching it meet: the Deployer publishes the
// rollout's status after every step and takes the commands (promote, abort) that the API
// left for it. One entry per app; the last status of a finished rollout stays readable
// until the next one (or a restart). Thread-safe.
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace slipway {

struct RolloutCommand {
  enum class Kind { kPromote, kAbort };
  Kind kind = Kind::kPromote;
  std::string who;
};

class RolloutBoard {
 public:
  // `status` is the API's JSON (docs/ROLLOUTS.md); `running` false once it ended.
  void Publish(const std::string& app, nlohmann::json status, bool running);
  std::optional<nlohmann::json> Get(const std::string& app) const;
  // Leaves a command for the app's running rollout. kConflict (nothing left) when no rollout
  // runs, once it is switching (every stage passed) or aborted, and for a promote unless it
  // is baking or paused, or while an abort is pending. An abort replaces a pending promote.
  Status Request(const std::string& app, RolloutCommand command);
  // The oldest command left for the app, taken by the Deployer.
  std::optional<RolloutCommand> Take(const std::string& app);

 private:
  struct Entry {
    nlohmann::json status;
    bool running = false;
    std::optional<RolloutCommand> pending;  // one at a time: an abort replaces a promote
  };
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace slipway
