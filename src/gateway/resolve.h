#pragma once
// Where the proxy connects for a target: its address, or its name resolved without blocking
// the event loop. Internal to the gateway library.
#include <chrono>
#include <string>
#include <vector>

#include "gateway/io.h"

namespace slipway::gateway {

struct Resolved {
  std::vector<io::tcp::endpoint> endpoints;  // in the resolver's order; empty: none found
  bool timed_out = false;                    // the resolver did not answer within the timeout
};

// True for "localhost" and any "*.localhost" name (any letter case, an optional final dot):
// loopback names that never leave the machine (RFC 6761 §6.3).
bool IsLocalhostName(std::string_view host);

// The endpoints for `host`:`port`: an IP address as is; a localhost name as 127.0.0.1
// without asking DNS; any other name through asio's resolver (getaddrinfo runs on the
// resolver's own thread), given up after `timeout` (a late answer is dropped). Runs on the
// loop that owns `ctx`.
io::asio::awaitable<Resolved> Resolve(io::asio::io_context& ctx, const std::string& host, int port,
                                      std::chrono::milliseconds timeout);

}  // namespace slipway::gateway
