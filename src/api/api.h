#pragma once
// REST API (/api/v1), webhook receiver (/hooks), /health and /metrics, as one HTTP handler.
// Errors are JSON {"error": code, "detail": message} with the matching 4xx/5xx status.
// Every /api/v1 route names one permission (api/routes.cpp); a request without a valid
// credential gets 401, one whose role lacks the permission 403.
#include <string>
#include <vector>

#include "control/auth_service.h"
#include "control/context.h"
#include "control/controller.h"
#include "control/node_registry.h"
#include "net/http.h"

namespace slipway {

class Sandboxes;
class Environments;  // control/environments.h

struct ApiDeps {
  Context& ctx;
  Controller& controller;
  AuthService& auth;
  NodeRegistry& nodes;
  Sandboxes* sandboxes = nullptr;        // null = sandboxes are off (their routes answer 503)
  Environments* environments = nullptr;  // null = the environment routes answer 503
};

// What one listener serves.
enum class Listener {
  kFull,     // everything; /metrics needs a credential
  kHooks,    // /hooks/… and /health only (safe to expose to the git host)
  kMetrics,  // /metrics and /health only, without a credential (a scrape-only port)
};

// `deps` must outlive the handler.
net::HttpHandler MakeApiHandler(ApiDeps deps, Listener listener = Listener::kFull);

// One row of the route table, for docs and tests.
struct RouteInfo {
  std::string method;
  std::string pattern;     // "/api/v1/apps/{app}/deployments"
  std::string permission;  // "deploy", or "none" for the login route
};
std::vector<RouteInfo> ApiRouteTable();

}  // namespace slipway
