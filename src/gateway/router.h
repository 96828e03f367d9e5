#pragma once
// Host (+ optional path prefix) → the app's active target. The table is immutable; a change
// builds a new table and publishes it with one atomic store, so requests read a consistent
// snapshot without taking a lock, and a request already routed keeps its target (and its
// in-flight count) until it finishes.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/target.h"

namespace slipway::gateway {

struct Route {
  std::string app;
  std::vector<std::string> hosts;  // lower-case host names without port
  std::string path_prefix;         // "" or "/api"
  std::shared_ptr<Target> target;  // null (and no pool): the app exists but nothing serves (503)
  // Several equivalent targets (the tasks of a swarm service), used round-robin instead of
  // `target` when not empty.
  std::vector<std::shared_ptr<Target>> pool;
  std::shared_ptr<std::atomic<std::uint64_t>> next =
      std::make_shared<std::atomic<std::uint64_t>>(0);

  bool empty() const { return !target && pool.empty(); }
  // The targets to try for one request, the preferred one first.
  std::vector<std::shared_ptr<Target>> Candidates() const;
};

class RouteTable {
 public:
  explicit RouteTable(std::vector<Route> routes);
  // The route for a Host header value (port ignored, case-insensitive) and request path:
  // exact host (else the closest "*.domain" wildcard), longest matching path prefix.
  // nullptr when none matches.
  const Route* Match(std::string_view host_header, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  const Route* MatchHost(const std::string& key, std::string_view path) const;
  std::vector<Route> routes_;
  std::multimap<std::string, std::size_t, std::less<>> by_host_;
};

class Router {
 public:
  Router() : table_(std::make_shared<const RouteTable>(std::vector<Route>{})) {}

  std::shared_ptr<const RouteTable> Snapshot() const {
    return table_.load(std::memory_order_acquire);
  }

  // Adds or replaces the app's route. Returns the target it replaced (null when none), so
  // the caller can drain it.
  std::shared_ptr<Target> SetRoute(Route route);
  // Points the app's existing route at `target`; returns the replaced one.
  std::shared_ptr<Target> Switch(const std::string& app, std::shared_ptr<Target> target);
  // Replaces the app's pool (and clears its single target). Returns false when the app has
  // no route.
  bool SetPool(const std::string& app, std::vector<std::shared_ptr<Target>> pool);
  void RemoveRoute(const std::string& app);
  std::shared_ptr<Target> Current(const std::string& app) const;

 private:
  std::mutex write_mu_;  // serialises writers only; readers never take it
  std::atomic<std::shared_ptr<const RouteTable>> table_;
};

}  // namespace slipway::gateway
