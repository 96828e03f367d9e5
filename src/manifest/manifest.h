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
//
// Every error names file:line:column of the offending node.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace slipway {

struct Manifest {
  std::string app;
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

  std::string ToJson() const;
  static Result<Manifest> FromJson(const std::string& json);
};

// Parses and validates manifest text. `file` is only used in error messages:
// "slipway.yaml:4:12: health.timeout: expected a duration like 10s or 500ms".
Result<Manifest> ParseManifest(const std::string& text, const std::string& file);
// Reads and parses a file; kNotFound when it is missing.
Result<Manifest> LoadManifest(const std::string& path);

// "10s", "500ms", "2m", "1h", or a bare number of seconds.
bool ParseDuration(const std::string& text, std::chrono::milliseconds& out);
// "256MiB", "1G", "512k", or a bare number of bytes.
bool ParseBytes(const std::string& text, long long& out);

}  // namespace slipway
