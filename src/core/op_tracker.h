#pragma once
// Tracks the operations the control plane dispatched to nodes (remote agents over a
// WebSocket, or the local in-process agent) so that no operation is ever left stuck.
//
// A pure state machine in the style of PipelineMachine: no I/O, no threads, time enters only
// through the `now` arguments. Every input returns the OpActions the caller must carry out
// (send the op, send a cancel, fail the deployment, deliver an event, ...), in order.
//
//   Submit → queued (node full or lost) ──slot frees──→ running ──result──→ succeeded/failed
//                                                        │  ▲                 (cancelled when
//                                     silent > stall_after  │ heartbeat/event   a cancel was
//                                                        ▼  │                   sent first)
//                                                      stalled
//   running/stalled and the lease passed (Tick, NodeLost) → given_up + kFailDeployment
//   queued + Cancel → cancelled at once
//
// The lease is the only thing that gives up a sent op: a node that drops its connection and
// reconnects (replaying its events) before the lease passes keeps its ops.
//
// Thread-safety: not thread-safe. One owner drives it (e.g. the control plane's event loop).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace slipway {

struct OpTrackerOptions {
  // How long a sent op lives without news from its node (heartbeat listing it, or an event)
  // before it is given up. Renewed by every such piece of news.
  std::chrono::milliseconds lease{std::chrono::seconds(60)};
  // Silence after which a running op is shown as stalled (still within its lease).
  std::chrono::milliseconds stall_after{std::chrono::seconds(10)};
  // Ops sent to one node at once; the rest wait queued. REQUIRES: >= 1.
  int max_running_per_node = 4;
};

enum class OpState {
  kQueued,     // waiting for a free slot on its node; never sent
  kRunning,    // sent; the node is heard from
  kStalled,    // sent; the node has been silent longer than stall_after, lease not expired
  kSucceeded,  // terminal: first result was ok
  kFailed,     // terminal: first result was an error
  kCancelled,  // terminal: cancelled while queued, or a result arrived after a cancel
  kGivenUp,    // terminal: the lease passed without news; the deployment was failed
};
const char* ToString(OpState s);
// True for the states an op never leaves.
bool IsTerminal(OpState s);

enum class OpActionKind {
  kSend,                // send op `op_id` to its node
  kSendCancel,          // ask the node to cancel `op_id`
  kSendStopOp,          // tell a returning node to stop `op_id` and clean up (it was given up)
  kFailDeployment,      // fail the deployment owning `op_id` with `message`
  kDeliverEvent,        // hand event `seq` of `op_id` on (to the log/stream)
  kDropDuplicateEvent,  // event `seq` of `op_id` is a replay of one already delivered
  kAckEvents,           // tell the node every event of `op_id` up to `seq` is delivered
};
const char* ToString(OpActionKind k);

struct OpAction {
  OpAction(OpActionKind kind, std::string op_id) : kind(kind), op_id(std::move(op_id)) {}
  OpAction(OpActionKind kind, std::string op_id, std::uint64_t seq)
      : kind(kind), op_id(std::move(op_id)), seq(seq) {}
  OpAction(OpActionKind kind, std::string op_id, std::string message)
      : kind(kind), op_id(std::move(op_id)), message(std::move(message)) {}
  bool operator==(const OpAction&) const = default;

  OpActionKind kind;
  std::string op_id;
  std::uint64_t seq = 0;  // kDeliverEvent, kDropDuplicateEvent, kAckEvents
  std::string message;    // kFailDeployment
};
// "kind op_id[ seq][ message]", for logs and test failures.
std::string ToString(const OpAction& a);

using OpActions = std::vector<OpAction>;

// One tracked op, as Find() shows it.
struct TrackedOp {
  std::string op_id;
  std::string node;
  OpState state = OpState::kQueued;
  std::uint64_t submitted = 0;         // submission order (1, 2, ...)
  Clock::time_point lease_deadline{};  // meaningful once sent
  Clock::time_point last_heard{};      // last news from the node about this op
  std::uint64_t last_seq = 0;          // highest event seq delivered (events start at 1)
  std::uint64_t missing_seq = 0;       // seq awaited after a gap was seen; 0 when none
  bool cancel_requested = false;       // kSendCancel went out; the result makes it kCancelled
  std::optional<bool> result_ok;       // the first result, once received
  std::string result_error;            // its error (empty when ok)
};

class OpTracker {
 public:
  explicit OpTracker(OpTrackerOptions options = {}) : options_(options) {}

  // Starts tracking `op_id` on `node`: kRunning + {kSend} when the node has a free slot and
  // is not lost, otherwise kQueued and nothing. A known op_id is idempotent: returns nothing
  // and changes nothing (even if `node` differs).
  OpActions Submit(const std::string& op_id, const std::string& node, Clock::time_point now);

  // The node is alive and running `running_op_ids`. Clears a NodeLost mark; renews the lease
  // of each listed op that is running or stalled there (stalled → running); a listed op that
  // was given up gets {kSendStopOp}. Other listed ids are ignored; running ops it does NOT
  // list are not renewed (they expire with their lease). Then starts queued ops in free slots.
  OpActions NodeHeartbeat(const std::string& node, const std::vector<std::string>& running_op_ids,
                          Clock::time_point now);

  // Event `seq` of `op_id` (seqs are dense, starting at 1). For a running/stalled op:
  //  - seq == last+1: {kDeliverEvent seq, kAckEvents seq}; renews the lease, un-stalls.
  //  - seq <= last:   a replay: {kDropDuplicateEvent seq, kAckEvents last} (the re-ack lets a
  //                   node that lost our ack trim its buffer).
  //  - seq >  last+1: a gap: nothing is delivered or acked; `missing_seq` records last+1 and
  //                   the caller waits for the node to replay from there (it replays because
  //                   it was not acked). The lease is still renewed: the node is alive.
  // For a finished op a replay (seq <= last) is still dropped and re-acked; anything newer is
  // ignored. Unknown or queued ops: nothing.
  OpActions Event(const std::string& op_id, std::uint64_t seq, Clock::time_point now);

  // The node's result for `op_id`. Only the first result of a running/stalled op counts: it
  // becomes kSucceeded/kFailed (kCancelled if a cancel was sent), frees the slot, and queued
  // ops of that node start in submission order ({kSend} each). Duplicates, results for
  // given-up, queued or unknown ops are ignored and return nothing.
  OpActions Result(const std::string& op_id, bool ok, const std::string& error,
                   Clock::time_point now);

  // Queued → kCancelled at once (returns nothing: nothing was sent). Running/stalled →
  // {kSendCancel} once; the op stays running until its result (or lease) ends it. Terminal or
  // unknown ops, or a repeated cancel: nothing.
  OpActions Cancel(const std::string& op_id, Clock::time_point now);

  // The node's connection is gone. Its running ops become kStalled; those whose lease passed
  // are given up ({kFailDeployment "node <name> lost"}). Queued ops of the node stay queued
  // (they were never sent) and do not start until the node heartbeats again; Cancel them to
  // drop them. Ops that were sent are not given up before their lease passes, so a reconnect
  // within the lease keeps them.
  OpActions NodeLost(const std::string& node, Clock::time_point now);

  // Applies time: running/stalled ops whose lease passed (now >= deadline) → kGivenUp +
  // {kFailDeployment "node <name> lost"}; running ops silent longer than stall_after →
  // kStalled. Slots freed by give-ups start queued ops ({kSend}) unless the node is lost.
  OpActions Tick(Clock::time_point now);

  // Stops tracking a finished op (succeeded, failed or cancelled), so that a long-lived
  // tracker does not grow. Given-up ops are kept: a returning node must still be told to stop
  // them. Later news of a forgotten op is treated as news of an unknown op. Returns whether
  // it forgot anything.
  bool Forget(const std::string& op_id);

  // The state of `op_id`, or nullopt when unknown.
  std::optional<OpState> State(const std::string& op_id) const;
  // How many tracked ops are in `state`.
  std::size_t CountByState(OpState state) const;
  // The full record of `op_id`, or nullptr when unknown. Valid until the next mutating call.
  const TrackedOp* Find(const std::string& op_id) const;

 private:
  struct NodeSlots {
    int active = 0;  // ops running or stalled on the node
    bool lost = false;
    std::deque<std::string> queued;  // op ids in submission order
  };

  static bool Active(const TrackedOp& op) {
    return op.state == OpState::kRunning || op.state == OpState::kStalled;
  }
  void Start(TrackedOp& op, Clock::time_point now, OpActions& out);
  void FillSlots(const std::string& node, Clock::time_point now, OpActions& out);
  void Renew(TrackedOp& op, Clock::time_point now);
  void Finish(TrackedOp& op, OpState state);
  void GiveUp(TrackedOp& op, OpActions& out);
  // Gives up `op` if its lease passed; returns whether it did.
  bool ExpireIfDue(TrackedOp& op, Clock::time_point now, OpActions& out);

  OpTrackerOptions options_;
  std::map<std::string, TrackedOp> ops_;
  std::map<std::string, NodeSlots> nodes_;
  std::uint64_t next_submitted_ = 1;
};

}  // namespace slipway
