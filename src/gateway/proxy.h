#pragma once
// The gateway's HTTP/1.1 reverse proxy. Reads the Router's snapshot per request, forwards
// over pooled keep-alive connections, passes WebSocket upgrades through, and answers with
// clear 502/503/504 pages when a target cannot serve.
#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "gateway/router.h"

namespace slipway::gateway {

struct ProxyOptions {
  std::string address = "127.0.0.1";
  int port = 8080;
  int threads = 2;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds upstream_timeout{60000};  // whole response from the target
  std::chrono::milliseconds client_idle_timeout{60000};
  std::size_t max_body = 64 << 20;
  std::size_t max_idle_per_target = 64;
};

class Proxy {
 public:
  // Binds the listening socket; kUnavailable when the address is taken. `router` must
  // outlive the proxy.
  static Result<std::unique_ptr<Proxy>> Create(ProxyOptions options, const Router& router);
  virtual ~Proxy() = default;
  virtual int port() const = 0;
  virtual void Start() = 0;
  virtual void Stop() = 0;
};

// Appends per-target request/error/latency series to a Prometheus exposition.
void RenderTargetMetrics(const Router& router, std::string& out);

}  // namespace slipway::gateway
