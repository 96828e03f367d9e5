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
  json value;                    // the result's value (start_instance: the handle)
  bool ok = false;
};

OpExecutor::OpExecutor(Agent& worker, ExecutorOptions options)
    : worker_(worker),
      options_(std::move(options)),
      outbox_(OutboxOptions{options_.outbox_dir, options_.max_outbox_bytes}),
      send_locked_([this](const std::string& text) { SendLocked(text); }) {
  if (!options_.term_file.empty()) {
    std::ifstream in(options_.term_file);
    in >> term_;
  }
  Restore();
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

// Takes in what an earlier process left in the outbox directory. Each op is held as a
// finished one (an interrupted op with its made-up result), so that a re-sent op id is answered
// with that result and never runs.
void OpExecutor::Restore() {
  if (options_.outbox_dir.empty()) return;
  auto restored = outbox_.Load();
  if (!restored.ok()) {
    spdlog::error("agent: the outbox is kept in memory only: {}", restored.status().message());
    return;
  }
  std::lock_guard lock(mu_);
  std::size_t interrupted = 0;
  for (const auto& r : *restored) {
    auto run = std::make_shared<OpRun>();
    run->op.op_id = r.op_id;
    run->op.kind = r.kind;
    run->running = false;
    run->ok = r.result.ok;
    run->value = r.result.value;
    ops_[r.op_id] = run;
    finished_.push_back(r.op_id);
    interrupted += r.interrupted ? 1 : 0;
  }
  if (!restored->empty())
    spdlog::info("agent: {} unacked ops restored from {}, {} of them interrupted", restored->size(),
                 options_.outbox_dir, interrupted);
}

std::map<std::string, std::uint64_t> OpExecutor::LastSeq() const {
  std::lock_guard lock(mu_);
  return outbox_.LastSeq();
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
  outbox_.Replay(send_locked_);  // oldest ops first, each op's events in order, then its result
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
    if (const std::string* result = outbox_.ResultOf(op.op_id)) SendLocked(*result);
    return;
  }
  auto run = std::make_shared<OpRun>();
  run->op = op;
  run->received = Steady::now();
  run->deadline = run->received + std::chrono::milliseconds(op.deadline_ms);
  ops_[op.op_id] = run;
  outbox_.Start(op.op_id, op.kind);  // the started marker, before anything runs
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
  } catch (const nlohmann::json::exception& e) {  // the op's args did not fit its kind
    result.error = std::string("invalid args: ") + e.what();
    result.value = {{"code", "invalid"}};
  } catch (const std::exception& e) {  // the node's own failure
    result.error = std::string("internal error: ") + e.what();
    result.value = {{"code", "internal"}};
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
  outbox_.AddEvent(run.op.op_id, kind, std::move(data), send_locked_);
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
    outbox_.SetResult(result, send_locked_);
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
    if (it != ops_.end() && outbox_.Holds(it->first)) break;
    if (it != ops_.end()) ops_.erase(it);
    finished_.pop_front();
  }
}

void OpExecutor::OnAck(const protocol::Ack& ack) {
  std::lock_guard lock(mu_);
  outbox_.Ack(ack);  // with `result`, the op's file goes; its id stays known until Forget
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
