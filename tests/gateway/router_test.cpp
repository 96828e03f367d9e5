#include "gateway/router.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

namespace slipway::gateway {
namespace {

std::shared_ptr<Target> T(int port) {
  return std::make_shared<Target>("t" + std::to_string(port), "127.0.0.1", port);
}

TEST(RouteTable, MatchesHostIgnoringPortAndCase) {
  RouteTable table({{"hello", {"hello.localhost"}, "", T(1)}});
  ASSERT_NE(table.Match("Hello.LocalHost:8080", "/"), nullptr);
  EXPECT_EQ(table.Match("hello.localhost", "/x")->app, "hello");
  EXPECT_EQ(table.Match("other.localhost", "/"), nullptr);
  EXPECT_EQ(table.Match("", "/"), nullptr);
}

TEST(RouteTable, LongestPathPrefixWinsOnSegmentBoundaries) {
  RouteTable table({{"web", {"x.test"}, "", T(1)}, {"api", {"x.test"}, "/api", T(2)}});
  EXPECT_EQ(table.Match("x.test", "/api/users")->app, "api");
  EXPECT_EQ(table.Match("x.test", "/api")->app, "api");
  EXPECT_EQ(table.Match("x.test", "/apix")->app, "web") << "prefix must end at a path segment";
  EXPECT_EQ(table.Match("x.test", "/")->app, "web");
}

TEST(Router, SwitchReturnsReplacedTargetAndOldSnapshotsKeepTheirs) {
  Router router;
  auto v1 = T(1), v2 = T(2);
  router.SetRoute({"hello", {"hello.localhost"}, "", v1});
  auto before = router.Snapshot();
  EXPECT_EQ(router.Switch("hello", v2), v1);
  EXPECT_EQ(before->Match("hello.localhost", "/")->target, v1)
      << "an in-flight request keeps its snapshot";
  EXPECT_EQ(router.Snapshot()->Match("hello.localhost", "/")->target, v2);
  EXPECT_EQ(router.Current("hello"), v2);
}

TEST(Router, SetRouteReplacesAndRemoveRouteDeletes) {
  Router router;
  router.SetRoute({"a", {"a.localhost"}, "", T(1)});
  router.SetRoute({"b", {"b.localhost"}, "", nullptr});
  auto replaced = router.SetRoute({"a", {"a2.localhost"}, "", T(3)});
  EXPECT_EQ(replaced->port(), 1);
  EXPECT_EQ(router.Snapshot()->Match("a.localhost", "/"), nullptr);
  EXPECT_NE(router.Snapshot()->Match("a2.localhost", "/"), nullptr);
  EXPECT_EQ(router.Snapshot()->Match("b.localhost", "/")->target, nullptr)
      << "app without instance → 503";
  router.RemoveRoute("a");
  EXPECT_EQ(router.Snapshot()->routes().size(), 1u);
}

TEST(Router, PoolsRoundRobinAndOfferEveryTargetOnce) {
  Router router;
  router.SetRoute({"svc", {"svc.localhost"}, "", T(1)});
  ASSERT_TRUE(router.SetPool("svc", {T(10), T(11), T(12)}));
  auto snap = router.Snapshot();
  const Route* r = snap->Match("svc.localhost", "/");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->target, nullptr) << "a pool replaces the single target";
  std::vector<int> firsts;
  for (int i = 0; i < 3; ++i) {
    auto c = r->Candidates();
    ASSERT_EQ(c.size(), 3u);
    std::set<int> ports;
    for (const auto& t : c) ports.insert(t->port());
    EXPECT_EQ(ports, (std::set<int>{10, 11, 12})) << "each target once, for retries";
    firsts.push_back(c.front()->port());
  }
  EXPECT_EQ(std::set<int>(firsts.begin(), firsts.end()).size(), 3u) << "round robin";
  EXPECT_FALSE(router.SetPool("nope", {T(1)}));
  router.Switch("svc", T(2));
  EXPECT_TRUE(router.Snapshot()->Match("svc.localhost", "/")->pool.empty())
      << "a switch ends the pool";
}

TEST(Target, InflightAndMetrics) {
  Target t("x", "127.0.0.1", 1);
  t.BeginRequest();
  t.BeginRequest();
  EXPECT_EQ(t.inflight(), 2);
  t.EndRequest(200, 0.002);
  t.EndRequest(502, 0.5);
  EXPECT_EQ(t.inflight(), 0);
  EXPECT_EQ(t.requests(), 2);
  EXPECT_EQ(t.errors(), 1);
  EXPECT_EQ(t.bucket(1), 1);  // 0.002 ≤ 0.0025
}

TEST(Router, ReadersSeeAConsistentTableWhileWritersSwitch) {
  Router router;
  auto a = T(1), b = T(2);
  router.SetRoute({"hello", {"hello.localhost"}, "", a});
  std::atomic<bool> stop{false};
  std::atomic<long> misses{0};
  std::thread reader([&] {
    while (!stop) {
      auto snap = router.Snapshot();
      const Route* r = snap->Match("hello.localhost", "/");
      if (!r || !r->target) ++misses;
    }
  });
  for (int i = 0; i < 20000; ++i) router.Switch("hello", i % 2 ? a : b);
  stop = true;
  reader.join();
  EXPECT_EQ(misses.load(), 0);
}

}  // namespace
}  // namespace slipway::gateway
