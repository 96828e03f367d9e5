// Routes owned by a sandbox (SetRoutesOf) and routes that follow another app's main route.
#include <gtest/gtest.h>

#include <algorithm>

#include "gateway/router.h"

namespace slipway::gateway {
namespace {

std::shared_ptr<Target> T(int port) {
  return std::make_shared<Target>("t" + std::to_string(port), "127.0.0.1", port);
}

Route Main(std::string app, std::shared_ptr<Target> target) {
  Route r;
  r.app = std::move(app);
  r.hosts = {r.app + ".localhost"};
  r.target = std::move(target);
  return r;
}

// A sandbox's route on its own listener, following `app`.
Route Follower(std::string app, std::string listener) {
  Route r;
  r.app = app;
  r.hosts = {"*"};
  r.listener = std::move(listener);
  r.follow = std::move(app);
  return r;
}

Route Plain(std::string app, std::string listener, std::shared_ptr<Target> target) {
  Route r;
  r.app = std::move(app);
  r.hosts = {"*"};
  r.listener = std::move(listener);
  r.target = std::move(target);
  return r;
}

// The route on `listener` for any host, from the current table.
const Route* On(const std::shared_ptr<const RouteTable>& table, std::string_view listener) {
  return table->Match(listener, RequestInfo{"x.localhost", "/", nullptr});
}

// The ports a request on `listener` may go to, preferred first ("" when nothing serves).
std::vector<int> Serving(const Router& router, std::string_view listener) {
  auto table = router.Snapshot();
  const Route* r = On(table, listener);
  std::vector<int> ports;
  if (!r) return ports;
  std::vector<http1::HeaderField> headers;
  Choice c = Choose(*r, RequestInfo{"x.localhost", "/", &headers});
  for (std::size_t i = 0; i < c.count; ++i) ports.push_back(c.targets[i]->port());
  std::sort(ports.begin(), ports.end());
  return ports;
}

TEST(RouterFollow, FollowerTakesTheFollowedAppsTargetWhenPublished) {
  Router router;
  router.SetRoute(Main("api", T(1)));
  router.SetRoutesOf("qa", {Follower("api", "qa")});
  EXPECT_EQ(Serving(router, "qa"), std::vector<int>{1});
  auto table = router.Snapshot();
  const Route* r = On(table, "qa");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->owner, "qa");
  EXPECT_EQ(r->follow, "api");
}

TEST(RouterFollow, FollowerTracksSwitchPoolSidesAndRemoval) {
  Router router;
  router.SetRoute(Main("api", T(1)));
  router.SetRoutesOf("qa", {Follower("api", "qa")});

  router.Switch("api", T(2));
  EXPECT_EQ(Serving(router, "qa"), std::vector<int>{2});

  ASSERT_TRUE(router.SetPool("api", {T(3), T(4)}));
  EXPECT_EQ(Serving(router, "qa"), (std::vector<int>{3, 4}));

  Side stable{"stable", 90, {T(5)}};
  Side canary{"canary", 10, {T(6)}};
  ASSERT_TRUE(router.SetSides("api", {stable, canary}));
  auto table = router.Snapshot();
  const Route* r = On(table, "qa");
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->sides.size(), 2u);
  EXPECT_EQ(r->sides[0].targets[0]->port(), 5);
  EXPECT_EQ(r->sides[1].targets[0]->port(), 6);
  EXPECT_EQ(Serving(router, "qa").size(), 2u);  // preferred side, then the other as fallback

  router.RemoveRoute("api");
  table = router.Snapshot();
  r = On(table, "qa");
  ASSERT_NE(r, nullptr) << "the sandbox's route stays; it serves nothing";
  EXPECT_TRUE(r->empty());
  EXPECT_TRUE(Serving(router, "qa").empty());

  router.SetRoute(Main("api", T(7)));
  EXPECT_EQ(Serving(router, "qa"), std::vector<int>{7});
}

TEST(RouterFollow, FollowerOfAMissingAppServesNothingUntilItAppears) {
  Router router;
  Route f = Follower("web", "qa");
  f.target = T(9);  // ignored: a follower's own targets are overwritten
  router.SetRoutesOf("qa", {f});
  EXPECT_TRUE(Serving(router, "qa").empty());
  router.SetRoute(Main("web", T(1)));
  EXPECT_EQ(Serving(router, "qa"), std::vector<int>{1});
}

TEST(RouterFollow, FollowsTheMainRouteOnlyNotTheAppsOtherRoutes) {
  Router router;
  Route header = Main("api", T(8));
  header.when = {{Predicate::Kind::kHeader, "X-Slipway-Sandbox", "qa"}};
  router.SetRoute(Main("api", T(1)));
  auto routes = router.Snapshot()->routes();
  routes.insert(routes.begin(), header);  // first in the table, yet not the main route
  router.SetRoutes(routes);
  router.SetRoutesOf("qa", {Follower("api", "qa")});
  EXPECT_EQ(Serving(router, "qa"), std::vector<int>{1});
}

TEST(RouterFollow, ChainsResolveToTheirEndAndCyclesServeNothing) {
  Router router;
  router.SetRoute(Main("api", T(1)));
  Route middle = Main("edge", nullptr);  // edge's main route follows api
  middle.follow = "api";
  router.SetRoute(middle);
  router.SetRoutesOf("qa", {Follower("edge", "qa")});
  EXPECT_EQ(Serving(router, "qa"), std::vector<int>{1});
  router.Switch("api", T(2));
  EXPECT_EQ(Serving(router, "qa"), std::vector<int>{2});

  Route a = Main("a", nullptr);
  a.follow = "b";
  Route b = Main("b", nullptr);
  b.follow = "a";
  router.SetRoute(a);
  router.SetRoute(b);
  router.SetRoutesOf("loop", {Follower("a", "loop")});
  EXPECT_TRUE(Serving(router, "loop").empty());
}

TEST(RouterFollow, SetRoutesOfReplacesOnlyItsOwnersRoutes) {
  Router router;
  router.SetRoute(Main("api", T(1)));
  router.SetRoutesOf("qa", {Plain("api", "qa", T(2)), Plain("web", "qa-web", T(3))});
  router.SetRoutesOf("dev", {Plain("api", "dev", T(4))});
  auto count = [&](std::string_view owner) {
    auto routes = router.Snapshot()->routes();
    return std::count_if(routes.begin(), routes.end(),
                         [&](const Route& r) { return r.owner == owner; });
  };
  EXPECT_EQ(count("qa"), 2);
  EXPECT_EQ(count("dev"), 1);
  EXPECT_EQ(count(""), 1);

  router.SetRoutesOf("qa", {Plain("api", "qa", T(5))});  // one publish replaces both
  EXPECT_EQ(count("qa"), 1);
  EXPECT_EQ(Serving(router, "qa"), std::vector<int>{5});
  EXPECT_TRUE(Serving(router, "qa-web").empty());
  EXPECT_EQ(Serving(router, "dev"), std::vector<int>{4});
  EXPECT_EQ(router.Current("api")->port(), 1);

  router.SetRoutesOf("qa", {});
  EXPECT_EQ(count("qa"), 0);
  EXPECT_EQ(count("dev"), 1);
  EXPECT_EQ(count(""), 1);

  std::uint64_t version = router.version();
  router.SetRoutesOf("", {Plain("x", "x", T(6))});  // an empty owner is refused
  EXPECT_EQ(router.version(), version);
  EXPECT_EQ(count(""), 1);
}

TEST(RouterFollow, RemoveRouteKeepsRoutesOfOtherOwners) {
  Router router;
  router.SetRoute(Main("api", T(1)));
  router.SetRoutesOf("qa", {Follower("api", "qa"), Plain("api", "qa-own", T(2))});
  router.RemoveRoute("api");
  auto routes = router.Snapshot()->routes();
  ASSERT_EQ(routes.size(), 2u);
  for (const auto& r : routes) EXPECT_EQ(r.owner, "qa");
  EXPECT_EQ(Serving(router, "qa-own"), std::vector<int>{2});
  EXPECT_EQ(router.Current("api"), nullptr);
}

TEST(RouterFollow, AnOwnedRouteIsNeverTheAppsMainRoute) {
  Router router;
  Route owned = Main("api", T(2));  // main listener, no predicates, but owned
  router.SetRoutesOf("qa", {owned});
  EXPECT_EQ(router.Current("api"), nullptr);
  EXPECT_EQ(router.Switch("api", T(3)), nullptr);  // no main route to switch
  EXPECT_FALSE(router.SetPool("api", {T(3)}));
  router.SetRoute(Main("api", T(1)));  // added beside the owned one, not over it
  EXPECT_EQ(router.Snapshot()->routes().size(), 2u);
  EXPECT_EQ(router.Current("api")->port(), 1);
  router.Switch("api", T(4));
  for (const auto& r : router.Snapshot()->routes())
    EXPECT_EQ(r.target->port(), r.owner.empty() ? 4 : 2);
}

TEST(RouterFollow, AFollowersOwnGateIsTheAppsGate) {
  Router router;
  router.SetRoute(Main("api", T(1)));
  router.SetRoutesOf("qa", {Follower("api", "qa")});
  router.Gate("api")->Maintenance("upgrading");
  auto table = router.Snapshot();
  const Route* r = On(table, "qa");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->gate->mode(), AppGate::Mode::kMaintenance);
}

class CountingTap : public RequestTap {
 public:
  void Record(const TapEntry&) override { ++n; }
  int n = 0;
};

TEST(RouterTap, SetTapTurnsTappingOnAndOff) {
  Router router;
  EXPECT_FALSE(router.tapping());
  EXPECT_EQ(router.tap(), nullptr);
  auto tap = std::make_shared<CountingTap>();
  router.SetTap(tap);
  EXPECT_TRUE(router.tapping());
  EXPECT_EQ(router.tap(), tap);
  router.SetTap(nullptr);
  EXPECT_FALSE(router.tapping());
  EXPECT_EQ(router.tap(), nullptr);
}

}  // namespace
}  // namespace slipway::gateway
