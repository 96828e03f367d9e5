#include "gateway/router.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <new>
#include <set>
#include <thread>

// Counts heap allocations made on this thread while `counting` is set, to check that the
// per-request paths (Match, Choose) never allocate.
namespace {
thread_local bool counting = false;
thread_local long allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  if (counting) ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// Not inlined: GCC would otherwise see `free` of an `operator new` result at call sites.
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace slipway::gateway {
namespace {

using Headers = std::vector<http1::HeaderField>;

std::shared_ptr<Target> T(int port) {
  return std::make_shared<Target>("t" + std::to_string(port), "127.0.0.1", port);
}

// The allocations `f` makes on this thread.
template <typename F>
long AllocationsIn(F&& f) {
  allocations = 0;
  counting = true;
  f();
  counting = false;
  return allocations;
}

// The app of the route matched for `host` + `path` on `listener` with `headers`, or "-".
std::string AppFor(const RouteTable& table, std::string_view host, const Headers& headers,
                   std::string_view path = "/", std::string_view listener = "") {
  const Route* r = table.Match(listener, RequestInfo{host, path, &headers});
  return r ? r->app : "-";
}

Side S(std::string name, std::uint32_t weight, std::vector<int> ports) {
  Side side{std::move(name), weight};
  for (int p : ports) side.targets.push_back(T(p));
  return side;
}

// The port of the preferred target of each of `n` choices.
std::map<int, int> FirstPorts(const Route& route, const RequestInfo& request, int n) {
  std::map<int, int> counts;
  for (int i = 0; i < n; ++i) {
    Choice c = Choose(route, request);
    if (c.count > 0) ++counts[c.targets[0]->port()];
  }
  return counts;
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

// ---- Host tiers, listeners, ordering ----

TEST(RouteTable, ExactHostBeatsTheClosestWildcardWhichBeatsAny) {
  RouteTable table({
      {.app = "exact", .hosts = {"a.b.example.com"}, .target = T(1)},
      {.app = "b-wild", .hosts = {"*.b.example.com"}, .target = T(2)},
      {.app = "wild", .hosts = {"*.Example.com"}, .target = T(3)},
      {.app = "any", .hosts = {"*"}, .target = T(4)},
  });
  Headers none;
  EXPECT_EQ(AppFor(table, "a.b.example.com", none), "exact");
  EXPECT_EQ(AppFor(table, "A.B.EXAMPLE.COM:443", none), "exact");
  EXPECT_EQ(AppFor(table, "c.b.example.com", none), "b-wild");
  EXPECT_EQ(AppFor(table, "x.a.b.example.com", none), "b-wild") << "the closest wildcard";
  EXPECT_EQ(AppFor(table, "c.example.com", none), "wild");
  EXPECT_EQ(AppFor(table, "example.com", none), "any") << "a wildcard needs a label under it";
  EXPECT_EQ(AppFor(table, "other.org", none), "any");
  EXPECT_EQ(AppFor(table, "", none), "any");
}

TEST(RouteTable, ATierWhosePathsDoNotMatchFallsThroughToTheNext) {
  RouteTable table({{.app = "api", .hosts = {"x.test"}, .path_prefix = "/api", .target = T(1)},
                    {.app = "wild", .hosts = {"*.test"}, .target = T(2)}});
  EXPECT_EQ(table.Match("x.test", "/api/v1")->app, "api");
  EXPECT_EQ(table.Match("x.test", "/web")->app, "wild");
}

TEST(RouteTable, PortsAreStrippedAndIpv6LiteralsKeepTheirBrackets) {
  RouteTable table({{.app = "v6", .hosts = {"[::1]"}, .target = T(1)},
                    {.app = "v4", .hosts = {"127.0.0.1"}, .target = T(2)}});
  EXPECT_EQ(table.Match("[::1]:8080", "/")->app, "v6");
  EXPECT_EQ(table.Match("[::1]", "/")->app, "v6");
  EXPECT_EQ(table.Match("127.0.0.1:80", "/")->app, "v4");
  EXPECT_EQ(table.Match("[::2]:80", "/"), nullptr);
}

TEST(RouteTable, HostsLongerThanTheStackBufferStillMatch) {
  std::string host = std::string(300, 'a') + ".example.com";
  RouteTable table({{.app = "long", .hosts = {host}, .target = T(1)},
                    {.app = "wild", .hosts = {"*.example.com"}, .target = T(2)}});
  EXPECT_EQ(table.Match(host + ":80", "/")->app, "long");
  EXPECT_EQ(table.Match("b" + host, "/")->app, "wild");
}

TEST(RouteTable, ListenersAreSeparateRouteSets) {
  RouteTable table({{.app = "main", .hosts = {"x.test"}, .target = T(1)},
                    {.app = "admin", .hosts = {"x.test"}, .target = T(2), .listener = "admin"},
                    {.app = "only-b", .hosts = {"y.test", "*"}, .target = T(3), .listener = "b"}});
  Headers none;
  EXPECT_EQ(AppFor(table, "x.test", none), "main");
  EXPECT_EQ(AppFor(table, "x.test", none, "/", "admin"), "admin");
  EXPECT_EQ(AppFor(table, "y.test", none), "-") << "a route on listener b never matches on \"\"";
  EXPECT_EQ(AppFor(table, "z.test", none), "-") << "nor does b's catch-all";
  EXPECT_EQ(AppFor(table, "y.test", none, "/", "b"), "only-b");
  EXPECT_EQ(AppFor(table, "x.test", none, "/", "b"), "only-b") << "through b's own catch-all";
  EXPECT_EQ(AppFor(table, "x.test", none, "/", "c"), "-");
}

TEST(RouteTable, PredicatesThenOrderBreakTiesAfterPrefixLength) {
  Predicate a{Predicate::Kind::kHeader, "x-a", "1"}, b{Predicate::Kind::kHeader, "x-b", "2"};
  RouteTable table({
      {.app = "first", .hosts = {"p.test"}, .target = T(1)},
      {.app = "second", .hosts = {"p.test"}, .target = T(2)},
      {.app = "one-pred", .hosts = {"p.test"}, .target = T(3), .when = {a}},
      {.app = "two-preds", .hosts = {"p.test"}, .target = T(4), .when = {a, b}},
      {.app = "api", .hosts = {"p.test"}, .path_prefix = "/api", .target = T(5)},
  });
  EXPECT_EQ(AppFor(table, "p.test", {{"X-A", "1"}, {"X-B", "2"}}), "two-preds");
  EXPECT_EQ(AppFor(table, "p.test", {{"X-A", "1"}}), "one-pred");
  EXPECT_EQ(AppFor(table, "p.test", {{"X-B", "2"}}), "first") << "all predicates must hold";
  EXPECT_EQ(AppFor(table, "p.test", {{"X-A", "1"}, {"X-B", "2"}}, "/api/x"), "api")
      << "a longer prefix beats more predicates";
  EXPECT_EQ(table.Match("p.test", "/")->app, "first") << "the earliest of equals";
}

TEST(RouteTable, HigherPriorityWinsOverLongerPrefixes) {
  RouteTable table({
      {.app = "api", .hosts = {"p.test"}, .path_prefix = "/api/v1", .target = T(1)},
      {.app = "vip",
       .hosts = {"p.test"},
       .target = T(2),
       .priority = 1,
       .when = {{Predicate::Kind::kCookie, "vip", "yes"}}},
      {.app = "low", .hosts = {"p.test"}, .path_prefix = "/api/v1/x", .priority = -1},
  });
  EXPECT_EQ(AppFor(table, "p.test", {{"Cookie", "vip=yes"}}, "/api/v1/x"), "vip");
  EXPECT_EQ(AppFor(table, "p.test", {{"Cookie", "vip=no"}}, "/api/v1/x"), "api");
  EXPECT_EQ(AppFor(table, "p.test", {}, "/other"), "-");
}

TEST(RouteTable, PrefixesEndOnSegmentBoundariesOrAtTheQuery) {
  RouteTable table({{.app = "root", .hosts = {"x.test"}, .target = T(1)},
                    {.app = "api", .hosts = {"x.test"}, .path_prefix = "/api", .target = T(2)},
                    {.app = "docs", .hosts = {"x.test"}, .path_prefix = "/docs/", .target = T(3)}});
  EXPECT_EQ(table.Match("x.test", "/api?x=1")->app, "api");
  EXPECT_EQ(table.Match("x.test", "/api/")->app, "api");
  EXPECT_EQ(table.Match("x.test", "/apix")->app, "root");
  EXPECT_EQ(table.Match("x.test", "/ap")->app, "root");
  EXPECT_EQ(table.Match("x.test", "/docs/intro")->app, "docs");
  EXPECT_EQ(table.Match("x.test", "/docs")->app, "root") << "\"/docs/\" needs the slash";
}

// ---- Predicates ----

TEST(RouteTable, HeaderPredicatesIgnoreNameCaseAndCompareValuesExactly) {
  RouteTable table({{.app = "plain", .hosts = {"x.test"}, .target = T(1)},
                    {.app = "sandbox",
                     .hosts = {"x.test"},
                     .target = T(2),
                     .when = {{Predicate::Kind::kHeader, "X-Slipway-Sandbox", "pr-42"}}}});
  EXPECT_EQ(AppFor(table, "x.test", {{"x-slipway-sandbox", "pr-42"}}), "sandbox")
      << "a header route beats the plain route on the same host";
  EXPECT_EQ(AppFor(table, "x.test", {{"X-SLIPWAY-SANDBOX", "pr-42"}}), "sandbox");
  EXPECT_EQ(AppFor(table, "x.test", {{"X-Slipway-Sandbox", "a"}, {"x-slipway-sandbox", "pr-42"}}),
            "sandbox")
      << "any of repeated headers";
  EXPECT_EQ(AppFor(table, "x.test", {{"X-Slipway-Sandbox", "PR-42"}}), "plain");
  EXPECT_EQ(AppFor(table, "x.test", {{"X-Slipway-Sandbox", "pr-4"}}), "plain");
  EXPECT_EQ(AppFor(table, "x.test", {{"X-Other", "pr-42"}}), "plain");
  EXPECT_EQ(table.Match("x.test", "/")->app, "plain") << "no headers: predicates never hold";
}

TEST(RouteTable, CookiePredicatesReadEveryCookieHeader) {
  RouteTable table({{.app = "plain", .hosts = {"x.test"}, .target = T(1)},
                    {.app = "beta",
                     .hosts = {"x.test"},
                     .target = T(2),
                     .when = {{Predicate::Kind::kCookie, "beta", "on"}}}});
  EXPECT_EQ(AppFor(table, "x.test", {{"Cookie", "beta=on"}}), "beta");
  EXPECT_EQ(AppFor(table, "x.test", {{"Cookie", "a=b; beta=on; c=d"}}), "beta");
  EXPECT_EQ(AppFor(table, "x.test", {{"cookie", "a=b"}, {"COOKIE", "c=d;beta=on"}}), "beta");
  EXPECT_EQ(AppFor(table, "x.test", {{"Cookie", "beta=off; xbeta=on"}}), "plain");
  EXPECT_EQ(AppFor(table, "x.test", {{"Cookie", "Beta=on"}}), "plain") << "names are exact";
  EXPECT_EQ(AppFor(table, "x.test", {{"Cookie", "beta=one"}}), "plain");
  EXPECT_EQ(AppFor(table, "x.test", {{"Cookie", "beta"}}), "plain");
  EXPECT_EQ(AppFor(table, "x.test", {{"X-Cookie", "beta=on"}}), "plain");
}

TEST(RouteTable, BaggagePredicatesDecodeValuesAndIgnoreProperties) {
  RouteTable table({{.app = "plain", .hosts = {"x.test"}, .target = T(1)},
                    {.app = "sandbox",
                     .hosts = {"x.test"},
                     .target = T(2),
                     .when = {{Predicate::Kind::kBaggage, "sandbox", "pr 42/\xC3\xA9"}}},
                    {.app = "staging",
                     .hosts = {"x.test"},
                     .target = T(3),
                     .when = {{Predicate::Kind::kBaggage, "env", "staging"}}}});
  auto app = [&](std::string_view baggage) {
    return AppFor(table, "x.test", {{"baggage", baggage}});
  };
  EXPECT_EQ(app("sandbox=pr%2042%2F%C3%A9"), "sandbox");
  EXPECT_EQ(app("user=alice, sandbox = pr%2042%2f%c3%a9 ;ttl=60;x, z=1"), "sandbox");
  EXPECT_EQ(app("env=staging;p"), "staging");
  EXPECT_EQ(app("env=prod,env=staging"), "staging");
  EXPECT_EQ(AppFor(table, "x.test", {{"Baggage", "a=b"}, {"BAGGAGE", "env=staging"}}), "staging")
      << "several baggage headers";
  EXPECT_EQ(app("sandbox=pr%2042"), "plain");
  EXPECT_EQ(app("sandbox=pr%2042%2F%C3%A9x"), "plain");
  EXPECT_EQ(app("sandbox=pr%2042%2F%C3%A"), "plain") << "a truncated escape";
  EXPECT_EQ(app("sandbox=pr%zz42"), "plain") << "a malformed escape";
  EXPECT_EQ(app("xsandbox=pr%2042%2F%C3%A9"), "plain");
  EXPECT_EQ(app("env;staging"), "plain");
  EXPECT_EQ(app("other=1;env=staging"), "plain") << "a property is not a member";
  EXPECT_EQ(AppFor(table, "x.test", {{"X-Baggage", "env=staging"}}), "plain");
}

TEST(RouteTable, LongBaggageValuesCompareWhole) {
  std::string value(1000, 'v');
  RouteTable table({{.app = "long",
                     .hosts = {"x.test"},
                     .target = T(1),
                     .when = {{Predicate::Kind::kBaggage, "k", value}}}});
  std::string member = "k=" + value;
  EXPECT_EQ(AppFor(table, "x.test", {{"baggage", member}}), "long");
  member.back() = 'w';
  EXPECT_EQ(AppFor(table, "x.test", {{"baggage", member}}), "-");
}

TEST(RouteTable, MatchAndChooseDoNotAllocate) {
  RouteTable table({
      {.app = "plain", .hosts = {"app.example.com"}, .target = T(1)},
      {.app = "wild", .hosts = {"*.example.com"}, .target = T(2)},
      {.app = "sandbox",
       .hosts = {"app.example.com"},
       .target = T(3),
       .when = {{Predicate::Kind::kHeader, "x-slipway-sandbox", "pr-42"},
                {Predicate::Kind::kCookie, "beta", "on"},
                {Predicate::Kind::kBaggage, "sandbox", "pr 42"}}},
      {.app = "sticky",
       .hosts = {"sticky.example.com"},
       .sides = {S("stable", 90, {10, 11}), S("canary", 10, {12})},
       .sticky = Sticky::kCookie,
       .sticky_name = "side"},
  });
  Headers headers{{"Host", "app.example.com"},
                  {"Cookie", "a=b; beta=on; side=canary"},
                  {"baggage", "k=v, sandbox=pr%2042;p=1"},
                  {"X-Slipway-Sandbox", "pr-42"}};
  std::string long_host = std::string(240, 'a') + ".example.com:8443";
  const Route* hit = nullptr;
  const Route* wild = nullptr;
  const Route* sticky = nullptr;
  Choice choice;
  long n = AllocationsIn([&] {
    hit = table.Match("", {"App.Example.com:8080", "/api?x", &headers});
    wild = table.Match("", {long_host, "/", &headers});
    sticky = table.Match("", {"sticky.example.com", "/", &headers});
    choice = Choose(*sticky, {"sticky.example.com", "/", &headers});
    choice = Choose(*hit, {"app.example.com", "/", &headers});
  });
  EXPECT_EQ(n, 0);
  std::string huge_host = std::string(300, 'a') + ".example.com";
  EXPECT_GT(AllocationsIn([&] {
              wild = table.Match("", {huge_host, "/", &headers});
            }),
            0)
      << "beyond the stack buffer (and a check that the counter counts)";
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->app, "sandbox");
  ASSERT_NE(wild, nullptr);
  EXPECT_EQ(wild->app, "wild");
  ASSERT_NE(sticky, nullptr);
  EXPECT_EQ(choice.count, 1u);
}

// ---- Choosing sides and targets ----

TEST(Choose, WithoutSidesTakesTheTargetOrTheRotatedPool) {
  Route single{.app = "a", .target = T(1)};
  Choice c = Choose(single, {});
  ASSERT_EQ(c.count, 1u);
  EXPECT_EQ(c.targets[0]->port(), 1);
  EXPECT_EQ(c.side, nullptr);
  Route pooled{.app = "p", .pool = {T(10), T(11), T(12)}};
  std::set<int> firsts;
  for (int i = 0; i < 3; ++i) {
    Choice p = Choose(pooled, {});
    ASSERT_EQ(p.count, 3u);
    std::set<int> ports{p.targets[0]->port(), p.targets[1]->port(), p.targets[2]->port()};
    EXPECT_EQ(ports, (std::set<int>{10, 11, 12}));
    firsts.insert(p.targets[0]->port());
  }
  EXPECT_EQ(firsts.size(), 3u) << "round robin";
  Route none{.app = "n"};
  EXPECT_EQ(Choose(none, {}).count, 0u);
}

TEST(Choose, WeightedSidesFollowTheWeightsClosely) {
  Route route{.app = "w", .sides = {S("stable", 90, {1}), S("canary", 10, {2})}};
  auto counts = FirstPorts(route, {}, 10000);
  EXPECT_NEAR(counts[1], 9000, 100) << "within one percentage point";
  EXPECT_NEAR(counts[2], 1000, 100);
  auto window = FirstPorts(route, {}, 100);
  EXPECT_NEAR(window[2], 10, 3) << "any window is close to the weights";
  Route three{.app = "3", .sides = {S("a", 50, {1}), S("b", 30, {2}), S("c", 20, {3})}};
  counts = FirstPorts(three, {}, 10000);
  EXPECT_NEAR(counts[1], 5000, 100);
  EXPECT_NEAR(counts[2], 3000, 100);
  EXPECT_NEAR(counts[3], 2000, 100);
}

TEST(Choose, SidesWithoutWeightOrTargetsAreNeverChosen) {
  Route route{.app = "z", .sides = {S("off", 0, {1}), S("on", 5, {2}), S("empty", 50, {})}};
  EXPECT_EQ(FirstPorts(route, {}, 1000), (std::map<int, int>{{2, 1000}}));
  Choice c = Choose(route, {});
  ASSERT_EQ(c.count, 1u) << "a weight-0 side is no fallback either";
  EXPECT_EQ(c.side->name, "on");
  Route drained{.app = "d", .target = T(9), .sides = {S("off", 0, {1})}};
  c = Choose(drained, {});
  ASSERT_EQ(c.count, 1u) << "no eligible side: the route's own target";
  EXPECT_EQ(c.targets[0]->port(), 9);
  EXPECT_EQ(c.side, nullptr);
}

TEST(Choose, RoutesAreEmptyWithoutAnyTarget) {
  EXPECT_TRUE((Route{.app = "a"}).empty());
  EXPECT_TRUE((Route{.app = "a", .sides = {S("x", 5, {})}}).empty());
  EXPECT_FALSE((Route{.app = "a", .sides = {S("x", 0, {1})}}).empty());
  EXPECT_FALSE((Route{.app = "a", .pool = {T(1)}}).empty());
  EXPECT_FALSE((Route{.app = "a", .target = T(1)}).empty());
}

TEST(Choose, StickyCookieKeepsAValidSideAndReissuesAStaleOne) {
  Route route{.app = "s",
              .sides = {S("stable", 90, {1}), S("canary", 10, {2})},
              .sticky = Sticky::kCookie,
              .sticky_name = "slipway-side"};
  Headers canary{{"Cookie", "a=b; slipway-side=canary"}};
  for (int i = 0; i < 100; ++i) {
    Choice c = Choose(route, {"s.test", "/", &canary});
    ASSERT_EQ(c.side->name, "canary");
    ASSERT_FALSE(c.set_cookie);
  }
  Headers stale{{"Cookie", "slipway-side=gone"}}, none;
  Choice c = Choose(route, {"s.test", "/", &stale});
  EXPECT_TRUE(c.set_cookie);
  EXPECT_NE(c.side, nullptr);
  EXPECT_TRUE(Choose(route, {"s.test", "/", &none}).set_cookie);
  EXPECT_TRUE(Choose(route, {}).set_cookie) << "no headers at all";
  route.sides[1].weight = 0;
  c = Choose(route, {"s.test", "/", &canary});
  EXPECT_EQ(c.side->name, "stable") << "a side drained to weight 0 is stale";
  EXPECT_TRUE(c.set_cookie);
}

TEST(Choose, StickyHeaderHashesEachValueToOneSideInProportion) {
  Route route{.app = "h",
              .sides = {S("stable", 90, {1}), S("canary", 10, {2})},
              .sticky = Sticky::kHeader,
              .sticky_name = "X-User"};
  std::map<std::string, int> per_side;
  for (int u = 0; u < 10000; ++u) {
    std::string user = "user-" + std::to_string(u);
    Headers h{{"x-user", user}};
    const Side* first = Choose(route, {"h.test", "/", &h}).side;
    for (int i = 0; i < 3; ++i) ASSERT_EQ(Choose(route, {"h.test", "/", &h}).side, first) << user;
    ++per_side[first->name];
  }
  EXPECT_NEAR(per_side["stable"], 9000, 300) << "within three percentage points";
  EXPECT_NEAR(per_side["canary"], 1000, 300);
  Headers none;
  EXPECT_FALSE(Choose(route, {"h.test", "/", &none}).set_cookie);
  EXPECT_NEAR(FirstPorts(route, {"h.test", "/", &none}, 1000)[2], 100, 10)
      << "without the header: weighted";
}

TEST(Choose, CandidatesAreTheChosenSideRotatedThenTheOtherSides) {
  Route route{.app = "f", .sides = {S("a", 1, {1, 2, 3}), S("off", 0, {4}), S("b", 1, {5, 6})}};
  std::set<int> a_firsts, b_firsts;
  for (int i = 0; i < 40; ++i) {
    Choice c = Choose(route, {});
    std::vector<int> ports;
    for (std::size_t k = 0; k < c.count; ++k) ports.push_back(c.targets[k]->port());
    ASSERT_EQ(ports.size(), 5u);
    bool on_a = c.side->name == "a";
    std::size_t split = on_a ? 3 : 2;
    std::set<int> own(ports.begin(), ports.begin() + static_cast<long>(split));
    std::vector<int> rest(ports.begin() + static_cast<long>(split), ports.end());
    EXPECT_EQ(own, on_a ? (std::set<int>{1, 2, 3}) : (std::set<int>{5, 6}));
    EXPECT_EQ(rest, on_a ? (std::vector<int>{5, 6}) : (std::vector<int>{1, 2, 3}));
    (on_a ? a_firsts : b_firsts).insert(ports[0]);
  }
  EXPECT_EQ(a_firsts.size(), 3u) << "the chosen side rotates";
  EXPECT_EQ(b_firsts.size(), 2u);
}

TEST(Choose, CandidatesAreCappedAtKMax) {
  std::vector<int> ports;
  for (int p = 100; p < 112; ++p) ports.push_back(p);
  Route sides{.app = "m", .sides = {S("a", 1, ports), S("b", 1, {1})}};
  EXPECT_EQ(Choose(sides, {}).count, Choice::kMax);
  Route pooled{.app = "p", .pool = S("x", 1, ports).targets};
  EXPECT_EQ(Choose(pooled, {}).count, Choice::kMax);
}

// ---- Gates, stats and the router ----

TEST(AppGate, ModesCarryTheirData) {
  AppGate gate;
  EXPECT_EQ(gate.mode(), AppGate::Mode::kOpen);
  EXPECT_EQ(gate.max_hold(), std::chrono::milliseconds(30000));
  gate.Pause(std::chrono::milliseconds(1500));
  EXPECT_EQ(gate.mode(), AppGate::Mode::kPaused);
  EXPECT_EQ(gate.max_hold(), std::chrono::milliseconds(1500));
  gate.Maintenance("back at five");
  EXPECT_EQ(gate.mode(), AppGate::Mode::kMaintenance);
  EXPECT_EQ(gate.message(), "back at five");
  gate.Resume();
  EXPECT_EQ(gate.mode(), AppGate::Mode::kOpen);
}

TEST(RouteStats, CountsRequestsByStatusClass) {
  RouteStats stats;
  for (int status : {101, 200, 204, 302, 404, 503, 0, 600}) stats.Record(status);
  EXPECT_EQ(stats.requests, 8);
  std::vector<std::int64_t> by_class;
  for (const auto& n : stats.by_class) by_class.push_back(n);
  EXPECT_EQ(by_class, (std::vector<std::int64_t>{1, 2, 1, 1, 1}));
}

TEST(Router, GatesSurviveTableChangesAndAreSharedByAnAppsRoutes) {
  Router router;
  router.SetRoute({.app = "a", .hosts = {"a.test"}, .target = T(1)});
  auto gate = router.Gate("a");
  auto old = router.Snapshot();
  EXPECT_EQ(old->routes()[0].gate, gate) << "the gate of an app already routed";
  gate->Pause(std::chrono::milliseconds(100));
  router.SetRoute({.app = "a", .hosts = {"a.test"}, .target = T(2)});
  EXPECT_EQ(router.Snapshot()->routes()[0].gate, gate);
  router.Switch("a", T(3));
  EXPECT_EQ(router.Snapshot()->routes()[0].gate->mode(), AppGate::Mode::kPaused);
  router.SetRoutes({{.app = "a", .hosts = {"a.test"}, .target = T(4)},
                    {.app = "a",
                     .hosts = {"a.test"},
                     .target = T(5),
                     .when = {{Predicate::Kind::kHeader, "x", "1"}}},
                    {.app = "b", .hosts = {"b.test"}, .target = T(6)}});
  auto snap = router.Snapshot();
  EXPECT_EQ(snap->routes()[0].gate, gate);
  EXPECT_EQ(snap->routes()[1].gate, gate) << "every route of the app";
  EXPECT_NE(snap->routes()[2].gate, gate);
  EXPECT_EQ(snap->routes()[2].gate, router.Gate("b"));
  auto c = router.Gate("c");
  c->Maintenance("later");
  router.SetRoute({.app = "c", .hosts = {"c.test"}, .target = T(7)});
  EXPECT_EQ(router.Snapshot()->Match("c.test", "/")->gate, c) << "a gate made before the route";
  router.RemoveRoute("a");
  router.SetRoute({.app = "a", .hosts = {"a.test"}, .target = T(8)});
  EXPECT_EQ(router.Snapshot()->Match("a.test", "/")->gate, gate);
}

TEST(Router, SetRouteReplacesOnlyTheMainRouteAndRemoveRouteRemovesAll) {
  Router router;
  Headers sandbox{{"x-slipway-sandbox", "pr-1"}};
  router.SetRoutes({{.app = "a", .hosts = {"a.test"}, .target = T(1)},
                    {.app = "a",
                     .hosts = {"a.test"},
                     .target = T(2),
                     .when = {{Predicate::Kind::kHeader, "X-Slipway-Sandbox", "pr-1"}}},
                    {.app = "a", .hosts = {"a.test"}, .target = T(3), .listener = "internal"},
                    {.app = "b", .hosts = {"b.test"}, .target = T(4)}});
  EXPECT_EQ(router.Current("a")->port(), 1);
  auto port = [&](std::string_view listener, const Headers* headers) {
    return router.Snapshot()->Match(listener, {"a.test", "/", headers})->target->port();
  };
  EXPECT_EQ(router.SetRoute({.app = "a", .hosts = {"a.test"}, .target = T(5)})->port(), 1);
  EXPECT_EQ(router.Snapshot()->routes().size(), 4u);
  EXPECT_EQ(port("", nullptr), 5);
  EXPECT_EQ(port("", &sandbox), 2) << "the predicate route is kept";
  EXPECT_EQ(port("internal", nullptr), 3) << "and the other listener's";
  EXPECT_EQ(router.Switch("a", T(6))->port(), 5);
  EXPECT_EQ(port("", &sandbox), 2);
  EXPECT_TRUE(router.SetPool("a", {T(7), T(8)}));
  EXPECT_EQ(port("", &sandbox), 2);
  EXPECT_EQ(router.Current("a"), nullptr) << "a pool clears the main target";
  router.RemoveRoute("a");
  ASSERT_EQ(router.Snapshot()->routes().size(), 1u);
  EXPECT_EQ(router.Snapshot()->routes()[0].app, "b");
  EXPECT_EQ(router.Switch("a", T(9)), nullptr);
  EXPECT_FALSE(router.SetPool("a", {T(1)}));
}

TEST(Router, SwitchEndsTheMainRoutesSides) {
  Router router;
  router.SetRoute(
      {.app = "a", .hosts = {"a.test"}, .sides = {S("stable", 90, {1}), S("canary", 10, {2})}});
  router.Switch("a", T(3));
  const Route* r = router.Snapshot()->Match("a.test", "/");
  EXPECT_TRUE(r->sides.empty());
  Choice c = Choose(*r, {});
  ASSERT_EQ(c.count, 1u);
  EXPECT_EQ(c.targets[0]->port(), 3);
}

TEST(Router, ReadersMatchAndChooseWhileWritersReplaceTheTable) {
  Router router;
  auto pinned = T(1);
  auto table = [&](int i) {
    return std::vector<Route>{{.app = "w",
                               .hosts = {"w.test"},
                               .sides = {S("stable", 90, {10 + i % 2}), S("canary", 10, {20})}},
                              {.app = "w",
                               .hosts = {"w.test"},
                               .target = pinned,
                               .when = {{Predicate::Kind::kHeader, "x-pin", "1"}}}};
  };
  router.SetRoutes(table(0));
  auto gate = router.Gate("w");
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0};
  std::thread reader([&] {
    Headers pin{{"X-Pin", "1"}}, plain{{"X-Pin", "0"}};
    for (long n = 0; !stop; ++n) {
      auto snap = router.Snapshot();
      const Headers& h = n % 2 ? pin : plain;
      const Route* r = snap->Match("", {"w.test", "/", &h});
      if (!r || r->gate != gate || Choose(*r, {"w.test", "/", &h}).count == 0) ++bad;
      if (r && n % 2 && r->target != pinned) ++bad;
    }
  });
  for (int i = 0; i < 5000; ++i) {
    if (i % 3 == 0) router.SetRoutes(table(i));
    if (i % 3 == 1) router.SetRoute({.app = "w", .hosts = {"w.test"}, .target = T(30)});
    if (i % 3 == 2) router.Switch("w", T(31));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace slipway::gateway
