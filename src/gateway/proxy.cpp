#include "gateway/proxy.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gateway/session.h"
#include "net/listen.h"

namespace slipway::gateway {
namespace {

namespace asio = io::asio;
using io::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds kSweep{250};
// Pooled upstream connections idle longer than this are closed rather than risked: common
// app servers drop idle keep-alives after 5 s, and a request sent as they do would fail.
constexpr std::chrono::milliseconds kPoolIdle{4000};

// A listening socket. Owned by the proxy alone (never by a coroutine), so it is always
// destroyed before the loops' io_contexts; its Accept coroutine holds a reference and ends
// once the acceptor is closed. The acceptor is used on the first loop's thread once its
// Accept coroutine runs, so it is closed there too.
struct Listener {
  Listener(asio::io_context& ctx, ListenOn on, std::size_t loops)
      : acceptor(ctx),
        on(std::move(on)),
        state(std::make_shared<ListenerState>(this->on.set, loops)) {}
  tcp::acceptor acceptor;
  ListenOn on;
  int port = 0;
  std::shared_ptr<ListenerState> state;  // shared with the sessions it accepted
  bool spawned = false;                  // its Accept coroutine was started (guarded by mu_)
  std::atomic<bool> done{false};         // its Accept coroutine ended
};

class ProxyImpl final : public Proxy {
 public:
  ProxyImpl(ProxyOptions options, const Router& router)
      : shared_{std::move(options), router, nullptr, {}} {
    int n = std::clamp(shared_.options.threads, 1, 64);
    for (int i = 0; i < n; ++i) loops_.push_back(std::make_unique<io::Loop>(i));
  }
  ~ProxyImpl() override { Stop(); }

  Status Bind() {
    const auto& o = shared_.options;
    std::vector<ListenOn> all{{o.address, o.port, o.set}};
    all.insert(all.end(), o.extra.begin(), o.extra.end());
    std::lock_guard lock(mu_);
    for (auto& on : all) {
      auto l = Open(on);
      if (!l.ok()) return l.status();
      listeners_.push_back(std::move(*l));
    }
    main_port_ = listeners_.front()->port;
    if (!o.access_log.empty()) {
      auto log = AccessLog::Open(o.access_log);
      if (!log.ok()) return log.status();
      shared_.log = std::move(*log);
      AccessLog* raw = shared_.log.get();
      loops_.front()->on_sweep = [raw] { raw->Flush(); };
    }
    return Status::Ok();
  }

  int port() const override { return main_port_; }

  std::vector<int> ports() const override {
    std::lock_guard lock(mu_);
    std::vector<int> out;
    for (const auto& l : listeners_) out.push_back(l->port);
    return out;
  }

  void Start() override {
    std::lock_guard lock(mu_);
    if (started_ || stopped_) return;
    started_ = true;
    for (auto& l : listeners_) Spawn(*l);
    for (auto& loop : loops_) {
      asio::co_spawn(loop->ctx, loop->Sweep(kSweep, kPoolIdle), asio::detached);
      threads_.emplace_back([c = &loop->ctx] { c->run(); });
    }
  }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    for (auto& loop : loops_) loop->ctx.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    {
      std::lock_guard lock(mu_);
      listeners_.clear();  // acceptors go before their io_context
      retired_.clear();
    }
    loops_.clear();  // pooled sockets close before their io_context goes
    if (shared_.log) shared_.log->Flush();
  }

  Result<int> AddListener(ListenOn on) override {
    std::lock_guard lock(mu_);
    if (stopped_) return Unavailable("the gateway is stopped");
    Prune();
    auto l = Open(on);
    if (!l.ok()) return l.status();
    int port = (*l)->port;
    if (started_) Spawn(**l);
    listeners_.push_back(std::move(*l));
    return port;
  }

  bool RemoveListener(int port) override {
    auto closed = std::make_shared<std::promise<void>>();
    std::future<void> ready = closed->get_future();
    {
      std::lock_guard lock(mu_);
      if (stopped_ || listeners_.size() < 2) return false;
      Prune();
      auto it = std::find_if(listeners_.begin() + 1, listeners_.end(),
                             [port](const auto& l) { return l->port == port; });
      if (it == listeners_.end()) return false;
      Listener* l = it->get();
      l->state->closed.store(true, std::memory_order_relaxed);
      retired_.push_back(std::move(*it));
      listeners_.erase(it);
      asio::io_context& ctx = loops_.front()->ctx;
      if (!l->spawned || ctx.get_executor().running_in_this_thread()) {
        Close(*l);
        return true;
      }
      // Dropped unrun if the proxy stops first: the promise then breaks and Stop closes it.
      asio::post(ctx, [l, closed] {
        Close(*l);
        closed->set_value();
      });
    }
    ready.wait();
    return true;
  }

  std::uint64_t Requests(int port) const override {
    std::lock_guard lock(mu_);
    for (const auto& l : listeners_)
      if (l->port == port) return l->state->requests();
    return 0;
  }

 private:
  // A bound, listening socket on the first loop's context; kUnavailable when taken.
  Result<std::unique_ptr<Listener>> Open(const ListenOn& on) {
    auto l = std::make_unique<Listener>(loops_.front()->ctx, on, loops_.size());
    if (Status s = net::Listen(l->acceptor, on.address, on.port, "gateway"); !s.ok()) return s;
    boost::system::error_code ec;
    l->port = l->acceptor.local_endpoint(ec).port();
    if (ec) return Unavailable("gateway listener on " + on.address + ": " + ec.message());
    return l;
  }

  static void Close(Listener& l) {
    boost::system::error_code ec;
    l.acceptor.close(ec);
  }

  // REQUIRES: mu_ held.
  void Spawn(Listener& l) {
    l.spawned = true;
    asio::co_spawn(loops_.front()->ctx, Accept(l), asio::detached);
  }

  // Frees removed listeners whose Accept coroutine has ended (it ends only once the acceptor
  // is closed) or never ran (closed by RemoveListener itself). REQUIRES: mu_ held.
  void Prune() {
    std::erase_if(retired_, [](const std::unique_ptr<Listener>& l) {
      return !l->spawned || l->done.load(std::memory_order_acquire);
    });
  }

  // Accepts on the first loop and hands connections to every loop in turn. Ends when the
  // acceptor is closed (RemoveListener), marking the listener done.
  asio::awaitable<void> Accept(Listener& l) {
    for (std::size_t next = 0;; next = (next + 1) % loops_.size()) {
      io::Loop& loop = *loops_[next];
      auto [ec, socket] = co_await l.acceptor.async_accept(loop.ctx, kTuple);
      if (ec) {
        if (!l.acceptor.is_open()) break;
        // Out of descriptors (or memory): pause instead of spinning a core on the same error,
        // and keep serving the connections already open.
        asio::steady_timer pause(loops_.front()->ctx, std::chrono::milliseconds(100));
        co_await pause.async_wait(kTuple);
        continue;
      }
      if (shared_.connections.load(std::memory_order_relaxed) >= shared_.options.max_connections) {
        Refuse(socket);  // over the cap: refused at once, the open ones keep their share
        continue;
      }
      shared_.connections.fetch_add(1, std::memory_order_relaxed);
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(loop.ctx, ServeClient(shared_, loop, std::move(socket), l.state),
                     asio::detached);
    }
    l.done.store(true, std::memory_order_release);
  }

  // A canned 503 written without waiting (a full send buffer just loses it), then closed.
  template <typename Socket>
  static void Refuse(Socket& socket) {
    static constexpr std::string_view k503 =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 38\r\n"
        "Retry-After: 1\r\nConnection: close\r\n\r\nThe gateway has too many connections.\n";
    boost::system::error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(k503), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  ProxyShared shared_;
  std::vector<std::unique_ptr<io::Loop>> loops_;  // fixed from construction until Stop
  std::vector<std::thread> threads_;
  int main_port_ = 0;
  mutable std::mutex mu_;  // guards the members below; never held while a loop waits on it
  std::vector<std::unique_ptr<Listener>> listeners_;  // main first
  std::vector<std::unique_ptr<Listener>> retired_;    // removed, Accept maybe still ending
  bool started_ = false;
  bool stopped_ = false;
};

void AllTargets(const Route& r, std::vector<const Target*>& out) {
  out.clear();
  if (r.target) out.push_back(r.target.get());
  for (const auto& t : r.pool) out.push_back(t.get());
  for (const auto& side : r.sides)
    for (const auto& t : side.targets) out.push_back(t.get());
}

struct Series {
  std::string requests, errors, inflight, latency, window, route_requests, route_responses;
};

void TargetSeries(const std::string& labels, const Target& t, Series& s) {
  fmt::format_to(std::back_inserter(s.requests), "slipway_gateway_requests_total{{{}}} {}\n",
                 labels, t.requests());
  fmt::format_to(std::back_inserter(s.errors), "slipway_gateway_errors_total{{{}}} {}\n", labels,
                 t.errors());
  fmt::format_to(std::back_inserter(s.inflight), "slipway_gateway_inflight{{{}}} {}\n", labels,
                 t.inflight());
  std::int64_t cumulative = 0;
  for (std::size_t i = 0; i < Target::kBuckets.size(); ++i) {
    cumulative += t.bucket(i);
    fmt::format_to(std::back_inserter(s.latency),
                   "slipway_gateway_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels,
                   Target::kBuckets[i], cumulative);
  }
  fmt::format_to(std::back_inserter(s.latency),
                 "slipway_gateway_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n"
                 "slipway_gateway_request_duration_seconds_sum{{{}}} {}\n"
                 "slipway_gateway_request_duration_seconds_count{{{}}} {}\n",
                 labels, t.requests(), labels, t.latency_sum(), labels, t.requests());
  WindowStats w = t.Window(60);
  for (auto [q, v] : {std::pair{"0.5", w.p50}, {"0.95", w.p95}, {"0.99", w.p99}})
    fmt::format_to(std::back_inserter(s.window),
                   "slipway_gateway_window_latency_seconds{{{},quantile=\"{}\"}} {}\n", labels, q,
                   v);
}

void RouteSeries(const Route& r, Series& s) {
  auto labels =
      fmt::format("route=\"{}\",app=\"{}\",listener=\"{}\"", r.label(), r.app, r.listener);
  fmt::format_to(std::back_inserter(s.route_requests),
                 "slipway_gateway_route_requests_total{{{}}} {}\n", labels,
                 r.stats->requests.load(std::memory_order_relaxed));
  for (std::size_t c = 0; c < r.stats->by_class.size(); ++c)
    fmt::format_to(std::back_inserter(s.route_responses),
                   "slipway_gateway_route_responses_total{{{},class=\"{}xx\"}} {}\n", labels, c + 1,
                   r.stats->by_class[c].load(std::memory_order_relaxed));
}

}  // namespace

Result<std::unique_ptr<Proxy>> Proxy::Create(ProxyOptions options, const Router& router) {
  auto proxy = std::make_unique<ProxyImpl>(std::move(options), router);
  if (Status s = proxy->Bind(); !s.ok()) return s;
  return std::unique_ptr<Proxy>(std::move(proxy));
}

void RenderTargetMetrics(const Router& router, std::string& out) {
  auto table = router.Snapshot();
  Series s;
  std::vector<const Target*> targets;
  // A target reached through several routes of one app (its main route and the routes that
  // follow it) is one series, not a duplicate per route.
  std::set<std::pair<std::string_view, const Target*>> seen;
  for (const auto& r : table->routes()) {
    RouteSeries(r, s);
    AllTargets(r, targets);
    for (const Target* t : targets)
      if (seen.emplace(r.app, t).second)
        TargetSeries(fmt::format("app=\"{}\",target=\"{}\"", r.app, t->id()), *t, s);
  }
  auto section = [&out](std::string_view name, std::string_view type, std::string_view help,
                        const std::string& body) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {2}\n# TYPE {0} {1}\n{3}", name, type, help,
                   body);
  };
  section("slipway_gateway_requests_total", "counter",
          "Requests the gateway forwarded, per app and target.", s.requests);
  section("slipway_gateway_errors_total", "counter", "Forwarded requests answered with a 5xx.",
          s.errors);
  section("slipway_gateway_inflight", "gauge", "Requests in flight per target.", s.inflight);
  section("slipway_gateway_request_duration_seconds", "histogram", "Gateway request latency.",
          s.latency);
  section("slipway_gateway_window_latency_seconds", "gauge",
          "Latency quantiles per target over the last 60 seconds.", s.window);
  section("slipway_gateway_route_requests_total", "counter", "Requests matched per route.",
          s.route_requests);
  section("slipway_gateway_route_responses_total", "counter",
          "Responses per route by status class (gateway pages included).", s.route_responses);
}

}  // namespace slipway::gateway
