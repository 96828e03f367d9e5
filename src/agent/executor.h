#pragma once
// The node side of the agent protocol (docs/PROTOCOL.md): takes `op`, `cancel`, `ack` and
// `stop_op` frames, runs each op on its own thread through a local Agent, and sends back
// `event` and `result` frames with dense per-op sequence numbers. Used by `slipway agent` on a
// remote node and by the server's in-process local node alike.
//
// Delivery: every event and result stays in the outbox (agent/outbox.h) until the control
// plane acks it, and the whole outbox is sent again after each reconnect (Connected), in order,
// before anything new: the control plane drops what it already has, so nothing is lost or
// doubled. With an outbox directory the outbox also outlives the process: a new executor on it
// sends what the last one left unacked, answers a re-sent op with its first result, and answers
// one that was running when the process ended with a failed result ("interrupted") instead of
// running it again.
//
// Thread-safety: every method may be called from any thread. `send` is called with the
// executor's lock held (that is what keeps frames in order): it must not block and must not
// call back into the executor.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/outbox.h"
#include "core/protocol.h"

namespace slipway {

struct ExecutorOptions {
  std::string root;       // the node's data directory (absolute); wire paths resolve under it
  std::string term_file;  // where the highest term seen is kept; "" = in memory only
  std::size_t max_remembered = 4096;                           // finished ops kept for idempotence
  std::size_t max_outbox_bytes = 64u << 20;                    // unacked output kept for replay
  std::chrono::milliseconds slow_op{std::chrono::seconds(2)};  // for the log only
  // Where unacked events and results are kept on disk, and restored from at construction;
  // "" = in memory only. A directory that cannot be used is logged and memory is used.
  std::string outbox_dir;
};

// What an op sees while it runs: where its output goes and whether to stop.
struct OpContext {
  std::function<void(protocol::EventKind, nlohmann::json)> emit;
  const std::atomic<bool>* cancel = nullptr;
  std::string root;
};

// Runs one op of `kind` with `args` on `worker` (agent/executor_ops.cpp). The value of an ok
// result, or the failure as a Status (its code travels in the result's value.code). May throw
// on malformed args; the caller's boundary turns that into "invalid args".
Result<nlohmann::json> RunOpKind(Agent& worker, const std::string& kind, const nlohmann::json& args,
                                 const OpContext& ctx);

class OpExecutor {
 public:
  // Returns false when the frame could not be queued (not connected): it stays in the outbox.
  using Send = std::function<bool(const std::string& text)>;

  // `worker` runs the ops and must outlive the executor. Restores the outbox directory's ops
  // (finished or interrupted): they are held like finished ops until their result is acked.
  OpExecutor(Agent& worker, ExecutorOptions options);
  // Cancels the running ops and joins their threads.
  ~OpExecutor();
  OpExecutor(const OpExecutor&) = delete;
  OpExecutor& operator=(const OpExecutor&) = delete;

  // What the hello lists: for each op with unacked events, the highest seq buffered (restored
  // ones included).
  std::map<std::string, std::uint64_t> LastSeq() const;
  // The ops running now, for heartbeats.
  std::vector<std::string> Running() const;
  // The highest term seen (persisted in term_file).
  std::uint64_t term() const;

  // A connection is up (welcome received, its term applied): sends the whole outbox, then
  // everything new through `send`.
  void Connected(Send send);
  // The connection is gone: frames stay in the outbox until the next Connected.
  void Disconnected();

  // A frame from the control plane. Never throws.
  void OnFrame(const protocol::Frame& frame);

 private:
  struct OpRun;
  void StartOp(const protocol::Op& op);
  void RunOp(std::shared_ptr<OpRun> run);
  void Emit(OpRun& run, protocol::EventKind kind, nlohmann::json data);
  void Finish(OpRun& run, protocol::OpResult result);
  void OnAck(const protocol::Ack& ack);
  void Restore();
  void OnCancel(const std::string& op_id, bool given_up);
  void SendLocked(const std::string& text);
  void ObserveTerm(std::uint64_t term);
  void Forget();
  void Watchdog();

  Agent& worker_;
  ExecutorOptions options_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  Send send_;  // empty while disconnected
  std::uint64_t term_ = 0;
  std::map<std::string, std::shared_ptr<OpRun>> ops_;  // by op id
  std::deque<std::string> finished_;                   // op ids, oldest first
  Outbox outbox_;                                      // unacked events and results, by op
  Outbox::Sink send_locked_;                           // SendLocked, for the outbox
  int active_threads_ = 0;  // op threads (detached) still running; the destructor waits for 0
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace slipway
