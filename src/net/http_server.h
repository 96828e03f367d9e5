#pragma once
// The control plane's HTTP server. Connections are read asynchronously on the I/O threads
// (with idle, header and body limits, so a slow or oversized client costs nothing); each
// complete request is handed to the handler on a worker pool, where blocking (the store) is
// allowed, and N slow handlers run side by side up to `worker_threads`.
//
// Long polls and event streams hold no worker while they wait: a handler returns at once
// with `HttpResponse::deferred` or `HttpResponse::streamed` set (net/http.h), the connection
// is parked on its event loop, and only the short `poll`/`next` calls run on a worker, after
// the response's Notifier wakes its topic or its timer passes.
//
// For such a response the server keeps the shared_ptr until the response ends; subscribes
// to (notifier, topic) before the first poll/next call and unsubscribes on every way out
// (answered, done, write failed, peer gone, Stop()); calls poll/next one at a time per
// response (never two at once for the same response), on any worker thread. While parked,
// a peer that closes its end of the connection ends the response (no more calls are made).
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/status.h"
#include "net/http.h"

namespace slipway::net {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  int port = 0;                           // 0 = pick a free port
  std::size_t max_body = 1 << 20;         // larger bodies get 413
  std::size_t max_header = 64 << 10;      // larger request heads get 400
  std::chrono::seconds idle_timeout{30};  // per read of a request and per write
  int io_threads = 1;
  int worker_threads = 16;  // handler, poll and next calls that run at once
  int max_streams = 256;    // open deferred + streamed responses; more get 503
};

// Thread-safety: every method may be called from any thread except a handler, a poll/next
// call or a Notifier wake of this server (Stop would wait for itself).
class HttpServer {
 public:
  // Binds the listening socket. Fails with kInvalid for an address that does not parse and
  // kUnavailable when the address is taken. `handler` is called on worker threads, several
  // at once; it must be thread-safe and return in bounded time. A handler that throws gets
  // the client a 500 {"error":"internal"} (the exception is logged, never sent).
  static Result<std::unique_ptr<HttpServer>> Create(HttpServerOptions options, HttpHandler handler);
  // Destroying a server stops it first (see Stop()).
  virtual ~HttpServer() = default;
  virtual int port() const = 0;
  // Starts accepting on background threads. Returns at once; a second call does nothing.
  virtual void Start() = 0;
  // Closes the listening socket, ends every connection (parked long polls and streams
  // included, without a response), waits for the handler/poll/next calls already running,
  // then joins all threads. Idempotent.
  virtual void Stop() = 0;
  // Deferred and streamed responses open right now (for metrics); at most max_streams.
  virtual int open_streams() const = 0;
};

}  // namespace slipway::net
