#include "manifest/manifest.h"

#include <gtest/gtest.h>

namespace slipway {
namespace {

TEST(Manifest, ParsesEveryFieldAndDefaults) {
  auto m = ParseManifest(R"(app: hello
build:
  - make
test: ./run-tests
run:
  runtime: process
  command: ./server --port $PORT
health:
  path: /healthz
  timeout: 1.5s
  max_latency: 250ms
  max_memory: 64MiB
  probes: 5
release:
  keep: 7
deploy:
  watch_window: 2m
env:
  GREETING: hi
)",
                         "slipway.yaml");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->app, "hello");
  EXPECT_EQ(m->build, std::vector<std::string>{"make"});
  EXPECT_EQ(m->test, std::vector<std::string>{"./run-tests"});
  EXPECT_EQ(m->command, "./server --port $PORT");
  EXPECT_EQ(m->health_path, "/healthz");
  EXPECT_EQ(m->health_timeout.count(), 1500);
  EXPECT_EQ(m->max_latency.count(), 250);
  EXPECT_EQ(m->max_memory_bytes, 64LL << 20);
  EXPECT_EQ(m->probes, 5);
  EXPECT_EQ(m->keep, 7);
  EXPECT_EQ(m->watch_window.count(), 120000);
  EXPECT_EQ(m->drain_timeout.count(), 30000) << "default";
  EXPECT_EQ(m->env.at("GREETING"), "hi");

  auto minimal = ParseManifest("run: {command: ./app}\n", "slipway.yaml");
  ASSERT_TRUE(minimal.ok());
  EXPECT_EQ(minimal->max_latency.count(), 100);
  EXPECT_EQ(minimal->keep, 3);
  EXPECT_EQ(minimal->runtime, "process");
}

struct BadCase {
  const char* text;
  const char* expected;
};

class ManifestErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ManifestErrors, NameFileLineAndColumn) {
  auto m = ParseManifest(GetParam().text, "slipway.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kInvalid);
  EXPECT_EQ(m.status().message(), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ManifestErrors,
    ::testing::Values(
        BadCase{"run:\n  command: ./a\nhealth:\n  timeout: soon\n",
                "slipway.yaml:4:12: health.timeout: expected a duration like 10s or 500ms"},
        BadCase{"run:\n  command: ./a\nbuidl: [make]\n",
                "slipway.yaml:3:1: unknown key 'buidl' (expected one of: app, build, deploy, env, "
                "health, release, run, test)"},
        BadCase{"app: x\n", "slipway.yaml:1:1: run: required (how to start the app)"},
        BadCase{"run:\n  command: ./a\n  runtime: vm\n",
                "slipway.yaml:3:12: run.runtime: 'vm' is not supported (expected process, "
                "container or swarm)"},
        BadCase{"run: {command: ./a}\nrelease: {keep: 0}\n",
                "slipway.yaml:2:17: release.keep: expected a whole number from 1 to 100"},
        BadCase{"run: {command: ./a}\nenv: {PORT: '1'}\n",
                "slipway.yaml:2:7: env: PORT is assigned by slipway"},
        BadCase{"run: {command: ./a\n", "slipway.yaml:2:1: end of map flow not found"},
        BadCase{"", "slipway.yaml:1:1: manifest is empty"},
        BadCase{"- a\n- b\n", "slipway.yaml:1:1: manifest: expected a mapping"}));

TEST(Manifest, ContainerAndSwarmRuntimes) {
  auto c = ParseManifest(
      "run:\n  runtime: container\n  dockerfile: Dockerfile\n  port: 9000\n  memory: 64MiB\n"
      "  cpus: 0.5\n  volumes: ['/a:/b']\n  restart: always\n",
      "slipway.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->is_image_runtime());
  EXPECT_EQ(c->container_port, 9000);
  EXPECT_EQ(c->memory_bytes, 64 << 20);
  EXPECT_DOUBLE_EQ(c->cpus, 0.5);
  EXPECT_EQ(c->volumes, std::vector<std::string>{"/a:/b"});
  auto s = ParseManifest(
      "run:\n  runtime: swarm\n  image_tar: image.tar\n  replicas: 3\n"
      "  healthcheck: [/server, --probe]\n  update: {parallelism: 2, monitor: 3s, order: "
      "stop-first}\n",
      "slipway.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->replicas, 3);
  EXPECT_EQ(s->healthcheck, (std::vector<std::string>{"/server", "--probe"}));
  EXPECT_EQ(s->update_parallelism, 2);
  EXPECT_EQ(s->update_monitor.count(), 3000);
  EXPECT_EQ(s->update_order, "stop-first");
  auto back = Manifest::FromJson(s->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ToJson(), s->ToJson());
}

TEST(Manifest, RuntimeSpecificKeysAreChecked) {
  auto none = ParseManifest("run:\n  runtime: container\n", "slipway.yaml");
  EXPECT_EQ(
      none.status().message(),
      "slipway.yaml:2:3: run: a container needs exactly one of dockerfile, image_tar or image");
  auto two =
      ParseManifest("run:\n  runtime: container\n  image: a\n  dockerfile: D\n", "slipway.yaml");
  EXPECT_FALSE(two.ok());
  auto misplaced = ParseManifest("run:\n  command: ./a\n  replicas: 2\n", "slipway.yaml");
  EXPECT_EQ(misplaced.status().message(),
            "slipway.yaml:3:13: run.replicas: only applies to runtime: swarm");
  auto order = ParseManifest("run:\n  runtime: swarm\n  image: a\n  update: {order: sideways}\n",
                             "slipway.yaml");
  EXPECT_EQ(order.status().message(),
            "slipway.yaml:4:19: run.update.order: expected start-first or stop-first");
}

TEST(Manifest, JsonRoundTrip) {
  auto m = ParseManifest(
      "build: [make]\nrun: {command: ./a}\nenv: {A: b}\nhealth: {max_memory: 1G}\n", "f");
  ASSERT_TRUE(m.ok());
  auto back = Manifest::FromJson(m->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ToJson(), m->ToJson());
  EXPECT_FALSE(Manifest::FromJson("not json").ok());
}

TEST(Manifest, DurationsAndSizes) {
  std::chrono::milliseconds d{};
  EXPECT_TRUE(ParseDuration("30", d));
  EXPECT_EQ(d.count(), 30000);
  EXPECT_TRUE(ParseDuration("1h", d));
  EXPECT_EQ(d.count(), 3600000);
  EXPECT_FALSE(ParseDuration("10 s", d));
  EXPECT_FALSE(ParseDuration("ms", d));
  long long b = 0;
  EXPECT_TRUE(ParseBytes("512k", b));
  EXPECT_EQ(b, 512 * 1024);
  EXPECT_FALSE(ParseBytes("12 parsecs", b));
}

TEST(Manifest, LoadReportsMissingFile) {
  auto m = LoadManifest("/nonexistent/slipway.yaml");
  EXPECT_EQ(m.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace slipway
