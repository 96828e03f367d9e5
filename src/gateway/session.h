#pragma once
// One client connection of the proxy: reads requests strictly, routes each on a fresh
// snapshot, and forwards it over a pooled or new upstream connection, streaming bodies both
// ways. Internal to the gateway library.
#include <atomic>
#include <memory>
#include <string>

#include "gateway/access_log.h"
#include "gateway/io.h"
#include "gateway/proxy.h"
#include "gateway/router.h"

namespace slipway::gateway {

// What every session of one proxy shares. Read-only after start except the counter.
struct ProxyShared {
  ProxyOptions options;
  const Router& router;
  std::unique_ptr<AccessLog> log;  // null when off
  std::atomic<std::size_t> connections{0};
};

// Serves `socket` until the connection ends; `set` is the listener's route set. Never
// throws (a catch-all closes the connection). Runs on `loop`'s thread.
io::asio::awaitable<void> ServeClient(ProxyShared& shared, io::Loop& loop, io::tcp::socket socket,
                                      std::string set);

}  // namespace slipway::gateway
