#pragma once
// slipway.yaml: the per-repo description of how to build, test, run and verify an app.
//
//   app: hello                    # must match the app it is deployed as (optional)
//   build: ["cc -o server server.c"]
//   test:  ["./server --self-test"]
//   run:   {runtime: process, command: "./server"}
//   run:   {runtime: container, dockerfile: Dockerfile, port: 8080, memory: 64MiB, cpus: 0.5,
//           volumes: ["/srv/data:/data"], restart: unless-stopped, host_ip: 127.0.0.1}
//   run:   {runtime: swarm, image_tar: image.tar, port: 8080, replicas: 2,
//           healthcheck: ["/server", "--probe"], constraints: ["node.role==manager"],
//           update: {parallelism: 1, delay: 0s, monitor: 2s, order: start-first}}
//   health: {path: /health, timeout: 10s, max_latency: 100ms, max_memory: 256MiB, probes: 3}
//   release: {keep: 3}
//   deploy: {watch_window: 10s, drain_timeout: 30s, timeout: 30m}
//   env: {GREETING: hi}
//   rollout: {stages: [{nodes: [alpha]}, {nodes: [beta], weight: 10, bake: 5m,
//             analysis: {interval: 30s, max_error_rate_increase: 0.01}}, {nodes: [gamma]}]}
//   notify: [{kind: webhook, url: "https://…", secret: "…", events: [rolled_back]}]
//
// Every error names file:line:column of the offending node.
//
// The file comes from a repository anyone with push access controls, so it is read as
// hostile input: sizes, counts, lengths and value ranges are bounded (manifest_limits below,
// plus per-key ranges for durations and sizes), and aliases are counted as expanded.
#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "core/rollout.h"
#include "core/status.h"

namespace slipway {

namespace manifest_limits {
// The raw text, before parsing.
inline constexpr std::size_t kFileBytes = 256 * 1024;
// The parsed tree with every alias expanded at each place it is used: scalar bytes (keys
// included), nodes (keys, values and list items) and nesting depth (the root is level 1).
inline constexpr std::size_t kExpandedBytes = 1024 * 1024;
inline constexpr std::size_t kNodes = 100'000;
inline constexpr int kDepth = 64;
// Fields.
inline constexpr std::size_t kSteps = 100;  // build and test, each
inline constexpr std::size_t kStepBytes = 8 * 1024;
inline constexpr std::size_t kCommandBytes = 8 * 1024;  // run.command
inline constexpr std::size_t kEnvEntries = 256;
inline constexpr std::size_t kEnvValueBytes = 32 * 1024;
inline constexpr std::size_t kListEntries = 64;        // volumes, constraints, healthcheck
inline constexpr std::size_t kStringBytes = 4 * 1024;  // every other string, env names included
}  // namespace manifest_limits

// A notification target of `notify:` (see docs/ROLLOUTS.md). The url and secret are
// credentials: they are not kept in ToJson() and never shown.
struct NotifySpec {
  std::string kind;  // webhook | slack | teams
  std::string url;
  std::string secret;               // webhook only: HMAC-SHA256 key of the signature
  std::vector<std::string> events;  // empty = all
};

// sandbox.config: a config file rendered from a template in the repository with a
// sandbox's effective service map ({{ACCOUNT_URL}}, {{routes_json}}), then a reload command,
// then a read-back of what the app now uses (docs/SANDBOXES.md). Empty template = none.
struct SandboxConfigSpec {
  std::string template_path;  // relative to the release directory
  std::string path;           // where the rendering goes, relative to the release directory
  std::string reload;         // sh -c in the release directory; "" = none
  std::string read_back;      // GET path on the instance answering the map as JSON; "" = none
  bool empty() const { return template_path.empty(); }
};

struct Manifest {
  std::string app;
  // Placement: the labels a node must all carry to run this app; none = the local node.
  std::vector<std::string> nodes;
  std::string strategy = "parallel";  // deploy.strategy: parallel | one-by-one
  std::vector<std::string> build;
  std::vector<std::string> test;
  std::string runtime = "process";
  std::string command;  // run with /bin/sh -c in the release directory; $PORT is set
  // runtime: container. Exactly one image source: a Dockerfile in the repo, a `docker save`
  // tarball (shipped or produced by a build step: the offline path), or an image already
  // on the host.
  std::string dockerfile;
  std::string image_tar;
  std::string image;
  int container_port = 8080;
  std::string host_ip = "127.0.0.1";
  long long memory_bytes = 0;
  double cpus = 0;
  std::vector<std::string> volumes;
  std::string restart = "unless-stopped";
  // runtime: swarm (image sources, port, memory and cpus as for containers).
  int replicas = 2;
  std::vector<std::string> constraints;  // placement, e.g. "node.role==manager"
  std::vector<std::string> healthcheck;  // argv run inside each task, e.g. ["/server", "--probe"]
  int update_parallelism = 1;
  std::chrono::milliseconds update_delay{0};
  std::chrono::milliseconds update_monitor{std::chrono::seconds(2)};
  std::string update_order = "start-first";
  bool is_image_runtime() const { return runtime == "container" || runtime == "swarm"; }
  std::string health_path = "/health";
  std::chrono::milliseconds health_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds max_latency{100};
  long long max_memory_bytes = 0;  // 0 = no limit
  int probes = 3;                  // consecutive healthy probes verify needs
  int keep = 3;
  std::chrono::milliseconds watch_window{std::chrono::seconds(10)};
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds deploy_timeout{std::chrono::minutes(30)};
  std::map<std::string, std::string> env;
  // rollout.stages: empty = one stage on `nodes` at 100 %.
  std::vector<RolloutStageSpec> rollout;
  std::vector<NotifySpec> notify;  // not kept by ToJson (credentials)
  SandboxConfigSpec sandbox_config;

  std::string ToJson() const;
  static Result<Manifest> FromJson(const std::string& json);
  // A compact JSON object for a deployment record: what ran and how it was verified,
  // without build/test steps and without env values (only their names). Keys: runtime,
  // command, dockerfile, image_tar, image, container_port, health_path, health_timeout_ms,
  // max_latency_ms, max_memory_bytes, probes, keep, watch_window_ms, drain_timeout_ms,
  // deploy_timeout_ms, replicas, rollout (its stages), env_names (sorted). Never throws: bytes that
  // are not UTF-8 are replaced (ParseManifest admits none).
  std::string SummaryJson() const;
};

// Parses and validates manifest text. `file` is only used in error messages:
// "slipway.yaml:4:12: health.timeout: expected a duration like 10s or 500ms". Every error is
// kInvalid. Text over manifest_limits::kFileBytes is refused before it is parsed; a tree
// that expands past the size or nesting limits is refused before any field is read, and
// the work done on it is bounded by those limits (an alias bomb costs at most kNodes visits).
// Ranges: health.timeout 100ms..1h, health.max_latency 1ms..1m, deploy.watch_window and
// deploy.drain_timeout 0s..1h, deploy.timeout 1s..24h, run.update.delay and
// run.update.monitor 0s..1h; health.max_memory 1MiB..1TiB, run.memory 6MiB..1TiB.
Result<Manifest> ParseManifest(const std::string& text, const std::string& file);

// A node label as `nodes:` and `deploy --nodes` take it: 1..64 printable ASCII characters,
// none of space, quotes, comma, slash or backslash ("beta", "region=eu").
bool IsNodeLabel(std::string_view label);
// Reads and parses a file; kNotFound when it is missing.
Result<Manifest> LoadManifest(const std::string& path);

// Exactly digits[.digits] followed by ms, s, m or h, or by nothing (seconds): "10s",
// "1.5s", "500ms", "2m", "1h", "30". No sign, space or exponent. A fraction below one
// millisecond is dropped. False when malformed or longer than 10 years (87600h); `out` is
// only written on success.
bool ParseDuration(const std::string& text, std::chrono::milliseconds& out);
// Exactly digits followed by an optional unit, case-insensitive: b; k, kib (1024), kb
// (1000); m, mib, mb; g, gib, gb; t, tib, tb. "256MiB", "1G", "512k", "4096". False when
// malformed or when the value does not fit in a long long; `out` is only written on success.
bool ParseBytes(const std::string& text, long long& out);

}  // namespace slipway
