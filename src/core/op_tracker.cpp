#include "core/op_tracker.h"

#include <algorithm>
#include <set>
#include <utility>

namespace slipway {

const char* ToString(OpState s) {
  switch (s) {
    case OpState::kQueued:
      return "queued";
    case OpState::kRunning:
      return "running";
    case OpState::kStalled:
      return "stalled";
    case OpState::kSucceeded:
      return "succeeded";
    case OpState::kFailed:
      return "failed";
    case OpState::kCancelled:
      return "cancelled";
    case OpState::kGivenUp:
      return "given_up";
  }
  return "unknown";
}

bool IsTerminal(OpState s) {
  return s == OpState::kSucceeded || s == OpState::kFailed || s == OpState::kCancelled ||
         s == OpState::kGivenUp;
}

const char* ToString(OpActionKind k) {
  switch (k) {
    case OpActionKind::kSend:
      return "send";
    case OpActionKind::kSendCancel:
      return "send_cancel";
    case OpActionKind::kSendStopOp:
      return "send_stop_op";
    case OpActionKind::kFailDeployment:
      return "fail_deployment";
    case OpActionKind::kDeliverEvent:
      return "deliver_event";
    case OpActionKind::kDropDuplicateEvent:
      return "drop_duplicate_event";
    case OpActionKind::kAckEvents:
      return "ack_events";
  }
  return "unknown";
}

std::string ToString(const OpAction& a) {
  std::string s = std::string(ToString(a.kind)) + " " + a.op_id;
  if (a.seq != 0) s += " " + std::to_string(a.seq);
  if (!a.message.empty()) s += " " + a.message;
  return s;
}

void OpTracker::Start(TrackedOp& op, Clock::time_point now, OpActions& out) {
  op.state = OpState::kRunning;
  Renew(op, now);
  ++nodes_[op.node].active;
  out.emplace_back(OpActionKind::kSend, op.op_id);
}

void OpTracker::FillSlots(const std::string& node, Clock::time_point now, OpActions& out) {
  NodeSlots& slots = nodes_[node];
  while (!slots.lost && slots.active < options_.max_running_per_node && !slots.queued.empty()) {
    TrackedOp& op = ops_.at(slots.queued.front());
    slots.queued.pop_front();
    Start(op, now, out);
  }
}

void OpTracker::Renew(TrackedOp& op, Clock::time_point now) {
  op.last_heard = now;
  op.lease_deadline = now + options_.lease;
  if (op.state == OpState::kStalled) op.state = OpState::kRunning;
}

// Moves an active op to a terminal state and frees its slot. The caller refills the slot.
void OpTracker::Finish(TrackedOp& op, OpState state) {
  op.state = state;
  --nodes_[op.node].active;
}

void OpTracker::GiveUp(TrackedOp& op, OpActions& out) {
  Finish(op, OpState::kGivenUp);
  out.emplace_back(OpActionKind::kFailDeployment, op.op_id, "node " + op.node + " lost");
}

bool OpTracker::ExpireIfDue(TrackedOp& op, Clock::time_point now, OpActions& out) {
  if (!Active(op) || now < op.lease_deadline) return false;
  GiveUp(op, out);
  return true;
}

OpActions OpTracker::Submit(const std::string& op_id, const std::string& node,
                            Clock::time_point now) {
  OpActions out;
  auto [it, inserted] = ops_.try_emplace(op_id);
  if (!inserted) return out;
  TrackedOp& op = it->second;
  op.op_id = op_id;
  op.node = node;
  op.submitted = next_submitted_++;
  nodes_[node].queued.push_back(op_id);
  FillSlots(node, now, out);
  return out;
}

OpActions OpTracker::NodeHeartbeat(const std::string& node,
                                   const std::vector<std::string>& running_op_ids,
                                   Clock::time_point now) {
  OpActions out;
  nodes_[node].lost = false;
  for (const std::string& id : running_op_ids) {
    auto it = ops_.find(id);
    if (it == ops_.end() || it->second.node != node) continue;
    TrackedOp& op = it->second;
    if (Active(op)) {
      Renew(op, now);
    } else if (op.state == OpState::kGivenUp) {
      out.emplace_back(OpActionKind::kSendStopOp, id);
    }
  }
  FillSlots(node, now, out);
  return out;
}

OpActions OpTracker::Event(const std::string& op_id, std::uint64_t seq, Clock::time_point now) {
  OpActions out;
  auto it = ops_.find(op_id);
  if (it == ops_.end() || it->second.state == OpState::kQueued) return out;
  TrackedOp& op = it->second;
  if (seq <= op.last_seq) {
    out.emplace_back(OpActionKind::kDropDuplicateEvent, op_id, seq);
    out.emplace_back(OpActionKind::kAckEvents, op_id, op.last_seq);
    return out;
  }
  if (!Active(op)) return out;
  Renew(op, now);
  if (seq > op.last_seq + 1) {
    op.missing_seq = op.last_seq + 1;
    return out;
  }
  op.last_seq = seq;
  op.missing_seq = 0;
  out.emplace_back(OpActionKind::kDeliverEvent, op_id, seq);
  out.emplace_back(OpActionKind::kAckEvents, op_id, seq);
  return out;
}

OpActions OpTracker::Result(const std::string& op_id, bool ok, const std::string& error,
                            Clock::time_point now) {
  OpActions out;
  auto it = ops_.find(op_id);
  if (it == ops_.end() || !Active(it->second)) return out;
  TrackedOp& op = it->second;
  op.result_ok = ok;
  op.result_error = ok ? std::string() : error;
  OpState final_state = ok ? OpState::kSucceeded : OpState::kFailed;
  if (op.cancel_requested) final_state = OpState::kCancelled;
  Finish(op, final_state);
  FillSlots(op.node, now, out);
  return out;
}

OpActions OpTracker::Cancel(const std::string& op_id, Clock::time_point /*now*/) {
  OpActions out;
  auto it = ops_.find(op_id);
  if (it == ops_.end()) return out;
  TrackedOp& op = it->second;
  if (op.state == OpState::kQueued) {
    std::deque<std::string>& queued = nodes_[op.node].queued;
    queued.erase(std::find(queued.begin(), queued.end(), op_id));
    op.state = OpState::kCancelled;
  } else if (Active(op) && !op.cancel_requested) {
    op.cancel_requested = true;
    out.emplace_back(OpActionKind::kSendCancel, op_id);
  }
  return out;
}

OpActions OpTracker::NodeLost(const std::string& node, Clock::time_point now) {
  OpActions out;
  nodes_[node].lost = true;
  for (auto& [id, op] : ops_) {
    if (op.node != node || ExpireIfDue(op, now, out)) continue;
    if (op.state == OpState::kRunning) op.state = OpState::kStalled;
  }
  return out;
}

OpActions OpTracker::Tick(Clock::time_point now) {
  OpActions out;
  std::set<std::string> freed;
  for (auto& [id, op] : ops_) {
    if (ExpireIfDue(op, now, out)) {
      freed.insert(op.node);
    } else if (op.state == OpState::kRunning && now - op.last_heard > options_.stall_after) {
      op.state = OpState::kStalled;
    }
  }
  for (const std::string& node : freed) FillSlots(node, now, out);
  return out;
}

std::optional<OpState> OpTracker::State(const std::string& op_id) const {
  const TrackedOp* op = Find(op_id);
  if (op == nullptr) return std::nullopt;
  return op->state;
}

std::size_t OpTracker::CountByState(OpState state) const {
  return static_cast<std::size_t>(
      std::count_if(ops_.begin(), ops_.end(),
                    [state](const auto& entry) { return entry.second.state == state; }));
}

const TrackedOp* OpTracker::Find(const std::string& op_id) const {
  auto it = ops_.find(op_id);
  return it == ops_.end() ? nullptr : &it->second;
}

bool OpTracker::Forget(const std::string& op_id) {
  auto it = ops_.find(op_id);
  if (it == ops_.end() || !IsTerminal(it->second.state) || it->second.state == OpState::kGivenUp)
    return false;
  ops_.erase(it);
  return true;
}

}  // namespace slipway
