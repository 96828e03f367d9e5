#include "agent/executor.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "agent/wire.h"
#include "git/git.h"

namespace slipway {
using nlohmann::json;
using Steady = std::chrono::steady_clock;

// One op as the node knows it, from receipt until it is forgotten. Guarded by mu_ except
// `cancel`, which the op's own thread reads.
struct OpExecutor::OpRun {
  protocol::Op op;
  std::atomic<bool> cancel{false};
  Steady::time_point received{};
  Steady::time_point deadline{};
  bool running = true;
  bool given_up = false;         // stop_op: clean up, answer "given up"
  bool deadline_passed = false;  // the watchdog cancelled it
  bool cancelled = false;        // a cancel frame stopped it
  std::uint64_t next_seq = 1;
  std::uint64_t acked = 0;
  std::deque<std::pair<std::uint64_t, std::string>> outbox;  // unacked events, encoded
  std::optional<std::string> result;                         // encoded, until acked
  std::size_t dropped_lines = 0;  // output not kept because the outbox was full
  json value;                     // the result's value (start_instance: the handle)
  bool ok = false;
};

OpExecutor::OpExecutor(Agent& worker, ExecutorOptions options)
    : worker_(worker), options_(std::move(options)) {
  if (!options_.term_file.empty()) {
    std::ifstream in(options_.term_file);
    in >> term_;
  }
  watchdog_ = std::thread([this] { Watchdog(); });
}

OpExecutor::~OpExecutor() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  for (auto& [id, run] : ops_) run->cancel = true;
  cv_.notify_all();
  cv_.wait(lock, [this] { return active_threads_ == 0; });
  lock.unlock();
  watchdog_.join();
}

std::map<std::string, std::uint64_t> OpExecutor::LastSeq() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::uint64_t> out;
  for (const auto& [id, run] : ops_)
    if (!run->outbox.empty()) out[id] = run->outbox.back().first;
  return out;
}

std::vector<std::string> OpExecutor::Running() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, run] : ops_)
    if (run->running) out.push_back(id);
  return out;
}

std::uint64_t OpExecutor::term() const {
  std::lock_guard lock(mu_);
  return term_;
}

void OpExecutor::Connected(Send send) {
  std::lock_guard lock(mu_);
  send_ = std::move(send);
  // Oldest ops first, each op's events in order, then its result.
  std::vector<std::shared_ptr<OpRun>> runs;
  for (const auto& [id, run] : ops_) runs.push_back(run);
  std::sort(runs.begin(), runs.end(),
            [](const auto& a, const auto& b) { return a->received < b->received; });
  for (const auto& run : runs) {
    for (const auto& [seq, text] : run->outbox) SendLocked(text);
    if (run->result) SendLocked(*run->result);
  }
}

void OpExecutor::Disconnected() {
  std::lock_guard lock(mu_);
  send_ = nullptr;
}

void OpExecutor::SendLocked(const std::string& text) {
  if (send_ && !send_(text)) send_ = nullptr;  // stays in the outbox for the next connection
}

void OpExecutor::ObserveTerm(std::uint64_t term) {
  if (term <= term_) return;
  term_ = term;
  if (options_.term_file.empty()) return;
  std::string tmp = options_.term_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << term_ << "\n";
  }
  std::error_code ec;
  std::filesystem::rename(tmp, options_.term_file, ec);
  if (ec) spdlog::error("cannot record term {} in {}: {}", term_, options_.term_file, ec.message());
}

void OpExecutor::OnFrame(const protocol::Frame& frame) {
  try {
    if (const auto* w = std::get_if<protocol::Welcome>(&frame)) {
      std::lock_guard lock(mu_);
      ObserveTerm(w->term);
    } else if (const auto* op = std::get_if<protocol::Op>(&frame)) {
      StartOp(*op);
    } else if (const auto* c = std::get_if<protocol::Cancel>(&frame)) {
      OnCancel(c->op_id, false);
    } else if (const auto* s = std::get_if<protocol::StopOp>(&frame)) {
      OnCancel(s->op_id, true);
    } else if (const auto* a = std::get_if<protocol::Ack>(&frame)) {
      OnAck(*a);
    }
  } catch (const std::exception& e) {
    spdlog::error("agent: handling a {} frame threw: {}", protocol::TypeOf(frame), e.what());
  }
}

void OpExecutor::StartOp(const protocol::Op& op) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  if (op.term < term_) {  // a deposed control plane: nothing runs, nothing is remembered
    protocol::OpResult r{op.op_id, false, "stale term", json::object()};
    SendLocked(protocol::Encode(r));
    return;
  }
  ObserveTerm(op.term);
  if (auto it = ops_.find(op.op_id); it != ops_.end()) {
    // Idempotent: a running op keeps going; a finished one answers its first result again.
    if (it->second->result) SendLocked(*it->second->result);
    return;
  }
  auto run = std::make_shared<OpRun>();
  run->op = op;
  run->received = Steady::now();
  run->deadline = run->received + std::chrono::milliseconds(op.deadline_ms);
  ops_[op.op_id] = run;
  ++active_threads_;
  std::thread([this, run] { RunOp(run); }).detach();
}

// The op's thread: runs it, then records its result. Nothing it throws escapes.
void OpExecutor::RunOp(std::shared_ptr<OpRun> run) {
  protocol::OpResult result{run->op.op_id, false, "", json::object()};
  auto started = Steady::now();
  try {
    OpContext ctx;
    ctx.cancel = &run->cancel;
    ctx.root = options_.root;
    ctx.emit = [this, &run](protocol::EventKind kind, json data) {
      Emit(*run, kind, std::move(data));
    };
    auto value = RunOpKind(worker_, run->op.kind, run->op.args, ctx);
    if (value.ok()) {
      result.ok = true;
      result.value = std::move(*value);
    } else {
      result.error = value.status().message().empty() ? "failed" : value.status().message();
      result.value = {{"code", wire::CodeName(value.status().code())}};
    }
  } catch (const std::exception& e) {
    result.error = std::string("invalid args: ") + e.what();
    result.value = {{"code", "invalid"}};
  } catch (...) {
    result.error = "the op failed with an unknown exception";
    result.value = {{"code", "internal"}};
  }
  if (Steady::now() - started > options_.slow_op)
    spdlog::info(
        "op {} ({}) took {} ms", run->op.op_id, run->op.kind,
        std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - started).count());
  Finish(*run, std::move(result));
  std::lock_guard lock(mu_);
  --active_threads_;
  cv_.notify_all();
}

void OpExecutor::Emit(OpRun& run, protocol::EventKind kind, json data) {
  std::lock_guard lock(mu_);
  if (kind == protocol::EventKind::kOutput && outbox_bytes_ > options_.max_outbox_bytes) {
    ++run.dropped_lines;  // counted, and reported once there is room again
    return;
  }
  auto push = [&](protocol::EventKind k, json d) {
    protocol::Event e{run.op.op_id, run.next_seq++, k, std::move(d)};
    std::string text = protocol::Encode(e);
    outbox_bytes_ += text.size();
    run.outbox.emplace_back(e.seq, text);
    SendLocked(text);
  };
  if (run.dropped_lines) {
    push(protocol::EventKind::kOutput,
         {{"stream", "stderr"},
          {"text", std::to_string(run.dropped_lines) +
                       " output lines dropped: the control plane was unreachable"}});
    run.dropped_lines = 0;
  }
  push(kind, std::move(data));
}

void OpExecutor::Finish(OpRun& run, protocol::OpResult result) {
  bool cleanup = false;
  {
    std::lock_guard lock(mu_);
    if (run.deadline_passed && !run.given_up) {
      result.ok = false;
      result.error = "deadline exceeded";
      result.value = {{"code", "timeout"}};
    }
    if (run.cancelled && !run.given_up && !run.deadline_passed) {
      result = {run.op.op_id, false, "cancelled", {{"code", "cancelled"}}};
    }
    if (run.given_up) {
      cleanup = result.ok;  // it did its work after all: undo what it started
      run.value = result.value;
      result = {run.op.op_id, false, "given up", {{"code", "cancelled"}}};
    }
    run.running = false;
    run.ok = result.ok;
    if (!cleanup) run.value = result.value;
    run.result = protocol::Encode(result);
    SendLocked(*run.result);
    finished_.push_back(run.op.op_id);
    Forget();
  }
  if (cleanup && run.op.kind == "start_instance") {
    InstanceHandle h;
    from_json(run.value, h);
    worker_.StopInstance(h, std::chrono::seconds(5));
  }
}

// Drops the oldest finished ops whose result was acked, beyond max_remembered.
void OpExecutor::Forget() {
  while (finished_.size() > options_.max_remembered) {
    auto it = ops_.find(finished_.front());
    if (it != ops_.end() && (it->second->result || !it->second->outbox.empty())) break;
    if (it != ops_.end()) ops_.erase(it);
    finished_.pop_front();
  }
}

void OpExecutor::OnAck(const protocol::Ack& ack) {
  std::lock_guard lock(mu_);
  auto it = ops_.find(ack.op_id);
  if (it == ops_.end()) return;
  OpRun& run = *it->second;
  run.acked = std::max(run.acked, ack.seq);
  while (!run.outbox.empty() && run.outbox.front().first <= run.acked) {
    outbox_bytes_ -= std::min(outbox_bytes_, run.outbox.front().second.size());
    run.outbox.pop_front();
  }
  if (ack.result && !run.running) run.result.reset();
  Forget();
}

void OpExecutor::OnCancel(const std::string& op_id, bool given_up) {
  std::unique_lock lock(mu_);
  auto it = ops_.find(op_id);
  if (it == ops_.end()) {
    if (given_up) {  // never heard of it: nothing to stop, but say so
      protocol::OpResult r{op_id, false, "given up", {{"code", "cancelled"}}};
      SendLocked(protocol::Encode(r));
    }
    return;
  }
  auto run = it->second;
  if (run->running) {
    run->given_up = run->given_up || given_up;
    run->cancelled = true;
    run->cancel = true;
    return;
  }
  if (!given_up || !run->ok || run->op.kind != "start_instance") return;
  // Given up after it finished: stop what it started.
  InstanceHandle h;
  from_json(run->value, h);
  run->ok = false;
  lock.unlock();
  worker_.StopInstance(h, std::chrono::seconds(5));
}

void OpExecutor::Watchdog() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    auto now = Steady::now();
    for (auto& [id, run] : ops_) {
      if (run->running && !run->deadline_passed && now >= run->deadline) {
        run->deadline_passed = true;
        run->cancel = true;
      }
    }
  }
}

}  // namespace slipway
