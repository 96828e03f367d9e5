// Micro-benchmarks of the hot paths: the gateway's route lookup, webhook signature checks
// and manifest parsing. Run: build/release/bench/slipway_micro
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "gateway/router.h"
#include "manifest/manifest.h"
#include "webhook/webhook.h"

namespace {

using slipway::gateway::Route;
using slipway::gateway::Router;
using slipway::gateway::Target;

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
