#pragma once
// A static route file for `slipway gateway` (the gateway run on its own): YAML listing the
// routes and, optionally, extra listeners. Errors name file:line:column.
//
//   listen:                        # optional; --listen flags add to (and come before) these
//     - 127.0.0.1:8081=sandbox-a
//   routes:
//     - name: web                  # required, unique; also the app (metrics, gates)
//       hosts: [web.test, "*.web.test"]
//       path: /api                 # optional prefix
//       listener: sandbox-a        # optional route set
//       priority: 10
//       when: {header: {X-Slipway-Sandbox: qa-login}, baggage: {sandbox: qa}, cookie: {ab: b}}
//       max_body: 1MiB
//       health_path: /health
//       sticky: {cookie: slipway_web}   # or {header: X-User}
//       to: 127.0.0.1:9001               # or a list: round robin
//       sides:                           # instead of `to`
//         - {name: stable, weight: 90, to: 127.0.0.1:9001}
//         - {name: canary, weight: 10, to: [127.0.0.1:9002]}
#include <string>
#include <vector>

#include "core/status.h"
#include "gateway/proxy.h"
#include "gateway/router.h"

namespace slipway::gateway {

struct RouteFile {
  std::vector<Route> routes;
  std::vector<ListenOn> listen;
};

// Limits: 8 MiB of text, 100,000 routes, 64 targets per side or list, 16 sides, 1,000,000
// YAML nodes visited (aliases count each time they are read).
Result<RouteFile> ParseRouteFile(const std::string& text, const std::string& file);
Result<RouteFile> LoadRouteFile(const std::string& path);

// "HOST:PORT" or "HOST:PORT=SET" ([v6]:PORT allowed); false when malformed.
bool ParseListen(const std::string& text, ListenOn& out);

}  // namespace slipway::gateway
