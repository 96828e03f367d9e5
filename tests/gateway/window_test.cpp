#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "gateway/target.h"

namespace slipway::gateway {
namespace {

using W = SlidingWindow;

TEST(SlidingWindow, ReadsZeroWithoutRequests) {
  W w;
  WindowStats s = w.Read(100, W::kSlots);
  EXPECT_EQ(s.requests, 0);
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(s.p50, 0);
  EXPECT_EQ(s.p99, 0);
}

TEST(SlidingWindow, CountsRequestsAndServerErrors) {
  W w;
  for (int status : {200, 404, 499, 500, 502, 503}) w.Record(100, status, 0.01);
  w.Record(101, 504, 0.02);
  WindowStats s = w.Read(101, W::kSlots);
  EXPECT_EQ(s.requests, 7);
  EXPECT_EQ(s.errors, 4);
  s = w.Read(101, 1);
  EXPECT_EQ(s.requests, 1);
  EXPECT_EQ(s.errors, 1);
}

TEST(SlidingWindow, ReadCoversTheLastSecondsUpToAndIncludingNow) {
  W w;
  // Second 100 + k gets k + 1 requests.
  for (int second = 100; second < 110; ++second)
    for (int i = 0; i <= second - 100; ++i) w.Record(second, 200, 0.001);
  EXPECT_EQ(w.Read(109, 1).requests, 10);
  EXPECT_EQ(w.Read(109, 3).requests, 10 + 9 + 8);
  EXPECT_EQ(w.Read(105, 2).requests, 6 + 5) << "later seconds are not counted";
  EXPECT_EQ(w.Read(109, 10).requests, 55);
  EXPECT_EQ(w.Read(99, W::kSlots).requests, 0);
  EXPECT_EQ(w.Read(109, 0).requests, 10) << "at least one second";
  EXPECT_EQ(w.Read(109, 1000).requests, 55) << "at most kSlots";
}

TEST(SlidingWindow, SlotsExpireAfterKSlotsSeconds) {
  W w;
  w.Record(100, 500, 0.5);
  EXPECT_EQ(w.Read(100 + W::kSlots - 1, W::kSlots).requests, 1);
  EXPECT_EQ(w.Read(100 + W::kSlots, W::kSlots).requests, 0);
  w.Record(100 + W::kSlots, 200, 0.001);  // the same slot for a new second
  WindowStats s = w.Read(100 + W::kSlots, W::kSlots);
  EXPECT_EQ(s.requests, 1);
  EXPECT_EQ(s.errors, 0);
  EXPECT_LT(s.p99, 0.01) << "the old second's latencies are gone too";
  w.Record(100, 500, 0.5);  // late for a slot already reused: dropped
  EXPECT_EQ(w.Read(100 + W::kSlots, W::kSlots).requests, 1);
}

TEST(SlidingWindow, PercentilesAreWithinOneBucketOfTheTrueQuantiles) {
  std::mt19937 rng(42);
  std::lognormal_distribution<double> latency(std::log(0.02), 0.8);  // around 20 ms
  std::vector<double> samples;
  W w;
  for (int i = 0; i < 20000; ++i) {
    samples.push_back(latency(rng));
    w.Record(1000 + i % 10, 200, samples.back());
  }
  std::sort(samples.begin(), samples.end());
  WindowStats s = w.Read(1009, 10);
  ASSERT_EQ(s.requests, 20000);
  for (auto [got, q] : {std::pair{s.p50, 0.50}, {s.p95, 0.95}, {s.p99, 0.99}}) {
    double truth = samples[static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1))];
    EXPECT_LE(std::abs(W::BucketOf(got) - W::BucketOf(truth)), 1) << q;
    EXPECT_NEAR(got, truth, truth * 0.15) << q;
  }
  EXPECT_LT(s.p50, s.p95);
  EXPECT_LT(s.p95, s.p99);
}

TEST(SlidingWindow, OneLatencyStaysInsideItsBucket) {
  W w;
  for (int i = 0; i < 100; ++i) w.Record(5, 200, 0.05);
  WindowStats s = w.Read(5, 1);
  int b = W::BucketOf(0.05);
  for (double p : {s.p50, s.p95, s.p99}) {
    EXPECT_GT(p, W::UpperBound(b - 1));
    EXPECT_LE(p, W::UpperBound(b));
  }
}

TEST(SlidingWindow, TheOpenEndedLastBucketReportsItsLowerBound) {
  W w;
  w.Record(5, 504, 30.0);
  EXPECT_EQ(w.Read(5, 1).p99, W::UpperBound(W::kLatencyBuckets - 2));
}

TEST(SlidingWindow, BucketsGrowGeometricallyAndMonotonically) {
  EXPECT_EQ(W::BucketOf(-1), 0);
  EXPECT_EQ(W::BucketOf(0), 0);
  EXPECT_EQ(W::BucketOf(10e-6), 0);
  EXPECT_EQ(W::BucketOf(10.5e-6), 1);
  EXPECT_DOUBLE_EQ(W::UpperBound(0), 10e-6);
  for (int b = 1; b < W::kLatencyBuckets - 1; ++b) {
    EXPECT_NEAR(W::UpperBound(b) / W::UpperBound(b - 1), 1.15, 1e-9) << b;
    EXPECT_EQ(W::BucketOf(W::UpperBound(b)), b) << "a bound belongs to its bucket";
    EXPECT_EQ(W::BucketOf(std::nextafter(W::UpperBound(b - 1), 1e9)), b) << b;
  }
  EXPECT_GT(W::UpperBound(W::kLatencyBuckets - 2), 5.0);
  EXPECT_TRUE(std::isinf(W::UpperBound(W::kLatencyBuckets - 1)));
  EXPECT_EQ(W::BucketOf(1e6), W::kLatencyBuckets - 1);
  int last = 0;
  for (double s = 1e-6; s < 100; s *= 1.01) {
    int b = W::BucketOf(s);
    ASSERT_GE(b, last);
    ASSERT_LE(b - last, 1);
    last = b;
  }
}

TEST(SlidingWindow, ConcurrentRecordsInAClaimedSecondAreAllCounted) {
  W w;
  w.Record(7, 200, 0.001);  // claims the slot before the threads start
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&w] {
      for (int i = 0; i < 10000; ++i) w.Record(7, i % 10 == 0 ? 500 : 200, 0.002);
    });
  }
  for (auto& t : threads) t.join();
  WindowStats s = w.Read(7, 1);
  EXPECT_EQ(s.requests, 40001);
  EXPECT_EQ(s.errors, 4000);
}

TEST(SlidingWindow, RacingClaimsOfOneSecondMayOnlyLoseRecords) {
  // The threads move from second to second together, so every claim races records of the
  // same second: those may be lost to the zeroing, never counted twice or elsewhere.
  W w;
  constexpr int kThreads = 4, kSeconds = 1000, kPerSecond = 10;
  std::barrier step(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int second = 0; second < kSeconds; ++second) {
        for (int i = 0; i < kPerSecond; ++i) w.Record(second, 200, 0.001);
        step.arrive_and_wait();
      }
    });
  }
  for (auto& t : threads) t.join();
  WindowStats s = w.Read(kSeconds - 1, W::kSlots);
  EXPECT_LE(s.requests, kThreads * kPerSecond * W::kSlots);
  EXPECT_GT(s.requests, kThreads * kPerSecond * W::kSlots / 2);
  EXPECT_EQ(s.errors, 0);
}

TEST(Target, WindowIsEmptyUntilTheFirstRequest) {
  Target t("x", "127.0.0.1", 1);
  EXPECT_EQ(t.Window(W::kSlots).requests, 0);
  t.BeginRequest();
  t.BeginRequest();
  t.EndRequest(200, 0.01);
  t.EndRequest(503, 0.2);
  WindowStats s = t.Window(W::kSlots);
  EXPECT_EQ(s.requests, 2);
  EXPECT_EQ(s.errors, 1);
  EXPECT_GT(s.p99, 0.1);
  EXPECT_EQ(t.inflight(), 0);
}

TEST(Target, ConcurrentFirstRequestsShareOneWindow) {
  for (int round = 0; round < 20; ++round) {
    Target t("x", "127.0.0.1", 1);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&t] {
        for (int n = 0; n < 100; ++n) {
          t.BeginRequest();
          t.EndRequest(200, 0.001);
        }
      });
    }
    for (auto& th : threads) th.join();
    // A record racing a slot's claim at a second boundary may be lost, never more.
    EXPECT_LE(t.Window(W::kSlots).requests, 400);
    EXPECT_GE(t.Window(W::kSlots).requests, 390);
    EXPECT_EQ(t.requests(), 400);
  }
}

}  // namespace
}  // namespace slipway::gateway
