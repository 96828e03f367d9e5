#include "app/server.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>

#include "agent/agent.h"
#include "api/api.h"
#include "control/controller.h"
#include "gateway/proxy.h"
#include "net/http_server.h"
#include "obs/log.h"
#include "store/sqlite_store.h"

namespace slipway {
namespace {

bool SplitAddr(const std::string& addr, std::string& host, int& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) return false;
  host = addr.substr(0, colon);
  if (host.empty()) host = "127.0.0.1";
  try {
    std::size_t used = 0;
    port = std::stoi(addr.substr(colon + 1), &used);
    return used == addr.size() - colon - 1 && port >= 0 && port < 65536;
  } catch (...) {
    return false;
  }
}

int StartupError(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return 2;
}

}  // namespace

int RunServer(const ServerOptions& options) {
  obs::InitLogging(options.log_level, options.log_json);
  std::string api_host, gw_host;
  int api_port = 0, gw_port = 0;
  if (!SplitAddr(options.api_addr, api_host, api_port))
    return StartupError("--api must be HOST:PORT, not '" + options.api_addr + "'");
  if (!SplitAddr(options.gateway_addr, gw_host, gw_port))
    return StartupError("--gateway must be HOST:PORT, not '" + options.gateway_addr + "'");

  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec)
    return StartupError("cannot create data directory " + options.data_dir + ": " + ec.message());
  Paths paths{std::filesystem::canonical(options.data_dir).string()};

  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto& clock = SystemClock::Instance();
  auto store = OpenSqliteStore(paths.db(), clock);
  if (!store.ok()) return StartupError(store.status().message());
  auto agent = MakeLocalAgent(paths.askpass());
  gateway::Router router;
  EventLog events(**store);
  ServingState serving;
  Context ctx{**store, *agent, router, clock, events, serving, paths};

  gateway::ProxyOptions gw;
  gw.address = gw_host;
  gw.port = gw_port;
  gw.threads = options.gateway_threads;
  auto proxy = gateway::Proxy::Create(gw, router);
  if (!proxy.ok()) return StartupError(proxy.status().message());

  Controller controller(ctx, {options.max_concurrent});
  net::HttpServerOptions api;
  api.address = api_host;
  api.port = api_port;
  auto http = net::HttpServer::Create(api, MakeApiHandler({ctx, controller}));
  if (!http.ok()) return StartupError(http.status().message());

  controller.Start();  // recovery first: the gateway then opens on a true route table
  (*proxy)->Start();
  (*http)->Start();
  spdlog::info("slipway server ready: api http://{}:{}  gateway http://{}:{}  data {}", api_host,
               (*http)->port(), gw_host, (*proxy)->port(), paths.data);
  std::cout << "slipway is running\n"
            << "  API      http://" << api_host << ":" << (*http)->port()
            << "/api/v1   (health: /health, metrics: /metrics)\n"
            << "  gateway  http://" << gw_host << ":" << (*proxy)->port()
            << "            (apps answer as <app>.localhost)\n"
            << "  data     " << paths.data << "\n"
            << "next: slipway apps create hello --repo <git url> --secret <webhook secret>; "
               "slipway deploy hello\n";
  std::cout.flush();

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info(
      "signal {}: shutting down (instances keep running and are adopted on the next start)", sig);
  events.Close();  // long polls and streams return, so the API's workers can stop
  (*http)->Stop();
  controller.Stop();
  (*proxy)->Stop();
  return 0;
}

}  // namespace slipway
