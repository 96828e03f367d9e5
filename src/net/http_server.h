#pragma once
// The control plane's HTTP server. Connections are read asynchronously (with idle and body
// limits, so a slow or oversized client costs nothing); each complete request is handed to
// the handler on a worker pool, where blocking (the store, long polls, streams) is allowed.
#include <chrono>
#include <memory>
#include <string>

#include "core/status.h"
#include "net/http.h"

namespace slipway::net {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  int port = 0;                    // 0 = pick a free port
  std::size_t max_body = 1 << 20;  // larger bodies get 413
  std::chrono::seconds idle_timeout{30};
  int io_threads = 1;
  int worker_threads = 16;  // concurrent handlers (long polls and streams hold one)
};

class HttpServer {
 public:
  // Binds the listening socket. Fails with kUnavailable when the address is taken.
  static Result<std::unique_ptr<HttpServer>> Create(HttpServerOptions options, HttpHandler handler);
  virtual ~HttpServer() = default;
  virtual int port() const = 0;
  // Starts accepting on background threads. Returns at once.
  virtual void Start() = 0;
  // Stops accepting and closes connections; waits for the threads.
  virtual void Stop() = 0;
};

}  // namespace slipway::net
