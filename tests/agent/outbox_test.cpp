// The agent's outbox on disk (agent/outbox.h) and what an executor makes of it after a restart:
// frames kept across instances, ack compaction, the bound with its dropped-lines notice, torn
// records, and the replay, idempotence and "interrupted" rules of docs/PROTOCOL.md.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/executor.h"
#include "agent/outbox.h"
#include "support/fake_agent.h"

namespace slipway {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

// A fresh directory, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    std::string t = ::testing::TempDir() + "outbox-XXXXXX";
    path_ = ::mkdtemp(t.data()) ? t : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void AppendRaw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

json Line(int n) {
  return {{"stream", "stdout"}, {"text", "line " + std::to_string(n)}};
}

// Collects what an outbox hands to its sink.
struct Sent {
  std::vector<std::string> frames;
  Outbox::Sink sink() {
    return [this](const std::string& f) { frames.push_back(f); };
  }
  protocol::Frame at(std::size_t i) const { return *protocol::Decode(frames.at(i)); }
  protocol::Event event(std::size_t i) const { return std::get<protocol::Event>(at(i)); }
  protocol::OpResult result(std::size_t i) const { return std::get<protocol::OpResult>(at(i)); }
};

OutboxOptions On(const std::string& dir, std::size_t max_bytes = 1u << 20,
                 std::size_t compact_bytes = 64u << 10) {
  return OutboxOptions{dir, max_bytes, compact_bytes};
}

// ---- the outbox alone --------------------------------------------------------------------

TEST(Outbox, FramesOutliveTheInstanceInOrder) {
  TempDir dir;
  {
    Outbox ob(On(dir.path()));
    ASSERT_TRUE(ob.Load().ok());
    Sent sent;
    ob.Start("z-first", "run_step");
    for (int i = 1; i <= 3; ++i)
      ob.AddEvent("z-first", protocol::EventKind::kOutput, Line(i), sent.sink());
    ob.Start("a-second", "probe");
    ob.AddEvent("a-second", protocol::EventKind::kProgress, {{"step", 1}}, sent.sink());
    ob.SetResult({"a-second", true, "", {{"status", 200}}}, sent.sink());
    ASSERT_EQ(sent.frames.size(), 5u);
    EXPECT_EQ(sent.event(2).seq, 3u);
  }
  Outbox ob(On(dir.path()));
  auto restored = ob.Load();
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  ASSERT_EQ(restored->size(), 2u);
  // Oldest op first, whatever the names: the one without a result was interrupted.
  EXPECT_EQ((*restored)[0].op_id, "z-first");
  EXPECT_EQ((*restored)[0].kind, "run_step");
  EXPECT_TRUE((*restored)[0].interrupted);
  EXPECT_EQ((*restored)[0].result.error, kInterruptedError);
  EXPECT_EQ((*restored)[0].result.value, json({{"code", "interrupted"}}));
  EXPECT_EQ((*restored)[1].op_id, "a-second");
  EXPECT_FALSE((*restored)[1].interrupted);
  EXPECT_TRUE((*restored)[1].result.ok);
  EXPECT_EQ((*restored)[1].result.value, json({{"status", 200}}));
  EXPECT_EQ(ob.LastSeq(), (std::map<std::string, std::uint64_t>{{"z-first", 3}, {"a-second", 1}}));
  Sent replay;
  ob.Replay(replay.sink());
  ASSERT_EQ(replay.frames.size(), 6u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(replay.event(i).data, Line(i + 1));
  EXPECT_EQ(replay.result(3).error, kInterruptedError);
  EXPECT_EQ(replay.event(4).op_id, "a-second");
  EXPECT_TRUE(replay.result(5).ok);
  ASSERT_NE(ob.ResultOf("z-first"), nullptr);
  EXPECT_EQ(*ob.ResultOf("z-first"), replay.frames[3]);
}

TEST(Outbox, AnInterruptedResultIsWrittenOnceAndKept) {
  TempDir dir;
  {
    Outbox ob(On(dir.path()));
    ASSERT_TRUE(ob.Load().ok());
    ob.Start("op", "build");
    ob.AddEvent("op", protocol::EventKind::kOutput, Line(1), [](const std::string&) {});
  }
  for (int round = 0; round < 3; ++round) {
    Outbox ob(On(dir.path()));
    auto restored = ob.Load();
    ASSERT_TRUE(restored.ok());
    ASSERT_EQ(restored->size(), 1u);
    EXPECT_EQ((*restored)[0].result.error, kInterruptedError);
    EXPECT_EQ((*restored)[0].interrupted, round == 0);  // made up once, then read back
    Sent replay;
    ob.Replay(replay.sink());
    EXPECT_EQ(replay.frames.size(), 2u);  // the event and one result, never two
  }
}

TEST(Outbox, AcksCompactTheFileAndAResultAckDeletesIt) {
  TempDir dir;
  auto fill = [](Outbox& ob) {
    ob.Start("op", "build");
    for (int i = 1; i <= 10; ++i)
      ob.AddEvent("op", protocol::EventKind::kOutput, Line(i), [](const std::string&) {});
  };
  {
    Outbox ob(On(dir.path(), 1u << 20, 0));  // rewrite as soon as acked bytes outweigh the rest
    ASSERT_TRUE(ob.Load().ok());
    fill(ob);
    auto before = fs::file_size(ob.PathOf("op"));
    std::size_t held = ob.bytes();
    ob.Ack({"op", 6, false});
    EXPECT_LT(ob.bytes(), held);
    EXPECT_LT(fs::file_size(ob.PathOf("op")), before);
    EXPECT_EQ(ob.LastSeq().at("op"), 10u);
    ob.Ack({"op", 3, false});  // lower than an earlier ack: changes nothing
    EXPECT_EQ(ob.LastSeq().at("op"), 10u);
  }
  {
    Outbox ob(On(dir.path()));
    ASSERT_TRUE(ob.Load().ok());
    Sent replay;
    ob.Replay(replay.sink());
    ASSERT_EQ(replay.frames.size(), 5u);  // events 7..10, then the interrupted result
    EXPECT_EQ(replay.event(0).seq, 7u);
    EXPECT_EQ(replay.event(3).seq, 10u);
    std::string path = ob.PathOf("op");
    ob.Ack({"op", 0, true});
    EXPECT_FALSE(ob.Holds("op"));
    EXPECT_FALSE(fs::exists(path));
    EXPECT_EQ(ob.bytes(), 0u);
  }
  Outbox ob(On(dir.path()));
  EXPECT_TRUE(ob.Load()->empty());
}

TEST(Outbox, BelowTheCompactionThresholdAckedEventsAreSentAgainAfterARestart) {
  TempDir dir;
  {
    Outbox ob(On(dir.path(), 1u << 20, 1u << 20));
    ASSERT_TRUE(ob.Load().ok());
    ob.Start("op", "build");
    for (int i = 1; i <= 4; ++i)
      ob.AddEvent("op", protocol::EventKind::kOutput, Line(i), [](const std::string&) {});
    auto before = fs::file_size(ob.PathOf("op"));
    ob.Ack({"op", 3, false});
    EXPECT_EQ(fs::file_size(ob.PathOf("op")), before);  // not rewritten yet
    Sent replay;
    ob.Replay(replay.sink());
    ASSERT_EQ(replay.frames.size(), 1u);  // in this process, acked is acked
    EXPECT_EQ(replay.event(0).seq, 4u);
  }
  Outbox ob(On(dir.path()));
  ASSERT_TRUE(ob.Load().ok());
  Sent replay;
  ob.Replay(replay.sink());
  ASSERT_EQ(replay.frames.size(), 5u);  // 1..4 (a documented duplicate of 1..3), the result
  for (std::uint64_t i = 0; i < 4; ++i) EXPECT_EQ(replay.event(i).seq, i + 1);
}

TEST(Outbox, AckedEventsOfAllFilesStayUnderAQuarterOfTheBound) {
  TempDir dir;
  {
    Outbox ob(On(dir.path(), 4000, 1u << 20));  // the per-file rule alone would wait for 1 MiB
    ASSERT_TRUE(ob.Load().ok());
    for (const char* id : {"a", "b"}) {
      ob.Start(id, "build");
      for (int i = 1; i <= 15; ++i)
        ob.AddEvent(id, protocol::EventKind::kOutput, Line(i), [](const std::string&) {});
    }
    ASSERT_LT(ob.bytes(), 4000u);
    auto a_before = fs::file_size(ob.PathOf("a"));
    auto b_before = fs::file_size(ob.PathOf("b"));
    ob.Ack({"a", 4, false});  // about 400 bytes acked: under 1000, both files stay
    EXPECT_EQ(fs::file_size(ob.PathOf("a")), a_before);
    ob.Ack({"b", 6, false});  // over 1000 in all: the file holding the most is rewritten
    EXPECT_EQ(fs::file_size(ob.PathOf("a")), a_before);
    EXPECT_LT(fs::file_size(ob.PathOf("b")), b_before);
    ob.Ack({"a", 12, false});
    EXPECT_LT(fs::file_size(ob.PathOf("a")), a_before);
  }
  Outbox ob(On(dir.path()));
  ASSERT_TRUE(ob.Load().ok());
  Sent replay;
  ob.Replay(replay.sink());
  ASSERT_EQ(replay.frames.size(), 3u + 1 + 9 + 1);  // a: 13..15, result; b: 7..15, result
  EXPECT_EQ(replay.event(0).seq, 13u);
  EXPECT_EQ(replay.event(4).op_id, "b");
  EXPECT_EQ(replay.event(4).seq, 7u);
}

TEST(Outbox, OutputBeyondTheBoundIsCountedAndReported) {
  TempDir dir;
  Outbox ob(On(dir.path(), 300));
  ASSERT_TRUE(ob.Load().ok());
  ob.Start("op", "build");
  Sent sent;
  for (int i = 1; i <= 10; ++i)
    ob.AddEvent("op", protocol::EventKind::kOutput, Line(i), sent.sink());
  std::size_t kept = sent.frames.size();
  ASSERT_GE(kept, 2u);
  ASSERT_LT(kept, 10u);
  EXPECT_GT(ob.bytes(), 300u);
  // Progress is kept over the bound, after the notice of what was dropped before it.
  ob.AddEvent("op", protocol::EventKind::kProgress, {{"step", 2}}, sent.sink());
  ASSERT_EQ(sent.frames.size(), kept + 2);
  auto notice = sent.event(kept);
  EXPECT_EQ(notice.seq, kept + 1);
  EXPECT_EQ(notice.data["stream"], "stderr");
  EXPECT_EQ(notice.data["text"],
            std::to_string(10 - kept) + " output lines dropped: the control plane was unreachable");
  EXPECT_EQ(sent.event(kept + 1).kind, protocol::EventKind::kProgress);
  EXPECT_EQ(sent.event(kept + 1).seq, kept + 2);
  // Acked, the room is back: output is kept again, with no second notice.
  ob.Ack({"op", kept + 2, false});
  EXPECT_EQ(ob.bytes(), 0u);
  ob.AddEvent("op", protocol::EventKind::kOutput, Line(11), sent.sink());
  ASSERT_EQ(sent.frames.size(), kept + 3);
  EXPECT_EQ(sent.event(kept + 2).data, Line(11));
  EXPECT_EQ(sent.event(kept + 2).seq, kept + 3);
  // Drops pending when the op ends are reported ahead of its result.
  for (int i = 12; i <= 30; ++i)
    ob.AddEvent("op", protocol::EventKind::kOutput, Line(i), sent.sink());
  std::size_t before_result = sent.frames.size();
  ob.SetResult({"op", true, "", json::object()}, sent.sink());
  ASSERT_EQ(sent.frames.size(), before_result + 2);
  EXPECT_NE(sent.event(before_result).data["text"].get<std::string>().find("lines dropped"),
            std::string::npos);
  EXPECT_TRUE(sent.result(before_result + 1).ok);
  // The same holds on disk: the notice was kept like any event.
  Outbox again(On(dir.path()));
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.LastSeq().at("op"), sent.event(before_result).seq);
}

TEST(Outbox, ATornLastRecordIsSkippedAndCutAway) {
  TempDir dir;
  std::string path;
  {
    Outbox ob(On(dir.path()));
    ASSERT_TRUE(ob.Load().ok());
    ob.Start("op", "build");
    for (int i = 1; i <= 3; ++i)
      ob.AddEvent("op", protocol::EventKind::kOutput, Line(i), [](const std::string&) {});
    path = ob.PathOf("op");
  }
  AppendRaw(path, R"({"type":"event","v":1,"op_id":"op","seq":4,"kind":"out)");
  Outbox ob(On(dir.path()));
  auto restored = ob.Load();
  ASSERT_TRUE(restored.ok());
  ASSERT_EQ(restored->size(), 1u);
  EXPECT_TRUE((*restored)[0].interrupted);
  EXPECT_EQ(ob.LastSeq().at("op"), 3u);
  std::string text = Slurp(path);
  EXPECT_EQ(text.find("\"seq\":4"), std::string::npos);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);  // marker, 3 events, result
}

TEST(Outbox, RecordsAfterAGapOrAStrayLineAreIgnored) {
  TempDir dir;
  std::string path;
  {
    Outbox ob(On(dir.path()));
    ASSERT_TRUE(ob.Load().ok());
    ob.Start("op", "build");
    for (int i = 1; i <= 2; ++i)
      ob.AddEvent("op", protocol::EventKind::kOutput, Line(i), [](const std::string&) {});
    path = ob.PathOf("op");
  }
  // seq 4 after 2: a gap, so neither it nor anything after it is restored.
  AppendRaw(path,
            protocol::Encode(protocol::Event{"op", 4, protocol::EventKind::kOutput, Line(4)}) +
                "\n" + protocol::Encode(protocol::OpResult{"op", true, "", json::object()}) + "\n");
  Outbox ob(On(dir.path()));
  auto restored = ob.Load();
  ASSERT_TRUE(restored.ok());
  ASSERT_EQ(restored->size(), 1u);
  EXPECT_EQ(ob.LastSeq().at("op"), 2u);
  EXPECT_TRUE((*restored)[0].interrupted);
}

TEST(Outbox, AFileWithoutAWholeStartedMarkerIsDropped) {
  TempDir dir;
  AppendRaw(dir.Sub("never-ran.op"), R"({"type":"start","op_id":"never-ran","ki)");
  AppendRaw(dir.Sub("other.op.tmp"), "a rewrite a crash cut short\n");
  AppendRaw(dir.Sub("notes.txt"), "not ours\n");
  Outbox ob(On(dir.path()));
  auto restored = ob.Load();
  ASSERT_TRUE(restored.ok());
  EXPECT_TRUE(restored->empty());
  EXPECT_FALSE(fs::exists(dir.Sub("never-ran.op")));
  EXPECT_FALSE(fs::exists(dir.Sub("other.op.tmp")));
  EXPECT_TRUE(fs::exists(dir.Sub("notes.txt")));
}

TEST(Outbox, AnUnusableDirectoryLeavesTheOutboxInMemory) {
  TempDir dir;
  AppendRaw(dir.Sub("file"), "x");
  Outbox ob(On(dir.Sub("file/outbox")));
  EXPECT_EQ(ob.Load().status().code(), Code::kUnavailable);
  Sent sent;
  ob.Start("op", "build");
  ob.AddEvent("op", protocol::EventKind::kOutput, Line(1), sent.sink());
  EXPECT_EQ(sent.frames.size(), 1u);
  EXPECT_EQ(ob.PathOf("op"), "");
}

// ---- an executor restarted on its outbox --------------------------------------------------

// Counts the steps it runs. "block" prints `lines` lines and then waits to be cancelled;
// anything else prints `lines` lines and succeeds.
class CountingAgent final : public testing::FakeAgent {
 public:
  std::atomic<int> steps{0};
  int lines = 3;

  Result<os::RunResult> RunStep(const StepRequest& step, const os::LineSink& sink) override {
    ++steps;
    for (int i = 1; i <= lines; ++i)
      if (sink) sink(os::OutputStream::kStdout, step.command + " " + std::to_string(i));
    while (step.command == "block" && !(step.cancel && step.cancel->load()))
      std::this_thread::sleep_for(1ms);
    os::RunResult r;
    r.exit_code = 0;
    return r;
  }
};

protocol::Op StepOp(const std::string& id, const std::string& command) {
  return {id,
          1,
          "run_step",
          {{"command", command}, {"cwd", "b"}, {"env", json::object()}, {"timeout_ms", 60000}},
          60000};
}

ExecutorOptions WithOutbox(const std::string& dir) {
  return ExecutorOptions{"/node", "", 4096, 1u << 20, 2s, dir};
}

// What an executor sends, decoded, from any thread.
struct Wire {
  std::mutex mu;
  std::vector<protocol::Frame> frames;
  OpExecutor::Send send() {
    return [this](const std::string& t) {
      std::lock_guard lock(mu);
      frames.push_back(*protocol::Decode(t));
      return true;
    };
  }
  std::vector<protocol::Frame> Snapshot() {
    std::lock_guard lock(mu);
    return frames;
  }
  std::size_t Results() {
    std::size_t n = 0;
    for (const auto& f : Snapshot()) n += std::holds_alternative<protocol::OpResult>(f);
    return n;
  }
  bool WaitResults(std::size_t n) {
    for (int i = 0; i < 2500 && Results() < n; ++i) std::this_thread::sleep_for(2ms);
    return Results() >= n;
  }
};

// (op_id, seq) of an event, (op_id, 0) of a result.
std::vector<std::pair<std::string, std::uint64_t>> Shape(const std::vector<protocol::Frame>& fs) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& f : fs) {
    if (const auto* e = std::get_if<protocol::Event>(&f)) out.emplace_back(e->op_id, e->seq);
    if (const auto* r = std::get_if<protocol::OpResult>(&f)) out.emplace_back(r->op_id, 0);
  }
  return out;
}

// Waits (bounded) until the executor buffers `seq` events of `op_id`.
bool WaitBuffered(const OpExecutor& ex, const std::string& op_id, std::uint64_t seq) {
  for (int i = 0; i < 2500; ++i) {
    auto last = ex.LastSeq();
    if (last.count(op_id) && last.at(op_id) >= seq) return true;
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

TEST(ExecutorRestart, FinishedOpsAreReplayedInOrderAndAnswerWithTheirFirstResult) {
  TempDir dir;
  {
    CountingAgent worker;
    OpExecutor ex(worker, WithOutbox(dir.path()));
    ex.OnFrame(StepOp("z-first", "make"));  // never connected: everything stays in the outbox
    ASSERT_TRUE(WaitBuffered(ex, "z-first", 3));
    for (int i = 0; i < 2500 && ex.Running().size(); ++i) std::this_thread::sleep_for(2ms);
    ex.OnFrame(StepOp("a-second", "test"));
    ASSERT_TRUE(WaitBuffered(ex, "a-second", 3));
    for (int i = 0; i < 2500 && ex.Running().size(); ++i) std::this_thread::sleep_for(2ms);
    ASSERT_TRUE(ex.Running().empty());
    EXPECT_EQ(worker.steps.load(), 2);
  }
  CountingAgent worker;
  OpExecutor ex(worker, WithOutbox(dir.path()));
  EXPECT_EQ(ex.LastSeq(), (std::map<std::string, std::uint64_t>{{"z-first", 3}, {"a-second", 3}}));
  Wire wire;
  ex.Connected(wire.send());
  auto replay = wire.Snapshot();
  std::vector<std::pair<std::string, std::uint64_t>> want = {
      {"z-first", 1},  {"z-first", 2},  {"z-first", 3},  {"z-first", 0},
      {"a-second", 1}, {"a-second", 2}, {"a-second", 3}, {"a-second", 0}};
  EXPECT_EQ(Shape(replay), want);
  EXPECT_EQ(std::get<protocol::Event>(replay[1]).data["text"], "make 2");
  const auto& first = std::get<protocol::OpResult>(replay[3]);
  EXPECT_TRUE(first.ok);
  EXPECT_EQ(first.value["exit_code"], 0);
  // A re-sent op is answered with its first result and does not run again.
  ex.OnFrame(StepOp("z-first", "make"));
  auto after = wire.Snapshot();
  ASSERT_EQ(after.size(), replay.size() + 1);
  EXPECT_EQ(std::get<protocol::OpResult>(after.back()), first);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(worker.steps.load(), 0);
  // Once its result is acked the op's file goes, and the id is still not run again.
  ex.OnFrame(protocol::Ack{"z-first", 3, true});
  EXPECT_FALSE(fs::exists(dir.Sub("z-first.op")));
  EXPECT_TRUE(fs::exists(dir.Sub("a-second.op")));
  EXPECT_EQ(ex.LastSeq(), (std::map<std::string, std::uint64_t>{{"a-second", 3}}));
  ex.OnFrame(StepOp("z-first", "make"));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(worker.steps.load(), 0);
}

// The real thing: a child process runs ops on the outbox and is killed with SIGKILL while one
// of them runs; a new executor on the same directory takes over.
TEST(ExecutorRestart, AnOpRunningWhenTheProcessWasKilledFailsAsInterruptedAndNeverRuns) {
  TempDir dir;
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    CountingAgent worker;
    OpExecutor ex(worker, WithOutbox(dir.path()));
    ex.OnFrame(StepOp("done", "make"));
    bool ok = WaitBuffered(ex, "done", 3);
    for (int i = 0; i < 2500 && !ex.Running().empty(); ++i) std::this_thread::sleep_for(2ms);
    ex.OnFrame(StepOp("running", "block"));
    ok = ok && WaitBuffered(ex, "running", 3);
    if (ok) ::raise(SIGKILL);  // mid-op: no destructor, no cancel, no result
    ::_exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child could not run its ops";
  CountingAgent worker;
  OpExecutor ex(worker, WithOutbox(dir.path()));
  EXPECT_EQ(ex.LastSeq(), (std::map<std::string, std::uint64_t>{{"done", 3}, {"running", 3}}));
  EXPECT_TRUE(ex.Running().empty());
  Wire wire;
  ex.Connected(wire.send());
  auto replay = wire.Snapshot();
  std::vector<std::pair<std::string, std::uint64_t>> want = {
      {"done", 1},    {"done", 2},    {"done", 3},    {"done", 0},
      {"running", 1}, {"running", 2}, {"running", 3}, {"running", 0}};
  ASSERT_EQ(Shape(replay), want);
  EXPECT_TRUE(std::get<protocol::OpResult>(replay[3]).ok);
  const auto interrupted = std::get<protocol::OpResult>(replay[7]);
  EXPECT_FALSE(interrupted.ok);
  EXPECT_EQ(interrupted.error, kInterruptedError);
  EXPECT_EQ(interrupted.value, json({{"code", "interrupted"}}));
  // The control plane, still waiting for it, sends it again: it fails, it does not run.
  ex.OnFrame(StepOp("running", "block"));
  auto after = wire.Snapshot();
  ASSERT_EQ(after.size(), replay.size() + 1);
  EXPECT_EQ(std::get<protocol::OpResult>(after.back()), interrupted);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(worker.steps.load(), 0);
  EXPECT_TRUE(ex.Running().empty());
  // A new op id runs as usual, with its own events after the restored ones.
  ex.OnFrame(StepOp("fresh", "make"));
  ASSERT_TRUE(wire.WaitResults(4));
  EXPECT_EQ(worker.steps.load(), 1);
  auto tail = Shape(wire.Snapshot());
  std::vector<std::pair<std::string, std::uint64_t>> fresh(tail.end() - 4, tail.end());
  EXPECT_EQ(fresh, (std::vector<std::pair<std::string, std::uint64_t>>{
                       {"fresh", 1}, {"fresh", 2}, {"fresh", 3}, {"fresh", 0}}));
}

TEST(ExecutorRestart, AnInterruptedOpIsRememberedWithinMaxRemembered) {
  TempDir dir;
  {
    Outbox ob(On(dir.path()));  // what a killed agent leaves: markers, no results
    ASSERT_TRUE(ob.Load().ok());
    for (const char* id : {"op-1", "op-2", "op-3"}) ob.Start(id, "run_step");
  }
  CountingAgent worker;
  ExecutorOptions o = WithOutbox(dir.path());
  o.max_remembered = 1;
  OpExecutor ex(worker, o);
  Wire wire;
  ex.Connected(wire.send());
  ASSERT_EQ(wire.Results(), 3u);
  EXPECT_TRUE(ex.LastSeq().empty());  // no events, only results
  // Acked, the two oldest are forgotten (max_remembered 1), the newest is still known.
  for (const char* id : {"op-1", "op-2", "op-3"}) ex.OnFrame(protocol::Ack{id, 0, true});
  for (const char* id : {"op-1", "op-2", "op-3"})
    EXPECT_FALSE(fs::exists(dir.Sub(std::string(id) + ".op")));
  ex.OnFrame(StepOp("op-3", "make"));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(worker.steps.load(), 0);
  ex.OnFrame(StepOp("op-1", "make"));  // forgotten: a control plane re-sending it is served
  ASSERT_TRUE(wire.WaitResults(4));
  EXPECT_EQ(worker.steps.load(), 1);
}

TEST(ExecutorRestart, AMemoryOnlyExecutorWritesNothing) {
  TempDir dir;
  CountingAgent worker;
  {
    OpExecutor ex(worker, ExecutorOptions{dir.path(), "", 4096, 1u << 20, 2s, ""});
    Wire wire;
    ex.Connected(wire.send());
    ex.OnFrame(StepOp("op", "make"));
    ASSERT_TRUE(wire.WaitResults(1));
    EXPECT_EQ(ex.LastSeq().at("op"), 3u);
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
  OpExecutor ex(worker, WithOutbox(""));
  EXPECT_TRUE(ex.LastSeq().empty());
}

// ---- throughput, not a test: run with --gtest_also_run_disabled_tests ----------------------

// Events/s through one op, from the op's frame to its result, with a control plane that acks
// every event as it arrives (another thread decodes each frame and acks it), or none at all.
double EventsPerSecond(const std::string& outbox_dir, int lines, bool ack) {
  CountingAgent worker;
  worker.lines = lines;
  OpExecutor ex(worker, ExecutorOptions{"/node", "", 4096, 256u << 20, 60s, outbox_dir});
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  bool done = false;
  std::thread cp([&] {
    std::unique_lock lock(mu);
    while (!done) {
      cv.wait(lock, [&] { return done || !queue.empty(); });
      while (!queue.empty()) {
        std::string text = std::move(queue.front());
        queue.pop_front();
        lock.unlock();
        auto f = protocol::Decode(text);
        if (const auto* e = std::get_if<protocol::Event>(&*f)) {
          if (ack) ex.OnFrame(protocol::Ack{e->op_id, e->seq, false});
        } else if (std::holds_alternative<protocol::OpResult>(*f)) {
          lock.lock();
          done = true;
          break;
        }
        lock.lock();
      }
    }
  });
  ex.Connected([&](const std::string& t) {
    std::lock_guard lock(mu);
    queue.push_back(t);
    cv.notify_one();
    return true;
  });
  auto start = std::chrono::steady_clock::now();
  ex.OnFrame(StepOp("bench", "make"));
  cp.join();
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  return lines / took.count();
}

TEST(OutboxBench, DISABLED_EventsPerSecondThroughOneOp) {
  const int lines = 200000;
  for (int round = 1; round <= 3; ++round) {
    TempDir acked, unacked;
    double memory = EventsPerSecond("", lines, true);
    double disk = EventsPerSecond(acked.path(), lines, true);
    double memory_unacked = EventsPerSecond("", lines, false);
    double disk_unacked = EventsPerSecond(unacked.path(), lines, false);
    std::printf(
        "round %d, %d lines: acked: memory %.0f/s, disk %.0f/s (%.2fx); unacked: memory %.0f/s, "
        "disk %.0f/s (%.2fx)\n",
        round, lines, memory, disk, disk / memory, memory_unacked, disk_unacked,
        disk_unacked / memory_unacked);
  }
}

}  // namespace
}  // namespace slipway
