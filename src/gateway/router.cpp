#include "gateway/router.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

namespace slipway::gateway {
namespace {

using Headers = std::vector<http1::HeaderField>;
constexpr auto npos = std::string_view::npos;

// Match builds its lookup keys on the stack up to these sizes (a DNS name is at most 253
// bytes); longer ones still match, through a heap buffer.
constexpr std::size_t kMaxHost = 255;
constexpr std::size_t kMaxListener = 255;

// 2^64 / golden ratio: consecutive multiples spread evenly over [0, 2^64) (a Weyl sequence).
constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;

char LowerAscii(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerAscii(c);
  return out;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The host without its port; an IPv6 literal keeps its brackets ("[::1]:80" → "[::1]").
std::string_view StripPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return close == npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.rfind(':');
  return colon == npos ? host : host.substr(0, colon);
}

// "/api" covers "/api", "/api/x" and "/api?q", not "/apix"; a prefix ending in '/' covers
// everything below it.
bool PrefixMatches(std::string_view prefix, std::string_view path) {
  if (prefix.empty()) return true;
  if (!path.starts_with(prefix)) return false;
  if (path.size() == prefix.size() || prefix.back() == '/') return true;
  char next = path[prefix.size()];
  return next == '/' || next == '?';
}

const http1::HeaderField* FindHeader(const Headers& headers, std::string_view name) {
  for (const auto& h : headers)
    if (IEquals(h.name, name)) return &h;
  return nullptr;
}

// Calls f on each `sep`-separated item of `list` (OWS trimmed) until f returns true;
// returns whether one did.
template <typename F>
bool AnyItem(std::string_view list, char sep, F&& f) {
  for (;;) {
    auto end = list.find(sep);
    if (f(TrimOws(list.substr(0, end)))) return true;
    if (end == npos) return false;
    list.remove_prefix(end + 1);
  }
}

// Calls f(item) on the items of every header named `name` until f returns true.
template <typename F>
bool AnyHeaderItem(const Headers& headers, std::string_view name, char sep, F&& f) {
  for (const auto& h : headers)
    if (IEquals(h.name, name) && AnyItem(h.value, sep, f)) return true;
  return false;
}

// Finds the first cookie named exactly `name` across all Cookie headers ("a=b; c=d") and
// sets `value`; false when there is none.
bool FindCookie(const Headers& headers, std::string_view name, std::string_view& value) {
  return AnyHeaderItem(headers, "cookie", ';', [&](std::string_view pair) {
    auto eq = pair.find('=');
    if (eq == npos || TrimOws(pair.substr(0, eq)) != name) return false;
    value = TrimOws(pair.substr(eq + 1));
    return true;
  });
}

// Any header named `name` (case-insensitive) with exactly `value`: a repeated header counts
// wherever the value appears.
bool HasHeader(const Headers& headers, std::string_view name, std::string_view value) {
  for (const auto& h : headers)
    if (h.value == value && IEquals(h.name, name)) return true;
  return false;
}

bool HasCookie(const Headers& headers, std::string_view name, std::string_view value) {
  return AnyHeaderItem(headers, "cookie", ';', [&](std::string_view pair) {
    auto eq = pair.find('=');
    return eq != npos && TrimOws(pair.substr(0, eq)) == name &&
           TrimOws(pair.substr(eq + 1)) == value;
  });
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether percent-decoding `encoded` yields exactly `want`. Decodes and compares byte by
// byte, so it needs no buffer and has no length limit. A malformed escape never matches.
bool DecodedEquals(std::string_view encoded, std::string_view want) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < encoded.size(); ++i, ++n) {
    char c = encoded[i];
    if (c == '%') {
      if (encoded.size() - i < 3) return false;
      int hi = HexValue(encoded[i + 1]), lo = HexValue(encoded[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (n == want.size() || want[n] != c) return false;
  }
  return n == want.size();
}

// W3C baggage: comma-separated `key=value;properties` members, in one or more headers.
bool HasBaggage(const Headers& headers, std::string_view key, std::string_view value) {
  return AnyHeaderItem(headers, "baggage", ',', [&](std::string_view member) {
    member = member.substr(0, member.find(';'));
    auto eq = member.find('=');
    if (eq == npos || TrimOws(member.substr(0, eq)) != key) return false;
    return DecodedEquals(TrimOws(member.substr(eq + 1)), value);
  });
}

bool Holds(const Predicate& p, const Headers& headers) {
  switch (p.kind) {
    case Predicate::Kind::kHeader:
      return HasHeader(headers, p.name, p.value);
    case Predicate::Kind::kCookie:
      return HasCookie(headers, p.name, p.value);
    case Predicate::Kind::kBaggage:
      return HasBaggage(headers, p.name, p.value);
  }
  return false;
}

// Path prefix and predicates; routes with predicates never match a request without headers.
bool Matches(const Route& route, std::string_view path, const Headers* headers) {
  if (!PrefixMatches(route.path_prefix, path)) return false;
  if (route.when.empty()) return true;
  if (!headers) return false;
  return std::all_of(route.when.begin(), route.when.end(),
                     [&](const Predicate& p) { return Holds(p, *headers); });
}

// Calls tier(key) for each host tier, most specific first, until one returns a route. The
// keys ("listener\nhost") are built in place in `buf` (listener.size() + host.size() + 2
// bytes): the lower-cased host sits at a fixed offset and each key's "listener\n" (and '*')
// is written just before the part of the host it keeps, overwriting only labels no later
// tier needs.
template <typename Tier>
const Route* WalkTiers(std::string_view listener, std::string_view host, char* buf, Tier&& tier) {
  const std::size_t base = listener.size() + 2;
  for (std::size_t i = 0; i < host.size(); ++i) buf[base + i] = LowerAscii(host[i]);
  auto put_prefix = [&](std::size_t at) {
    std::copy(listener.begin(), listener.end(), buf + at);
    buf[at + listener.size()] = '\n';
  };
  put_prefix(1);
  if (const Route* r = tier({buf + 1, base - 1 + host.size()})) return r;
  for (auto dot = host.find('.'); dot != npos; dot = host.find('.', dot + 1)) {
    put_prefix(dot);
    buf[base - 1 + dot] = '*';  // "listener\n*" + ".rest.of.host"
    if (const Route* r = tier({buf + dot, base - dot + host.size()})) return r;
  }
  put_prefix(0);
  buf[base - 1] = '*';
  return tier({buf, base});
}

// Best first: higher priority, longer path prefix, more predicates, earlier in the table.
bool Before(const Route& a, std::uint32_t ia, const Route& b, std::uint32_t ib) {
  if (a.priority != b.priority) return a.priority > b.priority;
  if (a.path_prefix.size() != b.path_prefix.size())
    return a.path_prefix.size() > b.path_prefix.size();
  if (a.when.size() != b.when.size()) return a.when.size() > b.when.size();
  return ia < ib;
}

}  // namespace

RouteTable::RouteTable(std::vector<Route> routes) : routes_(std::move(routes)) {
  for (std::uint32_t i = 0; i < routes_.size(); ++i) {
    for (auto& host : routes_[i].hosts) {
      host = Lower(host);
      auto& list = index_[routes_[i].listener + '\n' + host];
      if (list.empty() || list.back() != i) list.push_back(i);  // a host listed twice
    }
  }
  for (auto& [key, list] : index_) {
    std::sort(list.begin(), list.end(), [this](std::uint32_t a, std::uint32_t b) {
      return Before(routes_[a], a, routes_[b], b);
    });
  }
}

const Route* RouteTable::Match(std::string_view listener, const RequestInfo& request) const {
  if (index_.empty()) return nullptr;
  std::string_view host = StripPort(request.host);
  auto tier = [&](std::string_view key) -> const Route* {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    for (std::uint32_t i : it->second)
      if (Matches(routes_[i], request.path, request.headers)) return &routes_[i];
    return nullptr;
  };
  if (host.size() <= kMaxHost && listener.size() <= kMaxListener) {
    std::array<char, kMaxListener + kMaxHost + 2> buf;
    return WalkTiers(listener, host, buf.data(), tier);
  }
  std::string buf(listener.size() + host.size() + 2, '\0');
  return WalkTiers(listener, host, buf.data(), tier);
}

const Route* RouteTable::Match(std::string_view host_header, std::string_view path) const {
  return Match("", RequestInfo{host_header, path, nullptr});
}

bool Route::empty() const {
  return !target && pool.empty() &&
         std::none_of(sides.begin(), sides.end(), [](const Side& s) { return !s.targets.empty(); });
}

std::vector<std::shared_ptr<Target>> Route::Candidates() const {
  if (pool.empty())
    return target ? std::vector<std::shared_ptr<Target>>{target}
                  : std::vector<std::shared_ptr<Target>>{};
  std::size_t start = next->fetch_add(1, std::memory_order_relaxed) % pool.size();
  std::vector<std::shared_ptr<Target>> out;
  out.reserve(pool.size());
  for (std::size_t i = 0; i < pool.size(); ++i) out.push_back(pool[(start + i) % pool.size()]);
  return out;
}

// ---- Choosing sides and targets ----

namespace {

bool Eligible(const Side& s) {
  return s.weight > 0 && !s.targets.empty();
}

std::uint64_t TotalWeight(const std::vector<Side>& sides) {
  std::uint64_t total = 0;
  for (const auto& s : sides)
    if (Eligible(s)) total += s.weight;
  return total;
}

// Maps a uniformly distributed 64-bit value into [0, total) by its high bits.
std::uint64_t Scale(std::uint64_t u, std::uint64_t total) {
  return total <= 0xFFFFFFFFull ? ((u >> 32) * total) >> 32 : u % total;
}

// The eligible side whose cumulative weight range contains `point` (< total weight).
const Side* SideAt(const std::vector<Side>& sides, std::uint64_t point) {
  for (const auto& s : sides) {
    if (!Eligible(s)) continue;
    if (point < s.weight) return &s;
    point -= s.weight;
  }
  return nullptr;
}

const Side* NamedSide(const std::vector<Side>& sides, std::string_view name) {
  for (const auto& s : sides)
    if (Eligible(s) && s.name == name) return &s;
  return nullptr;
}

std::uint64_t Fnv1a(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// The preferred side: named by the sticky cookie (else weighted, and the cookie must be
// set), hashed from the sticky header, or the next point of the route's Weyl sequence.
const Side* PickSide(const Route& route, const RequestInfo& request, std::uint64_t total,
                     bool& set_cookie) {
  const Headers* headers = request.headers;
  if (route.sticky == Sticky::kCookie) {
    std::string_view named;
    if (headers && FindCookie(*headers, route.sticky_name, named))
      if (const Side* side = NamedSide(route.sides, named)) return side;
    set_cookie = true;
  } else if (route.sticky == Sticky::kHeader && headers) {
    if (const auto* h = FindHeader(*headers, route.sticky_name))
      return SideAt(route.sides, Scale(Fnv1a(h->value), total));
  }
  std::uint64_t n = route.next->fetch_add(1, std::memory_order_relaxed);
  return SideAt(route.sides, Scale(n * kGolden, total));
}

// Where to start in a list of equivalent targets; a single target needs no rotation, which
// spares a contended atomic on the hot path.
std::uint64_t Rotation(std::atomic<std::uint64_t>& next, std::size_t size) {
  return size > 1 ? next.fetch_add(1, std::memory_order_relaxed) : 0;
}

void AddRotated(Choice& c, const std::vector<std::shared_ptr<Target>>& targets,
                std::uint64_t start) {
  for (std::size_t i = 0; i < targets.size() && c.count < Choice::kMax; ++i)
    c.targets[c.count++] = targets[(start + i) % targets.size()].get();
}

}  // namespace

// Without eligible sides (none, or all weight 0 or empty) the route's pool or target serve.
Choice Choose(const Route& route, const RequestInfo& request) {
  Choice c;
  std::uint64_t total = TotalWeight(route.sides);
  if (total == 0) {
    if (!route.pool.empty())
      AddRotated(c, route.pool, Rotation(*route.next, route.pool.size()));
    else if (route.target)
      c.targets[c.count++] = route.target.get();
    return c;
  }
  const Side* side = PickSide(route, request, total, c.set_cookie);
  c.side = side;
  AddRotated(c, side->targets, Rotation(*side->next, side->targets.size()));
  for (const auto& other : route.sides)  // fallback when the chosen side refuses connections
    if (&other != side && Eligible(other)) AddRotated(c, other.targets, 0);
  return c;
}

// ---- Gates and stats ----

void AppGate::Pause(std::chrono::milliseconds max_hold) {
  {
    std::lock_guard lock(mu_);
    max_hold_ = max_hold;
  }
  mode_.store(Mode::kPaused, std::memory_order_release);
}

void AppGate::Maintenance(std::string message) {
  {
    std::lock_guard lock(mu_);
    message_ = std::move(message);
  }
  mode_.store(Mode::kMaintenance, std::memory_order_release);
}

void AppGate::Resume() {
  mode_.store(Mode::kOpen, std::memory_order_release);
}

std::chrono::milliseconds AppGate::max_hold() const {
  std::lock_guard lock(mu_);
  return max_hold_;
}

std::string AppGate::message() const {
  std::lock_guard lock(mu_);
  return message_;
}

void RouteStats::Record(int status) {
  requests.fetch_add(1, std::memory_order_relaxed);
  if (status >= 100 && status <= 599)
    by_class[static_cast<std::size_t>(status / 100 - 1)].fetch_add(1, std::memory_order_relaxed);
}

// ---- Router ----

namespace {

bool IsMain(const Route& r) {
  return r.owner.empty() && r.listener.empty() && r.when.empty();
}

// The app's main route: without an owner, on the main listener and without predicates; the
// first such one.
std::vector<Route>::iterator MainRoute(std::vector<Route>& routes, const std::string& app) {
  return std::find_if(routes.begin(), routes.end(),
                      [&](const Route& r) { return r.app == app && IsMain(r); });
}

// A chain of followers longer than this (or a cycle) serves nothing.
constexpr int kMaxFollowHops = 8;

// Gives every following route the target, pool and sides of the main route it follows (at
// the end of a chain of followers); nothing when there is none.
void ResolveFollowers(std::vector<Route>& routes) {
  if (std::none_of(routes.begin(), routes.end(), [](const Route& r) { return !r.follow.empty(); }))
    return;
  std::unordered_map<std::string_view, const Route*> mains;
  for (const auto& r : routes)
    if (IsMain(r)) mains.emplace(r.app, &r);  // the first one wins, as in MainRoute
  // Each chain ends at a route that follows nothing (or at nothing), so the routes read
  // here are never among those written.
  for (auto& r : routes) {
    if (r.follow.empty()) continue;
    const Route* from = &r;
    for (int hop = 0; from && !from->follow.empty(); ++hop) {
      auto it = mains.find(from->follow);
      from = hop < kMaxFollowHops && it != mains.end() ? it->second : nullptr;
    }
    r.target = from ? from->target : nullptr;
    r.pool = from ? from->pool : std::vector<std::shared_ptr<Target>>{};
    r.sides = from ? from->sides : std::vector<Side>{};
  }
}

const std::shared_ptr<AppGate>& GateIn(std::map<std::string, std::shared_ptr<AppGate>>& gates,
                                       const std::string& app) {
  auto& gate = gates[app];
  if (!gate) gate = std::make_shared<AppGate>();
  return gate;
}

}  // namespace

Router::Router() : table_(std::make_shared<const RouteTable>(std::vector<Route>{})) {}

// Every route of an app holds the app's one gate from gates_, so Gate(app) and the
// published routes always agree and a pause survives any table change.
void Router::Publish(std::vector<Route> routes) {
  ResolveFollowers(routes);
  for (auto& r : routes) r.gate = GateIn(gates_, r.app);
  table_.store(std::make_shared<const RouteTable>(std::move(routes)), std::memory_order_release);
  version_.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<Target> Router::SetRoute(Route route) {
  std::lock_guard lock(write_mu_);
  std::vector<Route> routes = table_.load()->routes();
  std::shared_ptr<Target> replaced;
  if (auto it = MainRoute(routes, route.app); it != routes.end()) {
    replaced = it->target;
    *it = std::move(route);
  } else {
    routes.push_back(std::move(route));
  }
  Publish(std::move(routes));
  return replaced;
}

// The target takes over the whole main route: a pool or sides would otherwise still win.
std::shared_ptr<Target> Router::Switch(const std::string& app, std::shared_ptr<Target> target) {
  std::lock_guard lock(write_mu_);
  std::vector<Route> routes = table_.load()->routes();
  auto it = MainRoute(routes, app);
  if (it == routes.end()) return nullptr;
  auto replaced = std::exchange(it->target, std::move(target));
  it->pool.clear();
  it->sides.clear();
  Publish(std::move(routes));
  return replaced;
}

bool Router::SetPool(const std::string& app, std::vector<std::shared_ptr<Target>> pool) {
  std::lock_guard lock(write_mu_);
  std::vector<Route> routes = table_.load()->routes();
  auto it = MainRoute(routes, app);
  if (it == routes.end()) return false;
  it->target = nullptr;
  it->pool = std::move(pool);
  it->sides.clear();
  Publish(std::move(routes));
  return true;
}

bool Router::SetSides(const std::string& app, std::vector<Side> sides) {
  std::lock_guard lock(write_mu_);
  std::vector<Route> routes = table_.load()->routes();
  auto it = MainRoute(routes, app);
  if (it == routes.end()) return false;
  it->target = nullptr;
  it->pool.clear();
  it->sides = std::move(sides);
  Publish(std::move(routes));
  return true;
}

void Router::RemoveRoute(const std::string& app) {
  std::lock_guard lock(write_mu_);
  std::vector<Route> routes = table_.load()->routes();
  std::erase_if(routes, [&](const Route& r) { return r.app == app && r.owner.empty(); });
  Publish(std::move(routes));
}

std::shared_ptr<Target> Router::Current(const std::string& app) const {
  for (const auto& r : Snapshot()->routes())
    if (r.app == app && IsMain(r)) return r.target;
  return nullptr;
}

void Router::SetRoutes(std::vector<Route> routes) {
  std::lock_guard lock(write_mu_);
  Publish(std::move(routes));
}

void Router::SetRoutesOf(const std::string& owner, std::vector<Route> routes) {
  if (owner.empty()) return;  // would take every route without an owner for its own
  std::lock_guard lock(write_mu_);
  std::vector<Route> all = table_.load()->routes();
  std::erase_if(all, [&](const Route& r) { return r.owner == owner; });
  for (auto& r : routes) {
    r.owner = owner;
    all.push_back(std::move(r));
  }
  Publish(std::move(all));
}

void Router::SetTap(std::shared_ptr<RequestTap> tap) {
  std::lock_guard lock(write_mu_);  // so the flag and the pointer change together
  bool on = tap != nullptr;
  tap_.store(std::move(tap), std::memory_order_release);
  tapping_.store(on, std::memory_order_release);
}

std::shared_ptr<AppGate> Router::Gate(const std::string& app) {
  std::lock_guard lock(write_mu_);
  return GateIn(gates_, app);
}

}  // namespace slipway::gateway
