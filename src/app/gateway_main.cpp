#include "app/gateway_main.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "gateway/proxy.h"
#include "gateway/route_file.h"
#include "manifest/manifest.h"
#include "obs/log.h"

namespace slipway {
namespace {

int Fail(const std::string& line) {
  std::cerr << "slipway: " << line << "\n";
  return 2;
}

// Parses a duration flag within [lo, hi]; "" on success, else the error line.
std::string Duration(const std::string& flag, const std::string& text, std::chrono::milliseconds lo,
                     std::chrono::milliseconds hi, std::chrono::milliseconds& out) {
  if (!ParseDuration(text, out) || out < lo || out > hi)
    return flag + " must be a duration from " + std::to_string(lo.count()) + "ms to " +
           std::to_string(hi.count() / 1000) + "s, not '" + text + "'";
  return "";
}

std::string Timeouts(const GatewayOptions& o, gateway::ProxyOptions& p) {
  using std::chrono::milliseconds;
  using namespace std::chrono_literals;
  for (auto [flag, text, lo, hi, out] :
       {std::tuple{"--header-timeout", &o.header_timeout, milliseconds(100ms), milliseconds(10min),
                   &p.header_timeout},
        std::tuple{"--idle-timeout", &o.idle_timeout, milliseconds(100ms), milliseconds(1h),
                   &p.idle_timeout},
        std::tuple{"--connect-timeout", &o.connect_timeout, milliseconds(100ms), milliseconds(5min),
                   &p.connect_timeout},
        std::tuple{"--upstream-timeout", &o.upstream_timeout, milliseconds(100ms),
                   milliseconds(24h), &p.upstream_timeout}}) {
    std::string err = Duration(flag, *text, lo, hi, *out);
    if (!err.empty()) return err;
  }
  return "";
}

// Listeners from the flags, then the file's; the first is the main one.
std::string Listeners(const GatewayOptions& o, const gateway::RouteFile& file,
                      gateway::ProxyOptions& p) {
  std::vector<gateway::ListenOn> all;
  for (const auto& text : o.listen) {
    gateway::ListenOn on;
    if (!gateway::ParseListen(text, on))
      return "--listen must be HOST:PORT or HOST:PORT=SET, not '" + text + "'";
    all.push_back(on);
  }
  all.insert(all.end(), file.listen.begin(), file.listen.end());
  if (all.empty()) all.push_back({"127.0.0.1", 8080, ""});
  p.address = all.front().address;
  p.port = all.front().port;
  p.set = all.front().set;
  p.extra.assign(all.begin() + 1, all.end());
  return "";
}

void Reload(const std::string& path, gateway::Router& router) {
  auto file = gateway::LoadRouteFile(path);
  if (!file.ok()) {
    spdlog::error("routes not reloaded, the previous ones stay: {}", file.status().message());
    return;
  }
  std::size_t n = file->routes.size();
  router.SetRoutes(std::move(file->routes));
  spdlog::info("routes reloaded from {}: {} routes", path, n);
}

}  // namespace

int RunGateway(const GatewayOptions& o) {
  obs::InitLogging(o.log_level, false, nullptr);
  if (o.routes.empty()) return Fail("--routes FILE is required");
  auto file = gateway::LoadRouteFile(o.routes);
  if (!file.ok()) return Fail(file.status().message());
  gateway::ProxyOptions p;
  p.threads = o.threads;
  p.access_log = o.access_log;
  if (o.max_connections < 1 || o.max_connections > 1000000)
    return Fail("--max-connections must be from 1 to 1000000");
  p.max_connections = static_cast<std::size_t>(o.max_connections);
  if (auto err = Timeouts(o, p); !err.empty()) return Fail(err);
  if (auto err = Listeners(o, *file, p); !err.empty()) return Fail(err);

  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  gateway::Router router;
  router.SetRoutes(std::move(file->routes));
  auto proxy = gateway::Proxy::Create(p, router);
  if (!proxy.ok()) return Fail(proxy.status().message());
  (*proxy)->Start();
  for (int port : (*proxy)->ports())
    std::cout << "slipway gateway listening on port " << port << "\n";
  std::cout.flush();
  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      Reload(o.routes, router);
      continue;
    }
    break;
  }
  (*proxy)->Stop();
  return 0;
}

}  // namespace slipway
