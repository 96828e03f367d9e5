#include "manifest/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

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
                "health, nodes, notify, release, rollout, run, sandbox, test)"},
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

using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace limits = manifest_limits;

std::string Repeat(const std::string& piece, std::size_t n) {
  std::string out;
  out.reserve(piece.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += piece;
  return out;
}

std::string Message(const std::string& text) {
  auto m = ParseManifest(text, "slipway.yaml");
  EXPECT_FALSE(m.ok()) << "accepted";
  EXPECT_EQ(m.status().code(), Code::kInvalid);
  return m.status().message();
}

TEST(ManifestLimits, AreTheDocumentedNumbers) {
  EXPECT_EQ(limits::kFileBytes, 262144u);
  EXPECT_EQ(limits::kExpandedBytes, 1048576u);
  EXPECT_EQ(limits::kNodes, 100000u);
  EXPECT_EQ(limits::kDepth, 64);
  EXPECT_EQ(limits::kSteps, 100u);
  EXPECT_EQ(limits::kStepBytes, 8192u);
  EXPECT_EQ(limits::kCommandBytes, 8192u);
  EXPECT_EQ(limits::kEnvEntries, 256u);
  EXPECT_EQ(limits::kEnvValueBytes, 32768u);
  EXPECT_EQ(limits::kListEntries, 64u);
  EXPECT_EQ(limits::kStringBytes, 4096u);
}

// A valid manifest padded with a comment to exactly `size` bytes.
std::string PaddedManifest(std::size_t size) {
  std::string text = "run: {command: ./a}\n#";
  return text + std::string(size - text.size() - 1, 'x') + "\n";
}

TEST(ManifestLimits, RawTextIsRefusedOverTheLimitBeforeParsing) {
  auto at = ParseManifest(PaddedManifest(limits::kFileBytes), "slipway.yaml");
  EXPECT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(Message(PaddedManifest(limits::kFileBytes + 1)),
            "slipway.yaml:1:1: manifest is 262145 bytes; the limit is 262144 bytes");
  // Not even parsed: this would be a syntax error otherwise.
  EXPECT_EQ(Message(std::string(limits::kFileBytes + 1, '{')),
            "slipway.yaml:1:1: manifest is 262145 bytes; the limit is 262144 bytes");
}

// Valid, with exactly `total` scalar bytes once aliases are expanded: env values of 32 KiB,
// all but the last an alias of the first.
std::string ExpandedManifest(std::size_t total) {
  const std::size_t fixed = 3 + 7 + 3 + 3;  // run, command, ./a, env
  const std::size_t entries = 32, name = 4, big = limits::kEnvValueBytes;
  std::string text = "run: {command: ./a}\nenv:\n  V000: &big " + std::string(big, 'x') + "\n";
  for (std::size_t i = 1; i + 1 < entries; ++i) {
    text += "  V" + std::string(i < 10 ? "00" : "0") + std::to_string(i) + ": *big\n";
  }
  std::size_t last = total - fixed - entries * name - (entries - 1) * big;
  return text + "  V031: " + std::string(last, 'y') + "\n";
}

TEST(ManifestLimits, ExpandedTextCountsEveryAliasUse) {
  auto at = ParseManifest(ExpandedManifest(limits::kExpandedBytes), "slipway.yaml");
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(at->env.at("V030").size(), limits::kEnvValueBytes);
  EXPECT_EQ(Message(ExpandedManifest(limits::kExpandedBytes + 1)),
            "slipway.yaml:34:9: manifest exceeds the size limit of 1 MiB of text once expanded "
            "(YAML aliases count once per use)");
}

TEST(ManifestLimits, AliasBombOfOneLargeScalarIsRefused) {
  // 10 KB anchored once and used 5,000 times: 45 KB of text, 50 MB when read.
  std::string text = "run: {command: ./a}\nbuild:\n  - &s " + std::string(10'000, 'x') + "\n" +
                     Repeat("  - *s\n", 5'000);
  ASSERT_LT(text.size(), 50'000u);
  std::string msg = Message(text);
  EXPECT_THAT(msg, StartsWith("slipway.yaml:3:5: manifest exceeds the size limit of 1 MiB"));
  EXPECT_THAT(msg, HasSubstr("YAML aliases count once per use"));
}

TEST(ManifestLimits, BillionLaughsIsRefused) {
  // Nine levels of ten aliases each: 10^9 leaves. Finishing at all shows the walk stops at
  // the limit instead of expanding the tree.
  std::string text =
      "run: {command: ./a}\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 10; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    text += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [" + Repeat(prev + ", ", 9) +
            prev + "]\n";
  }
  std::string msg = Message(text);
  EXPECT_THAT(msg, StartsWith("slipway.yaml:"));
  EXPECT_THAT(msg, HasSubstr("manifest exceeds the size limit of 100000 values (YAML aliases "
                             "count once per use)"));
}

// 5 nodes for the run mapping (root included), 101 for `l`, 2 + 100 * uses for `m` and
// 2 + pad for `p`: 110 + 100 * 998 + 90 = 100,000 exactly.
std::string NodesManifest(std::size_t total) {
  const std::size_t uses = 998, pad = total - 110 - 100 * uses;
  return "run: {command: ./a}\nl: &l [" + Repeat("a, ", 98) + "a]\nm: [" +
         Repeat("*l, ", uses - 1) + "*l]\np: [" + Repeat("a, ", pad - 1) + "a]\n";
}

TEST(ManifestLimits, NodeCountCountsEveryAliasUse) {
  // At the limit the size check passes and the reader reports the first unknown key.
  EXPECT_THAT(Message(NodesManifest(limits::kNodes)),
              HasSubstr("slipway.yaml:2:1: unknown key 'l'"));
  EXPECT_THAT(Message(NodesManifest(limits::kNodes + 1)),
              HasSubstr("manifest exceeds the size limit of 100000 values"));
}

// `levels` nested flow sequences as the value of `x`: the root mapping is level 1, so the
// innermost sequence is at level `levels` + 1.
std::string NestedManifest(int levels) {
  return "run: {command: ./a}\nx: " + std::string(levels, '[') + std::string(levels, ']') + "\n";
}

TEST(ManifestLimits, NestingDepth) {
  EXPECT_THAT(Message(NestedManifest(limits::kDepth - 1)), HasSubstr("unknown key 'x'"));
  EXPECT_EQ(Message(NestedManifest(limits::kDepth)),
            "slipway.yaml:2:67: manifest nesting is deeper than 64 levels (YAML aliases count "
            "once per use)");
}

TEST(ManifestLimits, AliasCyclesAreRefusedAsNesting) {
  EXPECT_THAT(Message("run: {command: ./a}\nx: &x [*x]\n"),
              HasSubstr("manifest nesting is deeper than 64 levels"));
  EXPECT_THAT(Message("run: {command: ./a}\nx: &x {k: *x}\n"),
              HasSubstr("manifest nesting is deeper than 64 levels"));
}

TEST(ManifestLimits, HugeNestingIsRefusedWithoutCrashing) {
  // Each shape is far deeper than the parser's own recursion guard (about 500 levels).
  std::string flow_open(200'000, '[');
  std::string flow_maps = Repeat("{a: ", 50'000);
  std::string compact_seqs = Repeat("- ", 100'000) + "x\n";
  std::string block_maps;
  for (int i = 0; i < 600; ++i)
    block_maps += std::string(static_cast<std::size_t>(i), ' ') + "a:\n";
  ASSERT_LT(block_maps.size(), limits::kFileBytes);
  for (const std::string* text : {&flow_open, &flow_maps, &compact_seqs, &block_maps}) {
    std::string msg = Message(*text);
    EXPECT_THAT(msg, StartsWith("slipway.yaml:"));
    EXPECT_THAT(msg, HasSubstr("manifest nesting is deeper than 64 levels"));
  }
}

TEST(ManifestLimits, TextMustBeUtf8) {
  EXPECT_EQ(Message("run: {command: ./a}\napp: ab\xff\n"),
            "slipway.yaml:2:6: manifest text is not valid UTF-8");
  EXPECT_EQ(Message("run: {command: \"./a \xc0\xaf\"}\n"),
            "slipway.yaml:1:16: manifest text is not valid UTF-8");
  auto ok = ParseManifest("run: {command: \"./a caf\xc3\xa9 \xf0\x9f\x9a\x80\"}\n", "slipway.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_FALSE(ok->ToJson().empty());
}

struct LimitCase {
  const char* name;
  std::function<std::string(std::size_t)> make;  // a valid manifest with `n` of the thing
  std::size_t limit;
  const char* over;  // the error for limit + 1
};

void PrintTo(const LimitCase& c, std::ostream* os) {
  *os << c.name;
}

std::string BlockList(const std::string& head, const std::string& item, std::size_t n) {
  return head + Repeat(item, n);
}

const std::string kSwarm = "run:\n  runtime: swarm\n  image: a\n";

class FieldLimits : public ::testing::TestWithParam<LimitCase> {};

TEST_P(FieldLimits, AcceptAtTheLimitAndNameTheNodeOverIt) {
  const auto& c = GetParam();
  auto at = ParseManifest(c.make(c.limit), "slipway.yaml");
  EXPECT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(Message(c.make(c.limit + 1)), c.over);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FieldLimits,
    ::testing::Values(
        LimitCase{"build_steps",
                  [](std::size_t n) {
                    return BlockList("build:\n", "  - make\n", n) + "run: {command: ./a}\n";
                  },
                  100, "slipway.yaml:102:5: build: too many steps (the limit is 100)"},
        LimitCase{"test_steps",
                  [](std::size_t n) {
                    return BlockList("test:\n", "  - ./t\n", n) + "run: {command: ./a}\n";
                  },
                  100, "slipway.yaml:102:5: test: too many steps (the limit is 100)"},
        LimitCase{"build_step_bytes",
                  [](std::size_t n) {
                    return "build: [" + std::string(n, 'x') + "]\nrun: {command: ./a}\n";
                  },
                  8192, "slipway.yaml:1:9: build: too long (8193 bytes; the limit is 8192)"},
        LimitCase{"test_step_bytes",
                  [](std::size_t n) {
                    return "test: " + std::string(n, 'x') + "\nrun: {command: ./a}\n";
                  },
                  8192, "slipway.yaml:1:7: test: too long (8193 bytes; the limit is 8192)"},
        LimitCase{"command_bytes",
                  [](std::size_t n) { return "run: {command: " + std::string(n, 'x') + "}\n"; },
                  8192, "slipway.yaml:1:16: run.command: too long (8193 bytes; the limit is 8192)"},
        LimitCase{"env_entries",
                  [](std::size_t n) {
                    std::string text = "run: {command: ./a}\nenv:\n";
                    for (std::size_t i = 0; i < n; ++i) text += "  V" + std::to_string(i) + ": x\n";
                    return text;
                  },
                  256, "slipway.yaml:259:3: env: too many variables (the limit is 256)"},
        LimitCase{"env_value_bytes",
                  [](std::size_t n) {
                    return "run: {command: ./a}\nenv: {V: " + std::string(n, 'x') + "}\n";
                  },
                  32768, "slipway.yaml:2:10: env.V: too long (32769 bytes; the limit is 32768)"},
        LimitCase{"env_name_bytes",
                  [](std::size_t n) {
                    // An explicit key: YAML caps implicit ones at 1024 characters.
                    return "run: {command: ./a}\nenv:\n  ? " + std::string(n, 'V') + "\n  : x\n";
                  },
                  4096,
                  "slipway.yaml:3:5: env: variable name too long (4097 bytes; the limit is 4096)"},
        LimitCase{"volumes",
                  [](std::size_t n) {
                    return BlockList("run:\n  runtime: container\n  image: a\n  volumes:\n",
                                     "    - /a:/b\n", n);
                  },
                  64, "slipway.yaml:69:7: run.volumes: too many entries (the limit is 64)"},
        LimitCase{"constraints",
                  [](std::size_t n) {
                    return BlockList(kSwarm + "  constraints:\n", "    - node.role==manager\n", n);
                  },
                  64, "slipway.yaml:69:7: run.constraints: too many entries (the limit is 64)"},
        LimitCase{"healthcheck",
                  [](std::size_t n) {
                    return BlockList(kSwarm + "  healthcheck:\n", "    - /probe\n", n);
                  },
                  64, "slipway.yaml:69:7: run.healthcheck: too many entries (the limit is 64)"},
        LimitCase{"volume_bytes",
                  [](std::size_t n) {
                    return "run: {runtime: container, image: a, volumes: [/a:" +
                           std::string(n - 3, 'b') + "]}\n";
                  },
                  4096, "slipway.yaml:1:47: run.volumes: too long (4097 bytes; the limit is 4096)"},
        LimitCase{
            "app_bytes",
            [](std::size_t n) { return "app: " + std::string(n, 'a') + "\nrun: {command: ./a}\n"; },
            4096, "slipway.yaml:1:6: app: too long (4097 bytes; the limit is 4096)"},
        LimitCase{"health_path_bytes",
                  [](std::size_t n) {
                    return "run: {command: ./a}\nhealth: {path: /" + std::string(n - 1, 'p') +
                           "}\n";
                  },
                  4096, "slipway.yaml:2:16: health.path: too long (4097 bytes; the limit is 4096)"},
        LimitCase{"image_bytes",
                  [](std::size_t n) {
                    return "run: {runtime: container, image: " + std::string(n, 'i') + "}\n";
                  },
                  4096, "slipway.yaml:1:34: run.image: too long (4097 bytes; the limit is 4096)"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Manifest, LongValuesAreShortenedInMessages) {
  std::string key(100, 'k');
  EXPECT_EQ(Message("run: {command: ./a}\n" + key + ": 1\n"),
            "slipway.yaml:2:1: unknown key '" + std::string(64, 'k') +
                "...' (expected one of: app, build, deploy, env, health, nodes, notify, release, "
                "rollout, run, sandbox, test)");
}

TEST(Manifest, CpusMustBeAFiniteNumber) {
  for (const char* v : {"nan", "inf", "-1", "0", "1025", "1x"}) {
    EXPECT_EQ(Message(std::string("run: {runtime: container, image: a, cpus: ") + v + "}\n"),
              "slipway.yaml:1:43: run.cpus: expected a positive number like 0.5")
        << v;
  }
}

struct DurationCase {
  const char* text;
  long long ms;  // -1: rejected
};

class Durations : public ::testing::TestWithParam<DurationCase> {};

TEST_P(Durations, ParseStrictly) {
  std::chrono::milliseconds d{-7};
  bool ok = ParseDuration(GetParam().text, d);
  if (GetParam().ms < 0) {
    EXPECT_FALSE(ok);
    EXPECT_EQ(d.count(), -7) << "left untouched";
  } else {
    ASSERT_TRUE(ok);
    EXPECT_EQ(d.count(), GetParam().ms);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Durations,
    ::testing::Values(
        DurationCase{"30", 30000}, DurationCase{"0", 0}, DurationCase{"1h", 3600000},
        DurationCase{"2m", 120000}, DurationCase{"1.5s", 1500}, DurationCase{"500ms", 500},
        DurationCase{"0.5ms", 0}, DurationCase{"1.0009s", 1000}, DurationCase{"007s", 7000},
        DurationCase{"0.25h", 900000}, DurationCase{"1.00000000000000000001m", 60000},
        DurationCase{"87600h", 315360000000}, DurationCase{"315360000000ms", 315360000000},
        DurationCase{"", -1}, DurationCase{"1.5.5s", -1}, DurationCase{"-1s", -1},
        DurationCase{"+1s", -1}, DurationCase{"1e3s", -1}, DurationCase{"inf", -1},
        DurationCase{"nan", -1}, DurationCase{" 5s", -1}, DurationCase{"5 s", -1},
        DurationCase{"10 s", -1}, DurationCase{"5s ", -1}, DurationCase{"ms", -1},
        DurationCase{"1.s", -1}, DurationCase{".5s", -1}, DurationCase{"5S", -1},
        DurationCase{"5sec", -1}, DurationCase{"1d", -1}, DurationCase{"0x10s", -1},
        DurationCase{"87600.001h", -1}, DurationCase{"315360000001ms", -1},
        DurationCase{"9223372036854775807ms", -1}, DurationCase{"18446744073709551617s", -1},
        DurationCase{"99999999999999999999h", -1}));

struct SizeCase {
  const char* text;
  long long bytes;  // -1: rejected
};

class Sizes : public ::testing::TestWithParam<SizeCase> {};

TEST_P(Sizes, ParseStrictly) {
  long long b = -7;
  bool ok = ParseBytes(GetParam().text, b);
  if (GetParam().bytes < 0) {
    EXPECT_FALSE(ok);
    EXPECT_EQ(b, -7) << "left untouched";
  } else {
    ASSERT_TRUE(ok);
    EXPECT_EQ(b, GetParam().bytes);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Sizes,
    ::testing::Values(SizeCase{"512k", 512 * 1024}, SizeCase{"64MiB", 64LL << 20},
                      SizeCase{"1G", 1LL << 30}, SizeCase{"1gb", 1000000000},
                      SizeCase{"1TiB", 1LL << 40}, SizeCase{"1tb", 1000000000000},
                      SizeCase{"4096", 4096}, SizeCase{"10b", 10}, SizeCase{"0", 0},
                      SizeCase{"9223372036854775807", 9223372036854775807LL},
                      SizeCase{"8388607TiB", 8388607LL << 40}, SizeCase{"", -1},
                      SizeCase{"12 parsecs", -1}, SizeCase{"-1", -1}, SizeCase{"+1", -1},
                      SizeCase{"1.5G", -1}, SizeCase{" 1G", -1}, SizeCase{"1G ", -1},
                      SizeCase{"1 G", -1}, SizeCase{"1e3", -1}, SizeCase{"MiB", -1},
                      SizeCase{"9223372036854775808", -1}, SizeCase{"8388608TiB", -1},
                      SizeCase{"8589934592G", -1}, SizeCase{"99999999999999999999999", -1}));

struct DurationKey {
  const char* key;
  const char* head;   // the manifest up to the mapping holding the key
  const char* field;  // indented key as written
  long long min_ms, max_ms;
  std::chrono::milliseconds Manifest::*member;
  const char* range;
};

void PrintTo(const DurationKey& k, std::ostream* os) {
  *os << k.key;
}

std::string WithValue(const DurationKey& k, const std::string& value) {
  return std::string(k.head) + k.field + ": " + value + "\n";
}

// "slipway.yaml:L:C: " of the value in WithValue.
std::string ValueWhere(const DurationKey& k) {
  std::string head = k.head;
  auto line = std::count(head.begin(), head.end(), '\n') + 1;
  return "slipway.yaml:" + std::to_string(line) + ":" +
         std::to_string(std::string(k.field).size() + 3) + ": ";
}

class DurationRanges : public ::testing::TestWithParam<DurationKey> {};

TEST_P(DurationRanges, BoundariesAreInclusive) {
  const auto& k = GetParam();
  for (long long ms : {k.min_ms, k.max_ms}) {
    auto m = ParseManifest(WithValue(k, std::to_string(ms) + "ms"), "slipway.yaml");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(((*m).*k.member).count(), ms);
  }
  std::string out_of_range = ValueWhere(k) + k.key + ": must be between " + k.range;
  std::vector<std::string> outside = {std::to_string(k.max_ms + 1) + "ms", "99999999999999999999h",
                                      "87600h"};
  if (k.min_ms > 0) outside.push_back(std::to_string(k.min_ms - 1) + "ms");
  for (const auto& v : outside) EXPECT_EQ(Message(WithValue(k, v)), out_of_range) << v;
  for (const char* v : {"1.5.5s", "-1s", "soon", "[1s]"}) {
    EXPECT_EQ(Message(WithValue(k, v)),
              ValueWhere(k) + k.key + ": expected a duration like 10s or 500ms")
        << v;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DurationRanges,
    ::testing::Values(
        DurationKey{"health.timeout", "run: {command: ./a}\nhealth:\n", "  timeout", 100, 3600000,
                    &Manifest::health_timeout, "100ms and 1h"},
        DurationKey{"health.max_latency", "run: {command: ./a}\nhealth:\n", "  max_latency", 1,
                    60000, &Manifest::max_latency, "1ms and 1m"},
        DurationKey{"deploy.watch_window", "run: {command: ./a}\ndeploy:\n", "  watch_window", 0,
                    3600000, &Manifest::watch_window, "0s and 1h"},
        DurationKey{"deploy.drain_timeout", "run: {command: ./a}\ndeploy:\n", "  drain_timeout", 0,
                    3600000, &Manifest::drain_timeout, "0s and 1h"},
        DurationKey{"deploy.timeout", "run: {command: ./a}\ndeploy:\n", "  timeout", 1000, 86400000,
                    &Manifest::deploy_timeout, "1s and 24h"},
        DurationKey{"run.update.delay", "run:\n  runtime: swarm\n  image: a\n  update:\n",
                    "    delay", 0, 3600000, &Manifest::update_delay, "0s and 1h"},
        DurationKey{"run.update.monitor", "run:\n  runtime: swarm\n  image: a\n  update:\n",
                    "    monitor", 0, 3600000, &Manifest::update_monitor, "0s and 1h"}),
    [](const auto& info) {
      std::string name = info.param.key;
      std::replace(name.begin(), name.end(), '.', '_');
      return name;
    });

TEST(Manifest, DeployTimeoutOverflowIsARangeError) {
  EXPECT_EQ(Message("run: {command: ./a}\ndeploy: {timeout: 99999999999999999999h}\n"),
            "slipway.yaml:2:19: deploy.timeout: must be between 1s and 24h");
  auto human = ParseManifest("run: {command: ./a}\ndeploy: {timeout: 24h}\n", "slipway.yaml");
  ASSERT_TRUE(human.ok());
  EXPECT_EQ(human->deploy_timeout, std::chrono::hours(24));
}

TEST(Manifest, SizeRanges) {
  auto at = ParseManifest(
      "run: {runtime: container, image: a, memory: 6MiB}\nhealth: {max_memory: 1MiB}\n", "f");
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(at->memory_bytes, 6LL << 20);
  EXPECT_EQ(at->max_memory_bytes, 1LL << 20);
  auto top = ParseManifest(
      "run: {runtime: container, image: a, memory: 1TiB}\nhealth: {max_memory: 1024GiB}\n", "f");
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  EXPECT_EQ(top->memory_bytes, 1LL << 40);
  EXPECT_EQ(top->max_memory_bytes, 1LL << 40);
  const std::string memory = "slipway.yaml:1:45: run.memory: must be between 6MiB and 1TiB";
  for (const char* v : {"6291455", "5MiB", "1099511627777", "2TiB", "99999999999999999999TiB"}) {
    EXPECT_EQ(Message(std::string("run: {runtime: container, image: a, memory: ") + v + "}\n"),
              memory)
        << v;
  }
  const std::string max_memory =
      "slipway.yaml:2:22: health.max_memory: must be between 1MiB and 1TiB";
  for (const char* v : {"0", "1048575", "1023KiB", "1099511627777", "9223372036854775808"}) {
    EXPECT_EQ(Message(std::string("run: {command: ./a}\nhealth: {max_memory: ") + v + "}\n"),
              max_memory)
        << v;
  }
  EXPECT_EQ(Message("run: {command: ./a}\nhealth: {max_memory: 64 MiB}\n"),
            "slipway.yaml:2:22: health.max_memory: expected a size like 256MiB");
}

TEST(Manifest, SummaryJsonLeavesOutStepsAndEnvValues) {
  auto m = ParseManifest(R"(build: ["make SECRET_BUILD_STEP"]
test: ["./t SECRET_TEST_STEP"]
run: {runtime: swarm, image_tar: image.tar, port: 9000, replicas: 3, command: ./server}
health: {path: /hz, timeout: 2s, max_latency: 50ms, max_memory: 64MiB, probes: 4}
release: {keep: 5}
deploy: {watch_window: 3s, drain_timeout: 4s, timeout: 5m}
env: {ZED: SECRET_VALUE_1, API_KEY: SECRET_VALUE_2}
)",
                         "slipway.yaml");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const std::string text = m->SummaryJson();
  EXPECT_EQ(text.find("SECRET"), std::string::npos) << text;
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j, nlohmann::json::parse(R"({
    "runtime": "swarm", "command": "./server", "dockerfile": "", "image_tar": "image.tar",
    "image": "", "container_port": 9000, "health_path": "/hz", "health_timeout_ms": 2000,
    "max_latency_ms": 50, "max_memory_bytes": 67108864, "probes": 4, "keep": 5,
    "watch_window_ms": 3000, "drain_timeout_ms": 4000, "deploy_timeout_ms": 300000,
    "replicas": 3, "rollout": [], "env_names": ["API_KEY", "ZED"]})"));
  Manifest odd;
  odd.command = "./a \xff";
  EXPECT_NO_THROW((void)odd.SummaryJson());
}

TEST(Manifest, DuplicateKeysAndControlCharactersInTheHealthPathAreRefused) {
  auto dup = ParseManifest(
      "run: {command: ./s}\ndeploy:\n  watch_window: 5s\n  watch_window: -5s\n", "slipway.yaml");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "slipway.yaml:4:3: duplicate key 'deploy.watch_window'");
  auto crlf =
      ParseManifest("run: {command: ./s}\nhealth: {path: \"/h\\r\\nX: y\"}\n", "slipway.yaml");
  ASSERT_FALSE(crlf.ok());
  EXPECT_NE(crlf.status().message().find("health.path"), std::string::npos);
}

}  // namespace
}  // namespace slipway

namespace slipway {
namespace {

TEST(ManifestNodes, PlacementLabelsAndStrategy) {
  auto m = ParseManifest(
      "nodes: [beta, region=eu]\nrun: {command: ./a}\n"
      "deploy: {strategy: one-by-one}\n",
      "slipway.yaml");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->nodes, (std::vector<std::string>{"beta", "region=eu"}));
  EXPECT_EQ(m->strategy, "one-by-one");
  auto back = Manifest::FromJson(m->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->nodes, m->nodes);
  EXPECT_EQ(back->strategy, "one-by-one");
  auto one = ParseManifest("nodes: gamma\nrun: {command: ./a}\n", "slipway.yaml");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->nodes, std::vector<std::string>{"gamma"});
  auto none = ParseManifest("run: {command: ./a}\n", "slipway.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->nodes.empty());
  EXPECT_EQ(none->strategy, "parallel");
}

TEST(ManifestNodes, BadLabelsNameTheirPlace) {
  auto bad = [](const std::string& text) {
    auto m = ParseManifest(text, "slipway.yaml");
    EXPECT_FALSE(m.ok());
    return m.ok() ? std::string() : m.status().message();
  };
  EXPECT_EQ(bad("nodes: [beta, 'a b']\nrun: {command: ./a}\n"),
            "slipway.yaml:1:15: nodes: a label is 1..64 printable characters without spaces, "
            "quotes, commas, slashes or backslashes");
  EXPECT_NE(bad("nodes: [../x]\nrun: {command: ./a}\n").find("1:9: nodes: a label"),
            std::string::npos);
  EXPECT_NE(bad("nodes: [\"a\\tb\"]\nrun: {command: ./a}\n").find("nodes: a label"),
            std::string::npos);
  EXPECT_TRUE(IsNodeLabel("region=eu"));
  EXPECT_FALSE(IsNodeLabel(std::string("a\0b", 3)));
  EXPECT_EQ(bad("nodes: {a: b}\nrun: {command: ./a}\n"),
            "slipway.yaml:1:8: nodes: expected a list of node labels, e.g. [beta]");
  EXPECT_EQ(bad("nodes: [[x]]\nrun: {command: ./a}\n"),
            "slipway.yaml:1:9: nodes: each label must be a string");
  EXPECT_NE(bad("nodes: [" + std::string(65, 'x') + "]\nrun: {command: ./a}\n"), "");
  EXPECT_EQ(bad("run: {command: ./a}\ndeploy: {strategy: random}\n"),
            "slipway.yaml:2:20: deploy.strategy: expected parallel or one-by-one");
}

}  // namespace
}  // namespace slipway

namespace slipway {
namespace {

constexpr const char* kRollout = R"(run: {command: ./server}
rollout:
  stages:
    - nodes: [alpha]
    - nodes: [beta, region=eu]
      weight: 10
      bake: 20s
      max_bake: 1m
      on_inconclusive: pause
      analysis: {interval: 2s, min_requests: 20, max_error_rate: 0.05, max_p95_ratio: 2,
                 max_p95_ms: 150, failure_limit: 3}
    - nodes: gamma
notify:
  - {kind: webhook, url: "http://127.0.0.1:9/hook", secret: s3cret, events: [rolled_back]}
  - {kind: slack, url: "https://hooks.slack.com/services/T/B/X"}
)";

TEST(ManifestRollout, ParsesStagesAnalysisAndNotifyTargets) {
  auto m = ParseManifest(kRollout, "slipway.yaml");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->rollout.size(), 3u);
  EXPECT_EQ(m->rollout[0].weight, 0);
  EXPECT_EQ(m->rollout[1].nodes, (std::vector<std::string>{"beta", "region=eu"}));
  EXPECT_EQ(m->rollout[1].max_bake, std::chrono::minutes(1));
  EXPECT_EQ(m->rollout[1].on_inconclusive, OnInconclusive::kPause);
  ASSERT_TRUE(m->rollout[1].analysis);
  EXPECT_EQ(m->rollout[1].analysis->failure_limit, 3);
  EXPECT_DOUBLE_EQ(*m->rollout[1].analysis->max_error_rate, 0.05);
  EXPECT_DOUBLE_EQ(m->rollout[1].analysis->max_error_rate_increase, 0.01);
  EXPECT_EQ(m->rollout[2].weight, 100);
  ASSERT_EQ(m->notify.size(), 2u);
  EXPECT_EQ(m->notify[0].secret, "s3cret");

  auto back = Manifest::FromJson(m->ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->rollout.size(), 3u);
  EXPECT_EQ(back->rollout[1].analysis->min_requests, 20);
  EXPECT_DOUBLE_EQ(*back->rollout[1].analysis->max_p95_ms, 150);
  EXPECT_TRUE(back->notify.empty()) << "targets are credentials, never stored";
  EXPECT_EQ(m->ToJson().find("s3cret"), std::string::npos);
  EXPECT_EQ(m->ToJson().find("hooks.slack.com"), std::string::npos);
}

TEST(ManifestRollout, RefusalsNameFileLineAndColumn) {
  auto err = [](const std::string& stages) {
    auto m = ParseManifest("run: {command: ./s}\nrollout:\n  stages:\n" + stages, "slipway.yaml");
    return m.ok() ? std::string("ok") : m.status().message();
  };
  EXPECT_EQ(err("    - {nodes: [a], weight: 101}\n    - {nodes: [b]}\n"),
            "slipway.yaml:4:28: rollout.stages[0].weight: expected a whole number from 0 to 100");
  EXPECT_THAT(err("    - {nodes: [a], weight: 10, bake: 5s, analysis: {interval: 0s}}\n"
                  "    - {nodes: [b]}\n"),
              ::testing::HasSubstr("slipway.yaml:4:"));
  EXPECT_THAT(err("    - {nodes: [a], weight: 10, bake: 5s, analysis: {interval: 0s}}\n"
                  "    - {nodes: [b]}\n"),
              ::testing::HasSubstr("interval: must be between 1s and 1m"));
  EXPECT_THAT(err("    - {nodes: [a], weight: 50}\n    - {nodes: [b], weight: 10}\n"
                  "    - {nodes: [c]}\n"),
              ::testing::HasSubstr("a later stage cannot take less traffic"));
  EXPECT_THAT(err("    - {nodes: [a], weight: 10}\n    - {nodes: [b], weight: 50}\n"),
              ::testing::HasSubstr("the last stage takes all the traffic"));
  EXPECT_THAT(err("    - {nodes: [a], weight: 10, bake: 1s, analysis: {interval: 5s}}\n"
                  "    - {nodes: [b]}\n"),
              ::testing::HasSubstr("must last at least one interval"));
  EXPECT_THAT(err("    - {nodes: [a], weight: 10, bake: 10s, max_bake: 5s}\n    - {nodes: [b]}\n"),
              ::testing::HasSubstr("max_bake: must be at least bake"));
  EXPECT_THAT(err("    - {nodes: [], weight: 10}\n    - {nodes: [b]}\n"),
              ::testing::HasSubstr("at least one label"));
  EXPECT_THAT(
      err("    - {nodes: [a], weight: 10, analysis: {max_error_rate: nan}}\n    - {nodes: [b]}\n"),
      ::testing::HasSubstr("expected a number from 0 to 1"));
  EXPECT_THAT(err("    - {nodes: [a], weight: 1, on_inconclusive: wait}\n    - {nodes: [b]}\n"),
              ::testing::HasSubstr("expected abort, promote or pause"));
  std::string nine;
  for (int i = 0; i < 9; ++i) nine += "    - {nodes: [n" + std::to_string(i) + "]}\n";
  EXPECT_THAT(err(nine), ::testing::HasSubstr("at most 8 stages"));
  auto swarm = ParseManifest("run: {runtime: swarm, image: x}\nrollout: {stages: [{nodes: [a]}]}\n",
                             "slipway.yaml");
  EXPECT_THAT(swarm.status().message(), ::testing::HasSubstr("not for runtime swarm"));
}

TEST(ManifestRollout, NotifyTargetsAreBoundedAndTheirUrlNeverQuoted) {
  auto err = [](const std::string& targets) {
    auto m = ParseManifest("run: {command: ./s}\nnotify:\n" + targets, "slipway.yaml");
    return m.ok() ? std::string("ok") : m.status().message();
  };
  EXPECT_THAT(err("  - {kind: email, url: http://x/}\n"),
              ::testing::HasSubstr("expected webhook, slack or teams"));
  std::string bad = err("  - {kind: slack, url: \"ftp://secret-token@x/\"}\n");
  EXPECT_THAT(bad, ::testing::HasSubstr("notify[0].url: expected http://HOST/"));
  EXPECT_EQ(bad.find("secret-token"), std::string::npos);
  std::string userinfo = err("  - {kind: webhook, url: \"http://user:PWTOK@127.0.0.1/x\"}\n");
  EXPECT_THAT(userinfo, ::testing::HasSubstr("slipway.yaml:3:"));
  EXPECT_THAT(userinfo, ::testing::HasSubstr("notify[0].url"));
  EXPECT_EQ(userinfo.find("PWTOK"), std::string::npos) << userinfo;
  EXPECT_THAT(err("  - {kind: slack, url: \"http://x/\", secret: s}\n"),
              ::testing::HasSubstr("only for kind webhook"));
  EXPECT_THAT(err("  - {kind: webhook, url: \"http://x/\", events: [deployed]}\n"),
              ::testing::HasSubstr("is not one of"));
  std::string many;
  for (int i = 0; i < 17; ++i) many += "  - {kind: webhook, url: \"http://x/\"}\n";
  EXPECT_THAT(err(many), ::testing::HasSubstr("at most 16 targets"));
}

}  // namespace
}  // namespace slipway
