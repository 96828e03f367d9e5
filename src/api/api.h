#pragma once
// REST API (/api/v1), webhook receiver (/hooks), /health and /metrics, as one HTTP handler.
// Errors are JSON {"error": code, "detail": message} with the matching 4xx/5xx status.
#include "control/context.h"
#include "control/controller.h"
#include "net/http.h"

namespace slipway {

struct ApiDeps {
  Context& ctx;
  Controller& controller;
};

// `deps` must outlive the handler.
net::HttpHandler MakeApiHandler(ApiDeps deps);

}  // namespace slipway
