#pragma once
// The agent's outbox: for each op, the `event` and `result` frames the control plane has not
// acknowledged yet (docs/PROTOCOL.md, "Replay after reconnect"). Kept in memory and, given a
// directory, on disk as well, so that they outlive the agent process.
//
// Per op, from Start until the control plane acks its result:
//   - the seq of its events (dense, from 1), assigned here;
//   - its unacked events, encoded, in seq order, then its result once it has one;
//   - a "started" marker: after a restart, an op found without a result was interrupted. Load
//     gives it a failed result (RestoredOp::interrupted) so that it is reported, and its op id
//     stays known, so that it never runs again.
//
// Bound: an output event is refused while the unacked events of all ops together exceed
// `max_bytes`; refused lines are counted per op and reported by one "N output lines dropped"
// output event ahead of that op's next kept event or its result. Progress and state events,
// those notices and results are always kept.
//
// On disk (`dir` non-empty), one file per op, `<dir>/<op_id>.op`, one record per line:
//   {"type":"start","op_id":ID,"kind":KIND,"n":ORDINAL}   first (ORDINAL orders the ops)
//   an encoded `event` frame                             each kept event, in seq order
//   an encoded `result` frame                            last, once the op has ended
// An op's args are never written (they may carry credentials), only its id and kind.
// A record is appended with one write(2) before its frame goes to the sink. Acked events stay
// in a file until they take at least max(compact_bytes, the bytes still unacked in it), or
// until the acked events of all files together exceed max_bytes / 4; the file is then
// rewritten without them (to `<op_id>.op.tmp`, renamed over), and it is deleted once the op's
// result is acked. So the files hold the unacked events (max_bytes, plus the last line let in
// and the notices), at most max_bytes / 4 of acked ones, and per op a marker and a result.
// Load skips a torn last line (a crash mid-write) and everything from the first record that
// is not the expected next one, so what it restores is always a dense run of seqs.
//
// Durability: a crash of the agent process (kill -9, abort, out of memory) loses nothing that
// was sent: every record is in the kernel's page cache before its frame is. A result is also
// fdatasync'ed before it is sent; nothing else is synced (not output, not the started marker,
// not the directory), so power loss or a kernel crash may lose the tail of a file, or the file
// of an op started within the file system's commit interval (such an op could then run again).
// Acks are not recorded one by one: after a restart, events acked since their file was last
// compacted are sent again (the control plane drops them by op id and seq). A failed write
// (disk full, I/O error) is logged once and that op goes on in memory only: its file is cut
// back to its last whole record, so a restart finds it interrupted.
//
// Thread-safety: none. The owner serializes every call (OpExecutor holds its lock).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/protocol.h"
#include "core/status.h"

namespace slipway {

struct OutboxOptions {
  std::string dir;                        // "" = memory only
  std::size_t max_bytes = 64u << 20;      // unacked events of all ops, encoded
  std::size_t compact_bytes = 64u << 10;  // acked bytes a file may carry before a rewrite
};

// An op found in the directory by Load, with its result (an interrupted op's is made up).
struct RestoredOp {
  std::string op_id;
  std::string kind;
  protocol::OpResult result;
  bool interrupted = false;  // started, no result: the process ended while it ran
};

// The error of the result Load gives an interrupted op; its value is {"code": "interrupted"}.
inline constexpr const char* kInterruptedError = "interrupted: the agent restarted while it ran";

class Outbox {
 public:
  // Receives each frame as it is kept, to be sent. Must not call back into the outbox.
  using Sink = std::function<void(const std::string& frame)>;

  explicit Outbox(OutboxOptions options);
  // Closes the files and keeps them: that is what Load finds.
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Creates the directory if missing and takes in every op file in it, oldest op first; an
  // op without a result gets the interrupted one (written back, synced). REQUIRES: called at
  // most once, before Start. kUnavailable when the directory cannot be created or listed: the
  // outbox then keeps to memory. A file without a whole started marker (the process ended
  // while the op was being started, before it ran) is deleted; one that cannot be read is
  // logged and left alone.
  Result<std::vector<RestoredOp>> Load();

  // Begins holding `op_id`, an op about to run: writes its started marker. A held op id is
  // left as it is. A marker that cannot be written is logged; the op is then held in memory.
  void Start(const std::string& op_id, const std::string& kind);
  // Keeps one event of a held op that has no result yet (ignored otherwise), with the next
  // seq, after a pending dropped-lines notice; `sink` gets each kept frame, in order. Output
  // beyond the bound is counted instead.
  void AddEvent(const std::string& op_id, protocol::EventKind kind, nlohmann::json data,
                const Sink& sink);
  // Keeps the result of a held op (once; later calls are ignored), after a pending
  // dropped-lines notice, synced to disk; `sink` gets the frames.
  void SetResult(const protocol::OpResult& result, const Sink& sink);
  // Drops the events up to ack.seq; with ack.result, and a result held, forgets the op (its
  // file is deleted). Acks for ops not held are ignored.
  void Ack(const protocol::Ack& ack);

  // Every held frame: oldest op first, each op's events in seq order, then its result.
  void Replay(const Sink& sink) const;
  // For each op with events held, the highest seq held.
  std::map<std::string, std::uint64_t> LastSeq() const;
  // The encoded result of `op_id`, or null while it has none or is not held.
  const std::string* ResultOf(const std::string& op_id) const;
  bool Holds(const std::string& op_id) const { return ops_.count(op_id) != 0; }
  // Bytes of the events held, all ops together (what max_bytes bounds).
  std::size_t bytes() const { return bytes_; }
  // Where `op_id`'s file is ("" in memory).
  std::string PathOf(const std::string& op_id) const;

 private:
  struct Held {
    std::string start;  // the started-marker record
    std::uint64_t ordinal = 0;
    std::uint64_t next_seq = 1;
    std::deque<std::pair<std::uint64_t, std::string>> events;
    std::optional<std::string> result;
    std::size_t dropped = 0;      // output lines refused since the last kept event
    int fd = -1;                  // open for appending while the op runs
    bool file = false;            // a file exists: delete it when the op is forgotten
    bool writable = false;        // records still go to the file
    std::size_t file_bytes = 0;   // the file's size
    std::size_t stale_bytes = 0;  // of which acked events
  };

  void Keep(const std::string& op_id, Held& h, protocol::EventKind kind, nlohmann::json data,
            const Sink& sink);
  void FlushDropped(const std::string& op_id, Held& h, const Sink& sink);
  void Append(const std::string& op_id, Held& h, const std::string& record);
  void MaybeCompact(const std::string& op_id, Held& h);
  void CapStale();
  void DropStale(Held& h);
  void Forget(const std::string& op_id);
  void DiskFailed(const std::string& op_id, Held& h, const Status& why);
  Result<Held> LoadFile(const std::string& op_id, RestoredOp& restored, bool& rewrite) const;
  std::optional<RestoredOp> Restore(const std::string& op_id);
  Status Rewrite(const std::string& op_id, Held& h, bool sync);
  std::vector<const std::pair<const std::string, Held>*> Ordered() const;

  OutboxOptions options_;
  std::map<std::string, Held> ops_;  // by op id
  std::uint64_t next_ordinal_ = 1;
  std::size_t bytes_ = 0;
  std::size_t stale_bytes_ = 0;  // acked events still in the files, all ops together
};

}  // namespace slipway
