#pragma once
// The gateway's HTTP/1.1 reverse proxy. Parses every request strictly (gateway/http1.h),
// routes it on the Router's snapshot, forwards over pooled keep-alive connections and
// streams bodies both ways with bounded buffers; passes upgrades through after the
// upstream's 101; answers with its own pages (400/404/413/414/431/502/503/504) when a
// request is malformed or a target cannot serve.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "gateway/http1.h"
#include "gateway/router.h"

namespace slipway::gateway {

struct ListenOn {
  std::string address = "127.0.0.1";
  int port = 8080;  // 0 picks a free port
  std::string set;  // the route set (Route::listener) served on this port; "" = main
};

struct ProxyOptions {
  std::string address = "127.0.0.1";  // the main listener
  int port = 8080;
  std::string set;              // its route set ("" = routes without a listener)
  std::vector<ListenOn> extra;  // more ports, each bound to a route set
  int threads = 2;
  std::chrono::milliseconds connect_timeout{5000};
  // Waiting for the upstream's response head, and the longest silence while a body streams
  // either way.
  std::chrono::milliseconds upstream_timeout{60000};
  std::chrono::milliseconds header_timeout{10000};  // a whole request head, from its first byte
  std::chrono::milliseconds idle_timeout{60000};    // a client keep-alive between requests
  std::size_t max_connections = 16384;              // client connections open at once
  // Pooled upstream connections per target and loop. Idle ones close after 4 s, so a high
  // cap costs nothing at rest and avoids a connect per request at high concurrency.
  std::size_t max_idle_per_target = 1024;
  http1::Limits limits;
  std::string access_log;  // path of a JSON-lines access log; "" = none
};

// Thread-safety: every method may be called from any thread, except that Stop (and the
// destructor) must not run on one of the proxy's own threads (from a RequestTap, say).
class Proxy {
 public:
  // Binds every listening socket; kUnavailable when an address is taken, kInvalid when one
  // cannot be parsed or the access log cannot be opened. `router` must outlive the proxy.
  static Result<std::unique_ptr<Proxy>> Create(ProxyOptions options, const Router& router);
  virtual ~Proxy() = default;
  virtual int port() const = 0;  // the main listener's port
  // The ports listening now: main first, then `extra` and those added since, in order.
  virtual std::vector<int> ports() const = 0;
  virtual void Start() = 0;
  // Stops accepting and closes every connection; idempotent.
  virtual void Stop() = 0;

  // Opens one more listener for route set `on.set` (a sandbox's port): binds at once, and
  // accepts right away when the proxy is started (else from Start). Port 0 picks a free one.
  // Returns the bound port; kUnavailable when the port is taken (or the proxy is stopped),
  // kInvalid when the address does not parse.
  virtual Result<int> AddListener(ListenOn on) = 0;
  // Stops accepting on an extra listener (from `extra` or AddListener) and closes its
  // listening socket before returning, so the port can be bound again at once. Connections
  // already open finish their current request, then close (idle ones within a sweep, about a
  // quarter of a second). False when no extra listener has that port; the main listener
  // cannot be removed.
  virtual bool RemoveListener(int port) = 0;
  // Requests received on the listener of `port` since it was opened (answered by the
  // gateway or an app), to notice activity; 0 for a port with no listener.
  virtual std::uint64_t Requests(int port) const = 0;
};

// Appends per-target and per-route series to a Prometheus exposition.
void RenderTargetMetrics(const Router& router, std::string& out);

}  // namespace slipway::gateway
