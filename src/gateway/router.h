#pragma once
// The gateway's route model, pure and lock-free for readers.
//
// A route matches on listener (route set), host (exact, "*.domain" wildcard or "*" for any),
// path prefix (on segment boundaries) and optional predicates (a header value, a key inside
// the W3C `baggage` header, a cookie). Among the routes that match, the most specific host
// tier wins (exact, then the closest wildcard, then "*"), then the highest priority, then
// the longest path prefix, then the most predicates, then the earliest route.
//
// A route leads to one target, a round-robin pool, or weighted sides (stable 90 / canary 10),
// optionally sticky by cookie or by a header hash, or follows another app: it then serves
// whatever that app's main route serves, resolved again at every publish. The table is
// immutable; a change builds a new table and publishes it with one atomic store, so a request
// reads a consistent snapshot without a lock, and a request already routed keeps its
// snapshot (and its targets) until it finishes.
//
// Routes with an `owner` (a sandbox) belong to that owner: only SetRoutesOf changes them;
// the per-app calls (SetRoute, Switch, SetPool, SetSides, RemoveRoute, Current) see only
// routes without an owner.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/http1.h"
#include "gateway/tap.h"
#include "gateway/target.h"

namespace slipway::gateway {

struct Predicate {
  enum class Kind {
    kHeader,   // header `name` (case-insensitive) has exactly `value`
    kBaggage,  // the W3C baggage header has member `name` with value `value` (RFC-style
               // percent-decoding of the value; properties after ';' ignored)
    kCookie,   // cookie `name` has exactly `value`
  };
  Kind kind = Kind::kHeader;
  std::string name;
  std::string value;
};

// One side of a weighted target set: equivalent instances, used round-robin.
struct Side {
  std::string name;  // "stable", "canary", a sandbox name; unique within the route
  std::uint32_t weight = 0;
  std::vector<std::shared_ptr<Target>> targets;
  std::shared_ptr<std::atomic<std::uint64_t>> next =
      std::make_shared<std::atomic<std::uint64_t>>(0);
};

enum class Sticky {
  kNone,
  kCookie,  // a cookie `sticky_name` names the side; set on the response when absent/stale
  kHeader,  // a hash of header `sticky_name` picks the side (weighted); absent → random
};

// Pause / maintenance state of one app. Shared by every route of the app and across table
// snapshots, so a pause applies at once to requests routed by an older snapshot. Thread-safe.
class AppGate {
 public:
  enum class Mode { kOpen, kPaused, kMaintenance };
  Mode mode() const { return mode_.load(std::memory_order_acquire); }
  // Holds new requests; each waits at most `max_hold`, then gets 503.
  void Pause(std::chrono::milliseconds max_hold);
  // Answers every request with 503 and `message`.
  void Maintenance(std::string message);
  // Back to normal; held requests proceed.
  void Resume();
  std::chrono::milliseconds max_hold() const;
  std::string message() const;

 private:
  std::atomic<Mode> mode_{Mode::kOpen};
  mutable std::mutex mu_;
  std::chrono::milliseconds max_hold_{30000};
  std::string message_;
};

// Per-route counters for /metrics. Thread-safe (relaxed atomics).
struct RouteStats {
  std::atomic<std::int64_t> requests{0};
  std::array<std::atomic<std::int64_t>, 5> by_class{};  // 1xx..5xx
  void Record(int status);
};

struct Route {
  std::string app;
  std::vector<std::string> hosts;  // lower-cased by the table; "*.domain" and "*" allowed
  std::string path_prefix;         // "" or "/api"
  std::shared_ptr<Target> target;  // null (and no pool or sides): nothing serves (503)
  // Several equivalent targets (the tasks of a swarm service), used round-robin instead of
  // `target` when not empty.
  std::vector<std::shared_ptr<Target>> pool;
  std::shared_ptr<std::atomic<std::uint64_t>> next =
      std::make_shared<std::atomic<std::uint64_t>>(0);

  std::string name;      // for metrics and logs; "" → the app name
  std::string listener;  // the route set it belongs to; "" is the main gateway port
  int priority = 0;
  std::vector<Predicate> when;  // all must hold
  std::vector<Side> sides;      // when not empty: weighted sides instead of target/pool
  Sticky sticky = Sticky::kNone;
  std::string sticky_name;     // cookie or header name for stickiness
  std::uint64_t max_body = 0;  // request body limit in bytes (413); 0 = none
  std::string health_path;     // answered 200 by the gateway while paused/in maintenance
  std::shared_ptr<AppGate> gate = std::make_shared<AppGate>();
  std::shared_ptr<RouteStats> stats = std::make_shared<RouteStats>();
  std::string owner;  // "" = none; else only SetRoutesOf(owner, …) changes this route
  // "" = none; else an app whose main route's target, pool and sides this route takes at
  // every publish (its own are overwritten); nothing serves (503) while that app has none.
  std::string follow;

  bool empty() const;
  const std::string& label() const { return name.empty() ? app : name; }
  // The targets to try for a request without side selection (target or pool), the
  // preferred one first. Kept for callers that need no request context.
  std::vector<std::shared_ptr<Target>> Candidates() const;
};

// What the matcher may look at in a request. Views into the proxy's buffer.
struct RequestInfo {
  std::string_view host;  // Host header or absolute-form authority (port allowed)
  std::string_view path;  // path, query allowed (ignored for matching)
  const std::vector<http1::HeaderField>* headers = nullptr;
};

// The result of choosing targets for one request. Raw pointers: valid while the caller
// holds the RouteTable snapshot the route came from.
struct Choice {
  static constexpr std::size_t kMax = 8;
  std::array<Target*, kMax> targets{};  // preferred first; other sides follow as fallback
  std::size_t count = 0;
  const Side* side = nullptr;  // the chosen side, when the route has sides
  bool set_cookie = false;     // sticky by cookie and the request's cookie was absent/stale
};

class RouteTable {
 public:
  explicit RouteTable(std::vector<Route> routes);
  // The route for a request on `listener`; nullptr when none matches. Does not allocate for
  // host names up to 255 bytes.
  const Route* Match(std::string_view listener, const RequestInfo& request) const;
  // Main listener, no headers: kept for callers and tests that route by host and path only.
  const Route* Match(std::string_view host_header, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  // Transparent, so Match looks keys up by a string_view over a stack buffer (no allocation).
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
      return std::hash<std::string_view>{}(key);
    }
  };
  std::vector<Route> routes_;
  // (listener '\n' host) → route indexes, best first for the ordering in the file comment.
  std::unordered_map<std::string, std::vector<std::uint32_t>, KeyHash, std::equal_to<>> index_;
};

// Picks the side (weighted, sticky) and the targets to try. Weighted choice without
// stickiness follows a low-discrepancy sequence, so any window of N requests is within a
// few requests of the weights.
Choice Choose(const Route& route, const RequestInfo& request);

class Router {
 public:
  Router();

  std::shared_ptr<const RouteTable> Snapshot() const {
    return table_.load(std::memory_order_acquire);
  }
  // Bumped after every publish: a reader that caches a snapshot reloads it when this moved
  // (cheaper under load than an atomic shared_ptr load per request from several threads).
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

  // Writers below are serialised among themselves and never block readers. Each publish
  // re-resolves every following route from the table it publishes.

  // Adds or replaces the app's main route (the one without an owner and with no predicates
  // on the main listener; other routes of the app are kept). Returns the target it replaced
  // (null when none), so the caller can drain it.
  std::shared_ptr<Target> SetRoute(Route route);
  // Points the app's main route at `target`; returns the replaced one.
  std::shared_ptr<Target> Switch(const std::string& app, std::shared_ptr<Target> target);
  // Replaces the app's main-route pool (and clears its single target). Returns false when the
  // app has no route.
  bool SetPool(const std::string& app, std::vector<std::shared_ptr<Target>> pool);
  // Splits the app's main route into weighted sides (a canary and its baseline; clears its
  // target and pool). Returns false when the app has no route. Switch/SetPool end the split.
  bool SetSides(const std::string& app, std::vector<Side> sides);
  // Removes every route of the app that has no owner (routes of owners, following the app or
  // not, stay; a follower then serves nothing).
  void RemoveRoute(const std::string& app);
  std::shared_ptr<Target> Current(const std::string& app) const;
  // Replaces the whole table (a route file reload), owned routes included. Gates are kept
  // per app.
  void SetRoutes(std::vector<Route> routes);
  // Replaces, in one publish, every route whose owner is `owner` with `routes` (each gets
  // `owner` set); an empty vector removes them. An empty `owner` changes nothing.
  void SetRoutesOf(const std::string& owner, std::vector<Route> routes);
  // The app's pause/maintenance gate (created on first use, kept across table changes).
  std::shared_ptr<AppGate> Gate(const std::string& app);

  // The request tap every proxy on this router records finished requests into; null turns
  // it off. Thread-safe. Only requests begun while a tap is set are recorded, into the tap
  // set when they finish (if any).
  void SetTap(std::shared_ptr<RequestTap> tap);
  // Whether a tap is set: one relaxed load, for the request path.
  bool tapping() const { return tapping_.load(std::memory_order_relaxed); }
  std::shared_ptr<RequestTap> tap() const { return tap_.load(std::memory_order_acquire); }

 private:
  // Resolves followers, assigns gates and publishes; caller holds write_mu_.
  void Publish(std::vector<Route> routes);
  std::mutex write_mu_;  // serialises writers only; readers never take it
  std::map<std::string, std::shared_ptr<AppGate>> gates_;  // guarded by write_mu_
  std::atomic<std::shared_ptr<const RouteTable>> table_;
  std::atomic<std::uint64_t> version_{0};
  std::atomic<std::shared_ptr<RequestTap>> tap_;
  std::atomic<bool> tapping_{false};
};

}  // namespace slipway::gateway
