#include "gateway/router.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace slipway::gateway {
namespace {
std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool PrefixMatches(std::string_view prefix, std::string_view path) {
  if (prefix.empty()) return true;
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/' || prefix.back() == '/';
}
}  // namespace

RouteTable::RouteTable(std::vector<Route> routes) : routes_(std::move(routes)) {
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    for (auto& h : routes_[i].hosts) {
      h = Lower(h);
      by_host_.emplace(h, i);
    }
  }
}

const Route* RouteTable::Match(std::string_view host_header, std::string_view path) const {
  std::string_view host = host_header;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string key = Lower(host);
  if (const Route* exact = MatchHost(key, path)) return exact;
  // A wildcard "*.example.com" covers any name below example.com; the closest one wins.
  for (auto dot = key.find('.'); dot != std::string::npos; dot = key.find('.', dot + 1)) {
    if (const Route* wild = MatchHost("*" + key.substr(dot), path)) return wild;
  }
  return nullptr;
}

const Route* RouteTable::MatchHost(const std::string& key, std::string_view path) const {
  const Route* best = nullptr;
  auto [lo, hi] = by_host_.equal_range(key);
  for (auto it = lo; it != hi; ++it) {
    const Route& r = routes_[it->second];
    if (!PrefixMatches(r.path_prefix, path)) continue;
    if (!best || r.path_prefix.size() > best->path_prefix.size()) best = &r;
  }
  return best;
}

std::shared_ptr<Target> Router::SetRoute(Route route) {
  std::lock_guard lock(write_mu_);
  auto current = table_.load();
  std::vector<Route> routes;
  std::shared_ptr<Target> replaced;
  for (const auto& r : current->routes()) {
    if (r.app == route.app) {
      replaced = r.target;
    } else {
      routes.push_back(r);
    }
  }
  routes.push_back(std::move(route));
  table_.store(std::make_shared<const RouteTable>(std::move(routes)), std::memory_order_release);
  return replaced;
}

std::shared_ptr<Target> Router::Switch(const std::string& app, std::shared_ptr<Target> target) {
  std::lock_guard lock(write_mu_);
  auto current = table_.load();
  std::vector<Route> routes = current->routes();
  std::shared_ptr<Target> replaced;
  for (auto& r : routes) {
    if (r.app == app) {
      replaced = std::exchange(r.target, target);
      r.pool.clear();
    }
  }
  table_.store(std::make_shared<const RouteTable>(std::move(routes)), std::memory_order_release);
  return replaced;
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

bool Router::SetPool(const std::string& app, std::vector<std::shared_ptr<Target>> pool) {
  std::lock_guard lock(write_mu_);
  std::vector<Route> routes = table_.load()->routes();
  bool found = false;
  for (auto& r : routes) {
    if (r.app != app) continue;
    r.target = nullptr;
    r.pool = pool;
    found = true;
  }
  if (found)
    table_.store(std::make_shared<const RouteTable>(std::move(routes)), std::memory_order_release);
  return found;
}

void Router::RemoveRoute(const std::string& app) {
  std::lock_guard lock(write_mu_);
  std::vector<Route> routes;
  for (const auto& r : table_.load()->routes())
    if (r.app != app) routes.push_back(r);
  table_.store(std::make_shared<const RouteTable>(std::move(routes)), std::memory_order_release);
}

std::shared_ptr<Target> Router::Current(const std::string& app) const {
  for (const auto& r : Snapshot()->routes())
    if (r.app == app) return r.target;
  return nullptr;
}

}  // namespace slipway::gateway
