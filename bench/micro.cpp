// Micro-benchmarks of the hot paths: the gateway's route lookup and target choice, webhook
// signature checks and manifest parsing. Run: build/release/bench/slipway_micro
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "gateway/router.h"
#include "manifest/manifest.h"
#include "webhook/webhook.h"

namespace {

using slipway::gateway::Choice;
using slipway::gateway::Predicate;
using slipway::gateway::RequestInfo;
using slipway::gateway::Route;
using slipway::gateway::Router;
using slipway::gateway::Side;
using slipway::gateway::Sticky;
using slipway::gateway::Target;
using Headers = std::vector<slipway::gateway::http1::HeaderField>;

void BM_RouteMatch(benchmark::State& state) {
  // Built in one go: adding routes one at a time copies the table each time (fine for the
  // control plane's handful of changes, quadratic for a 10,000-app setup loop).
  std::vector<Route> routes;
  for (int i = 0; i < state.range(0); ++i) {
    std::string name = "app" + std::to_string(i);
    routes.push_back(
        {name, {name + ".localhost"}, "", std::make_shared<Target>(name, "127.0.0.1", 1000 + i)});
  }
  slipway::gateway::RouteTable table(std::move(routes));
  std::string host = "app" + std::to_string(state.range(0) / 2) + ".localhost:8080";
  for (auto _ : state) benchmark::DoNotOptimize(table.Match(host, "/api/users"));
}
BENCHMARK(BM_RouteMatch)->Arg(1)->Arg(100)->Arg(10000);

// What a request pays: the atomic snapshot load plus the lookup.
void BM_RouterSnapshotAndMatch(benchmark::State& state) {
  Router router;
  for (int i = 0; i < 100; ++i) {
    std::string name = "app" + std::to_string(i);
    router.SetRoute(
        {name, {name + ".localhost"}, "", std::make_shared<Target>(name, "127.0.0.1", 1000 + i)});
  }
  for (auto _ : state) {
    auto snap = router.Snapshot();
    benchmark::DoNotOptimize(snap->Match("app50.localhost:8080", "/api/users"));
  }
}
BENCHMARK(BM_RouterSnapshotAndMatch)->Threads(1)->Threads(2);

// 10,000 apps; every 10th also has a sandbox route picked by a header and one picked by a
// baggage member, as preview environments do.
std::vector<Route> RoutesWithPredicates() {
  std::vector<Route> routes;
  for (int i = 0; i < 10000; ++i) {
    std::string name = "app" + std::to_string(i);
    std::string host = name + ".example.com";
    routes.push_back({name, {host}, "", std::make_shared<Target>(name, "127.0.0.1", 1000 + i)});
    if (i % 10 != 0) continue;
    auto sandbox = std::make_shared<Target>(name + "-pr", "127.0.0.1", 20000 + i);
    routes.push_back({.app = name,
                      .hosts = {host},
                      .target = sandbox,
                      .when = {{Predicate::Kind::kHeader, "X-Slipway-Sandbox", "pr-42"}}});
    routes.push_back({.app = name,
                      .hosts = {host},
                      .target = sandbox,
                      .when = {{Predicate::Kind::kBaggage, "sandbox", "pr-42"}}});
  }
  return routes;
}

// A browser-like request head: 8 headers, the sandbox one last when present.
Headers BrowserHeaders(std::string_view host, bool sandbox) {
  return {{"Host", host},
          {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
          {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
          {"Accept-Language", "en-US,en;q=0.5"},
          {"Accept-Encoding", "gzip, deflate, br, zstd"},
          {"Cookie", "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark"},
          {"baggage", "userId=alice,serverNode=DF%2028,isProduction=false"},
          {sandbox ? "X-Slipway-Sandbox" : "X-Request-Id",
           sandbox ? "pr-42" : "3b1f0e2a-7c55-4f7e-9a0e-1d2c3b4a5f60"}};
}

// Arg 0: a plain app's host; 1: a sandbox app with the sandbox header (header route wins);
// 2: a sandbox app without it (both predicate routes checked, then the plain one);
// 3: an unknown host (exact, "*.example.com", "*" all miss).
void BM_RouteMatchPredicates(benchmark::State& state) {
  static const slipway::gateway::RouteTable table(RoutesWithPredicates());
  const char* hosts[] = {"app5001.example.com:8080", "app5000.example.com:8080",
                         "app5000.example.com:8080", "nope.example.com:8080"};
  const char* labels[] = {"plain", "header-matched", "predicates-miss", "unknown-host"};
  std::string_view host = hosts[state.range(0)];
  Headers headers = BrowserHeaders(host, state.range(0) == 1);
  RequestInfo request{host, "/api/users?page=2", &headers};
  for (auto _ : state) benchmark::DoNotOptimize(table.Match("", request));
  state.SetLabel(labels[state.range(0)]);
}
BENCHMARK(BM_RouteMatchPredicates)->DenseRange(0, 3);

// Arg 0: stable 90 / canary 10 without stickiness; 1: sticky by a cookie naming the canary.
void BM_Choose(benchmark::State& state) {
  auto side = [](std::string name, std::uint32_t weight, int port) {
    Side s{std::move(name), weight};
    s.targets.push_back(std::make_shared<Target>(s.name, "127.0.0.1", port));
    s.targets.push_back(std::make_shared<Target>(s.name + "-2", "127.0.0.1", port + 1));
    return s;
  };
  Route route{.app = "web", .sides = {side("stable", 90, 1000), side("canary", 10, 2000)}};
  if (state.range(0) == 1) {
    route.sticky = Sticky::kCookie;
    route.sticky_name = "slipway-side";
  }
  Headers headers = BrowserHeaders("web.example.com", false);
  headers[5].value = "session=8f14e45fceea167a5a36dedd4bea2543; slipway-side=canary; theme=dark";
  RequestInfo request{"web.example.com", "/", &headers};
  for (auto _ : state) benchmark::DoNotOptimize(slipway::gateway::Choose(route, request));
  state.SetLabel(state.range(0) == 1 ? "sticky-cookie" : "weighted-90-10");
}
BENCHMARK(BM_Choose)->Arg(0)->Arg(1);

void BM_VerifyGithubSignature(benchmark::State& state) {
  std::string body(static_cast<std::size_t>(state.range(0)), 'x');
  std::string secret = "a-webhook-secret";
  slipway::webhook::HeaderMap headers{
      {"x-hub-signature-256", "sha256=" + slipway::webhook::HmacSha256Hex(secret, body)}};
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        slipway::webhook::VerifySignature("github", headers, body, secret).ok());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_VerifyGithubSignature)->Arg(1024)->Arg(64 * 1024);

void BM_ParseManifest(benchmark::State& state) {
  const std::string text = R"(app: hello
build: ["cc -O2 -o server server.c -lpthread"]
test: ["./server --self-test"]
run: {runtime: process, command: ./server}
health: {path: /health, timeout: 10s, max_latency: 100ms, max_memory: 64MiB}
release: {keep: 3}
env: {A: b, C: d}
)";
  for (auto _ : state) benchmark::DoNotOptimize(slipway::ParseManifest(text, "slipway.yaml").ok());
}
BENCHMARK(BM_ParseManifest);

}  // namespace

BENCHMARK_MAIN();
