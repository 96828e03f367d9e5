#include "control/rollout_board.h"

namespace slipway {

void RolloutBoard::Publish(const std::string& app, nlohmann::json status, bool running) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[app];
  e.status = std::move(status);
  e.running = running;
  if (!running) e.pending.reset();
}

std::optional<nlohmann::json> RolloutBoard::Get(const std::string& app) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(app);
  if (it == entries_.end()) return std::nullopt;
  return it->second.status;
}

Status RolloutBoard::Request(const std::string& app, RolloutCommand command) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(app);
  if (it == entries_.end() || !it->second.running)
    return Conflict("no rollout in progress for " + app);
  Entry& e = it->second;
  const std::string state = e.status.value("state", "");
  const bool abort = command.kind == RolloutCommand::Kind::kAbort;
  // Once every stage passed, the switch is under way: an abort would be accepted and never
  // carried out. A rollback is the way back then.
  if (state == "switching" || state == "aborted")
    return Conflict("the rollout of " + app + " is " + state +
                    (state == "switching" ? ": every stage passed; use slipway rollback" : ""));
  if (abort) {
    e.pending = std::move(command);  // replaces a promote; a second abort changes nothing
    return Status::Ok();
  }
  if (e.pending && e.pending->kind == RolloutCommand::Kind::kAbort)
    return Conflict("an abort of the rollout of " + app + " is already under way");
  if (state != "baking" && state != "paused")
    return Conflict("the rollout of " + app + " is " + state +
                    ": only a baking or paused stage can be promoted");
  e.pending = std::move(command);
  return Status::Ok();
}

std::optional<RolloutCommand> RolloutBoard::Take(const std::string& app) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(app);
  if (it == entries_.end() || !it->second.pending) return std::nullopt;
  auto c = std::move(it->second.pending);
  it->second.pending.reset();
  return c;
}

}  // namespace slipway
