#include "core/op_tracker.h"

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/fake_clock.h"

namespace slipway {

// Readable gtest failure messages.
void PrintTo(const OpAction& a, std::ostream* os) {
  *os << ToString(a);
}
void PrintTo(OpState s, std::ostream* os) {
  *os << ToString(s);
}

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using K = OpActionKind;

class OpTrackerTest : public ::testing::Test {
 protected:
  OpTrackerTest() : tracker_({seconds(60), seconds(10), 2}) {}

  Clock::time_point Now() const { return clock_.Now(); }
  OpActions Submit(const std::string& id, const std::string& node = "n1") {
    return tracker_.Submit(id, node, Now());
  }
  OpState StateOf(const std::string& id) const { return tracker_.State(id).value(); }

  testing::FakeClock clock_;
  OpTracker tracker_;
};

TEST_F(OpTrackerTest, SubmitSendsWhenASlotIsFreeAndIsIdempotent) {
  EXPECT_EQ(Submit("a"), (OpActions{{K::kSend, "a"}}));
  EXPECT_EQ(StateOf("a"), OpState::kRunning);
  EXPECT_TRUE(Submit("a").empty());
  EXPECT_TRUE(Submit("a", "other-node").empty());
  EXPECT_EQ(tracker_.Find("a")->node, "n1");
  EXPECT_EQ(tracker_.CountByState(OpState::kRunning), 1u);
  EXPECT_FALSE(tracker_.State("unknown"));
}

TEST_F(OpTrackerTest, SlotLimitQueuesAndFreedSlotsStartInSubmissionOrder) {
  Submit("a");
  Submit("b");
  EXPECT_TRUE(Submit("c").empty());
  EXPECT_TRUE(Submit("d").empty());
  EXPECT_EQ(Submit("x", "n2"), (OpActions{{K::kSend, "x"}}));  // other nodes are independent
  EXPECT_EQ(StateOf("c"), OpState::kQueued);
  EXPECT_EQ(tracker_.CountByState(OpState::kQueued), 2u);

  EXPECT_EQ(tracker_.Result("b", true, "", Now()), (OpActions{{K::kSend, "c"}}));
  EXPECT_EQ(StateOf("b"), OpState::kSucceeded);
  EXPECT_EQ(tracker_.Result("a", false, "boom", Now()), (OpActions{{K::kSend, "d"}}));
  EXPECT_EQ(StateOf("a"), OpState::kFailed);
  EXPECT_EQ(tracker_.Find("a")->result_error, "boom");
  EXPECT_EQ(tracker_.CountByState(OpState::kQueued), 0u);
}

TEST_F(OpTrackerTest, FirstResultWinsAndDuplicatesAreIgnored) {
  Submit("a");
  Submit("b");
  Submit("c");
  tracker_.Result("a", true, "", Now());
  EXPECT_TRUE(tracker_.Result("a", false, "late", Now()).empty());
  EXPECT_EQ(StateOf("a"), OpState::kSucceeded);
  EXPECT_TRUE(*tracker_.Find("a")->result_ok);
  EXPECT_EQ(tracker_.CountByState(OpState::kRunning), 2u);  // the slot was freed only once
  EXPECT_TRUE(tracker_.Result("unknown", true, "", Now()).empty());
}

TEST_F(OpTrackerTest, SilentOpStallsThenIsGivenUpWhenTheLeaseExpires) {
  Submit("a");
  clock_.Advance(seconds(10));
  tracker_.Tick(Now());
  EXPECT_EQ(StateOf("a"), OpState::kRunning);  // exactly stall_after: not yet "longer than"
  clock_.Advance(milliseconds(1));
  EXPECT_TRUE(tracker_.Tick(Now()).empty());
  EXPECT_EQ(StateOf("a"), OpState::kStalled);

  clock_.Advance(seconds(50) - milliseconds(2));  // 1ms before the lease
  EXPECT_TRUE(tracker_.Tick(Now()).empty());
  EXPECT_EQ(StateOf("a"), OpState::kStalled);
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(tracker_.Tick(Now()), (OpActions{{K::kFailDeployment, "a", "node n1 lost"}}));
  EXPECT_EQ(StateOf("a"), OpState::kGivenUp);
  EXPECT_TRUE(tracker_.Tick(Now()).empty());  // given up once
}

TEST_F(OpTrackerTest, GiveUpFreesTheSlotForQueuedOps) {
  Submit("a");
  Submit("b");
  Submit("c");
  clock_.Advance(seconds(60));
  EXPECT_EQ(tracker_.Tick(Now()), (OpActions{{K::kFailDeployment, "a", "node n1 lost"},
                                             {K::kFailDeployment, "b", "node n1 lost"},
                                             {K::kSend, "c"}}));
  EXPECT_EQ(tracker_.Find("c")->lease_deadline, Now() + seconds(60));
}

TEST_F(OpTrackerTest, HeartbeatRenewsListedOpsAndUnstallsThem) {
  Submit("a");
  Submit("b");
  clock_.Advance(seconds(30));
  tracker_.Tick(Now());
  EXPECT_EQ(StateOf("a"), OpState::kStalled);
  EXPECT_TRUE(tracker_.NodeHeartbeat("n1", {"a", "unknown"}, Now()).empty());
  EXPECT_EQ(StateOf("a"), OpState::kRunning);
  EXPECT_EQ(StateOf("b"), OpState::kStalled);  // not listed: not renewed
  clock_.Advance(seconds(30));
  EXPECT_EQ(tracker_.Tick(Now()), (OpActions{{K::kFailDeployment, "b", "node n1 lost"}}));
  EXPECT_EQ(StateOf("a"), OpState::kStalled);
  EXPECT_TRUE(tracker_.NodeHeartbeat("n2", {"a"}, Now()).empty());  // wrong node: ignored
  EXPECT_EQ(StateOf("a"), OpState::kStalled);
}

TEST_F(OpTrackerTest, StalledIsDistinctFromQueued) {
  Submit("a");
  Submit("b");
  Submit("c");
  clock_.Advance(seconds(11));
  tracker_.Tick(Now());
  EXPECT_EQ(tracker_.CountByState(OpState::kStalled), 2u);
  EXPECT_EQ(tracker_.CountByState(OpState::kQueued), 1u);
  EXPECT_EQ(StateOf("c"), OpState::kQueued);  // never sent, so never stalls or expires
  clock_.Advance(seconds(600));
  tracker_.NodeLost("n1", Now());
  EXPECT_EQ(StateOf("c"), OpState::kQueued);
}

TEST_F(OpTrackerTest, NodeLostStallsRunningOpsAndGivesUpOnlyAfterTheLease) {
  Submit("a");
  Submit("b");
  Submit("c");
  clock_.Advance(seconds(5));
  EXPECT_TRUE(tracker_.NodeLost("n1", Now()).empty());
  EXPECT_EQ(StateOf("a"), OpState::kStalled);
  clock_.Advance(seconds(55));
  EXPECT_EQ(tracker_.NodeLost("n1", Now()), (OpActions{{K::kFailDeployment, "a", "node n1 lost"},
                                                       {K::kFailDeployment, "b", "node n1 lost"}}));
  EXPECT_EQ(StateOf("c"), OpState::kQueued);  // a lost node gets nothing new
  EXPECT_TRUE(tracker_.Tick(Now()).empty());
  EXPECT_EQ(StateOf("c"), OpState::kQueued);
  // The node comes back: queued work starts, given-up work is stopped.
  EXPECT_EQ(tracker_.NodeHeartbeat("n1", {"a"}, Now()),
            (OpActions{{K::kSendStopOp, "a"}, {K::kSend, "c"}}));
}

TEST_F(OpTrackerTest, ReconnectWithinTheLeaseKeepsTheOp) {
  Submit("a");
  tracker_.NodeLost("n1", Now());
  clock_.Advance(seconds(59));
  tracker_.NodeHeartbeat("n1", {"a"}, Now());
  EXPECT_EQ(StateOf("a"), OpState::kRunning);
  clock_.Advance(seconds(59));
  EXPECT_TRUE(tracker_.Tick(Now()).empty());
  EXPECT_NE(StateOf("a"), OpState::kGivenUp);
}

TEST_F(OpTrackerTest, LateResultAfterGiveUpIsIgnoredAndHarmless) {
  Submit("a");
  Submit("b");
  Submit("c");
  clock_.Advance(seconds(60));
  tracker_.NodeLost("n1", Now());
  EXPECT_TRUE(tracker_.Result("a", true, "", Now()).empty());
  EXPECT_EQ(StateOf("a"), OpState::kGivenUp);
  EXPECT_FALSE(tracker_.Find("a")->result_ok);
  EXPECT_EQ(StateOf("c"), OpState::kQueued);  // the slot is not freed a second time
  EXPECT_TRUE(tracker_.Event("a", 1, Now()).empty());
  EXPECT_EQ(tracker_.NodeHeartbeat("n1", {}, Now()), (OpActions{{K::kSend, "c"}}));
  EXPECT_TRUE(tracker_.Result("b", false, "late", Now()).empty());
  EXPECT_EQ(tracker_.CountByState(OpState::kRunning), 1u);
}

TEST_F(OpTrackerTest, DenseEventsAreDeliveredAndAcked) {
  Submit("a");
  EXPECT_EQ(tracker_.Event("a", 1, Now()),
            (OpActions{{K::kDeliverEvent, "a", 1}, {K::kAckEvents, "a", 1}}));
  EXPECT_EQ(tracker_.Event("a", 2, Now()),
            (OpActions{{K::kDeliverEvent, "a", 2}, {K::kAckEvents, "a", 2}}));
  EXPECT_EQ(tracker_.Find("a")->last_seq, 2u);
}

TEST_F(OpTrackerTest, ReplayedEventsAreDroppedAndReacked) {
  Submit("a");
  tracker_.Event("a", 1, Now());
  tracker_.Event("a", 2, Now());
  EXPECT_EQ(tracker_.Event("a", 1, Now()),
            (OpActions{{K::kDropDuplicateEvent, "a", 1}, {K::kAckEvents, "a", 2}}));
  EXPECT_EQ(tracker_.Event("a", 2, Now()),
            (OpActions{{K::kDropDuplicateEvent, "a", 2}, {K::kAckEvents, "a", 2}}));
  tracker_.Result("a", true, "", Now());
  EXPECT_EQ(tracker_.Event("a", 2, Now()),
            (OpActions{{K::kDropDuplicateEvent, "a", 2}, {K::kAckEvents, "a", 2}}));
  EXPECT_TRUE(tracker_.Event("a", 3, Now()).empty());  // after the result: ignored
}

TEST_F(OpTrackerTest, GappedEventWaitsForTheReplay) {
  Submit("a");
  tracker_.Event("a", 1, Now());
  EXPECT_TRUE(tracker_.Event("a", 4, Now()).empty());
  EXPECT_EQ(tracker_.Find("a")->missing_seq, 2u);
  EXPECT_EQ(tracker_.Find("a")->last_seq, 1u);
  // The node replays from the first unacked seq.
  EXPECT_EQ(tracker_.Event("a", 2, Now()),
            (OpActions{{K::kDeliverEvent, "a", 2}, {K::kAckEvents, "a", 2}}));
  EXPECT_EQ(tracker_.Find("a")->missing_seq, 0u);
  tracker_.Event("a", 3, Now());
  EXPECT_EQ(tracker_.Event("a", 4, Now()),
            (OpActions{{K::kDeliverEvent, "a", 4}, {K::kAckEvents, "a", 4}}));
}

TEST_F(OpTrackerTest, EventsRenewTheLease) {
  Submit("a");
  clock_.Advance(seconds(30));
  tracker_.Tick(Now());
  EXPECT_EQ(StateOf("a"), OpState::kStalled);
  tracker_.Event("a", 1, Now());
  EXPECT_EQ(StateOf("a"), OpState::kRunning);
  clock_.Advance(seconds(59));
  tracker_.Tick(Now());
  EXPECT_EQ(StateOf("a"), OpState::kStalled);
}

TEST_F(OpTrackerTest, EventsForQueuedOrUnknownOpsAreIgnored) {
  Submit("a");
  Submit("b");
  Submit("c");
  EXPECT_TRUE(tracker_.Event("c", 1, Now()).empty());
  EXPECT_TRUE(tracker_.Event("unknown", 1, Now()).empty());
}

TEST_F(OpTrackerTest, CancelQueuedIsImmediateAndKeepsTheQueueOrder) {
  Submit("a");
  Submit("b");
  Submit("c");
  Submit("d");
  EXPECT_TRUE(tracker_.Cancel("c", Now()).empty());
  EXPECT_EQ(StateOf("c"), OpState::kCancelled);
  EXPECT_EQ(tracker_.Result("a", true, "", Now()), (OpActions{{K::kSend, "d"}}));
}

TEST_F(OpTrackerTest, CancelRunningSendsCancelOnceAndTheResultMarksCancelled) {
  Submit("a");
  Submit("b");
  EXPECT_EQ(tracker_.Cancel("a", Now()), (OpActions{{K::kSendCancel, "a"}}));
  EXPECT_TRUE(tracker_.Cancel("a", Now()).empty());
  EXPECT_EQ(StateOf("a"), OpState::kRunning);
  tracker_.Result("a", true, "", Now());
  EXPECT_EQ(StateOf("a"), OpState::kCancelled);
  tracker_.Cancel("b", Now());
  tracker_.Result("b", false, "killed", Now());
  EXPECT_EQ(StateOf("b"), OpState::kCancelled);
}

TEST_F(OpTrackerTest, CancelStalledSendsCancelAndTheLeaseStillBoundsIt) {
  Submit("a");
  clock_.Advance(seconds(11));
  tracker_.Tick(Now());
  EXPECT_EQ(tracker_.Cancel("a", Now()), (OpActions{{K::kSendCancel, "a"}}));
  clock_.Advance(seconds(49));
  EXPECT_EQ(tracker_.Tick(Now()), (OpActions{{K::kFailDeployment, "a", "node n1 lost"}}));
  EXPECT_EQ(StateOf("a"), OpState::kGivenUp);
}

TEST_F(OpTrackerTest, CancelTerminalOrUnknownDoesNothing) {
  Submit("a");
  Submit("b");
  Submit("q");
  tracker_.Cancel("q", Now());
  tracker_.Result("a", true, "", Now());
  clock_.Advance(seconds(60));
  tracker_.Tick(Now());
  for (const char* id : {"a", "b", "q", "unknown"}) {
    EXPECT_TRUE(tracker_.Cancel(id, Now()).empty()) << id;
  }
  EXPECT_EQ(StateOf("a"), OpState::kSucceeded);
  EXPECT_EQ(StateOf("b"), OpState::kGivenUp);
  EXPECT_EQ(StateOf("q"), OpState::kCancelled);
}

// Random interleavings of every input; invariants hold at each step and, once time runs past
// the lease, nothing is left running or stalled.
TEST(OpTrackerProperty, NeverStuck) {
  const OpTrackerOptions options{seconds(60), seconds(10), 2};
  const std::vector<std::string> nodes = {"n1", "n2", "n3"};
  std::map<OpState, std::size_t> reached;  // over all seeds, to show the walk covers each end
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&rng](std::size_t n) {
      return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    testing::FakeClock clock;
    OpTracker tracker(options);
    std::vector<std::string> ids;
    std::map<std::string, std::string> node_of;
    std::map<std::string, int> sends, fails;
    std::map<std::string, std::uint64_t> next_seq;

    auto record = [&](const OpActions& actions) {
      for (const OpAction& a : actions) {
        if (a.kind == K::kSend) ++sends[a.op_id];
        if (a.kind == K::kFailDeployment) {
          ++fails[a.op_id];
          EXPECT_EQ(a.message, "node " + node_of[a.op_id] + " lost");
        }
      }
    };
    auto check = [&]() {
      std::map<std::string, int> active;
      for (const std::string& id : ids) {
        OpState s = *tracker.State(id);
        if (s == OpState::kRunning || s == OpState::kStalled) ++active[node_of[id]];
        EXPECT_LE(sends[id], 1) << id;
        EXPECT_EQ(sends[id] == 0, s == OpState::kQueued || (s == OpState::kCancelled &&
                                                            !tracker.Find(id)->cancel_requested))
            << id << " " << ToString(s);
        EXPECT_EQ(fails[id], s == OpState::kGivenUp ? 1 : 0) << id;
      }
      for (const auto& [node, n] : active) EXPECT_LE(n, options.max_running_per_node) << node;
    };

    for (int step = 0; step < 400; ++step) {
      clock.Advance(milliseconds(pick(8000)));
      const auto now = clock.Now();
      const std::string node = nodes[pick(nodes.size())];
      const std::string op = ids.empty() ? "" : ids[pick(ids.size())];
      switch (ids.empty() ? 0 : pick(8)) {
        case 0: {
          std::string id = "op" + std::to_string(ids.size());
          ids.push_back(id);
          node_of[id] = node;
          record(tracker.Submit(id, node, now));
          break;
        }
        case 1: {
          std::vector<std::string> listed;
          for (const std::string& id : ids)
            if (node_of[id] == node && pick(2) == 0) listed.push_back(id);
          record(tracker.NodeHeartbeat(node, listed, now));
          break;
        }
        case 2:
          record(tracker.Event(op, pick(3) == 0 ? next_seq[op] + 2 : ++next_seq[op], now));
          break;
        case 3:
          record(tracker.Result(op, pick(2) == 0, "err", now));
          break;
        case 4:
          record(tracker.Cancel(op, now));
          break;
        case 5:
          record(tracker.NodeLost(node, now));
          break;
        case 6:
          record(tracker.Submit(op, node_of[op], now));  // a resubmission changes nothing
          break;
        default:
          record(tracker.Tick(now));
      }
      check();
    }
    // Every node goes silent: each round past the lease ends the ops sent in the previous
    // one, so within (ops / slots + 1) rounds nothing is running or stalled.
    const std::size_t bound = ids.size() / options.max_running_per_node + 1;
    for (std::size_t round = 0; round <= bound; ++round) {
      clock.Advance(options.lease);
      record(tracker.Tick(clock.Now()));
      check();
    }
    EXPECT_EQ(tracker.CountByState(OpState::kRunning), 0u) << "seed " << seed;
    EXPECT_EQ(tracker.CountByState(OpState::kStalled), 0u) << "seed " << seed;
    for (const std::string& id : ids) ++reached[*tracker.State(id)];
  }
  for (OpState s : {OpState::kQueued, OpState::kSucceeded, OpState::kFailed, OpState::kCancelled,
                    OpState::kGivenUp}) {
    EXPECT_GT(reached[s], 0u) << ToString(s);
  }
}

}  // namespace
}  // namespace slipway
