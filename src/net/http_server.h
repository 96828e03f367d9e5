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
//
// WebSocket: a handler accepts an upgrade by returning `HttpResponse::websocket` (net/http.h).
// The server then checks that the request is a valid RFC 6455 upgrade (GET, HTTP/1.1,
// `Upgrade: websocket`, a Connection with the upgrade token, Sec-WebSocket-Version 13 and a
// Sec-WebSocket-Key); if not, it answers 426 (or 400) with the usual JSON error body and calls
// no callback; beyond max_websockets it answers 503. Any other response of the handler (a 401,
// say) is written as usual and nothing is upgraded. An accepted connection holds no worker
// between messages; its callbacks run on the worker pool. Binary messages close it with 1003.
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
  int worker_threads = 16;    // handler, poll and next calls that run at once
  int max_streams = 256;      // open deferred + streamed responses; more get 503
  int max_websockets = 1024;  // open WebSocket connections; more get 503 (before the upgrade)
};

// Thread-safety: every method may be called from any thread except a handler, a poll/next
// call, a WebSocket callback or a Notifier wake of this server (Stop would wait for itself).
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
  // included, without a response; WebSockets with a 1001 close frame, given at most a second
  // to answer, and their on_close called), waits for the handler/poll/next and WebSocket
  // callbacks already running, then joins all threads. Idempotent.
  virtual void Stop() = 0;
  // Deferred and streamed responses open right now (for metrics); at most max_streams.
  virtual int open_streams() const = 0;
  // WebSocket connections open right now (for metrics); at most max_websockets.
  virtual int open_websockets() const = 0;
};

}  // namespace slipway::net
