#pragma once
// One client connection of the proxy: reads requests strictly, routes each on a fresh
// snapshot, and forwards it over a pooled or new upstream connection, streaming bodies both
// ways. Internal to the gateway library.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "gateway/access_log.h"
#include "gateway/io.h"
#include "gateway/proxy.h"
#include "gateway/router.h"

namespace slipway::gateway {

// One listener as its connections see it. Shared by the proxy and every session it
// accepted, so it lives as long as the longest of them.
class ListenerState {
 public:
  ListenerState(std::string set, std::size_t loops)
      : set(std::move(set)), slots_(std::make_unique<Slot[]>(loops)), loops_(loops) {}

  const std::string set;  // the route set served on this listener
  // Set when the listener is removed: its sessions finish their request, then close.
  std::atomic<bool> closed{false};

  // One more request on loop `loop`. Each slot has one writer (its loop's thread), so this
  // is a plain load and store, with no read-modify-write shared between threads.
  void Count(std::size_t loop) {
    auto& n = slots_[loop % loops_].n;
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::uint64_t requests() const {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < loops_; ++i) total += slots_[i].n.load(std::memory_order_relaxed);
    return total;
  }

 private:
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> n{0};
  };
  std::unique_ptr<Slot[]> slots_;
  std::size_t loops_;
};

// What every session of one proxy shares. Read-only after start except the counter.
struct ProxyShared {
  ProxyOptions options;
  const Router& router;
  std::unique_ptr<AccessLog> log;  // null when off
  std::atomic<std::size_t> connections{0};
};

// Serves `socket`, accepted on `listener`, until the connection ends. Never throws (a
// catch-all closes the connection). Runs on `loop`'s thread.
io::asio::awaitable<void> ServeClient(ProxyShared& shared, io::Loop& loop, io::tcp::socket socket,
                                      std::shared_ptr<ListenerState> listener);

}  // namespace slipway::gateway
