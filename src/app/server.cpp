#include "app/server.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "agent/agent.h"
#include "agent/hub.h"
#include "agent/in_process.h"
#include "api/api.h"
#include "control/auth_service.h"
#include "control/controller.h"
#include "control/environments.h"
#include "control/node_registry.h"
#include "control/rollout_board.h"
#include "control/sandboxes.h"
#include "crypto/secret_box.h"
#include "gateway/proxy.h"
#include "gateway/route_file.h"
#include "git/git.h"
#include "manifest/manifest.h"
#include "manifest/repos_file.h"
#include "net/http_server.h"
#include "notify/notifier.h"
#include "notify/notify_file.h"
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
  std::cerr << "error: " << git::RedactSecrets(message) << "\n";
  return 2;
}

// Reads a secret from the environment and removes it, so no child (git, build and test
// steps, instances) inherits it. The value is also overwritten where the process's initial
// environment keeps it, which /proc/<pid>/environ shows.
std::string TakeSecretEnv(const char* name) {
  char* v = std::getenv(name);
  if (!v) return "";
  std::string value(v);
  std::memset(v, 0, value.size());
  unsetenv(name);
  return value;
}

// The data directory holds the database, the key and the releases: private to this user.
Result<Paths> PrepareDataDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create data directory " + dir + ": " + ec.message());
  if (chmod(dir.c_str(), 0700) != 0) return Unavailable("cannot chmod 0700 data directory " + dir);
  return Paths{std::filesystem::canonical(dir, ec).string()};
}

Result<crypto::SecretBox> OpenKey(const ServerOptions& options, const Paths& paths,
                                  const std::string& key) {
  if (!key.empty()) return crypto::SecretBox::FromBase64(key);
  return crypto::SecretBox::LoadOrCreate(
      options.secret_key_file.empty() ? paths.data + "/secret.key" : options.secret_key_file);
}

// An optional extra listener (--hooks, --metrics) serving a subset of the API.
Result<std::unique_ptr<net::HttpServer>> ExtraListener(const std::string& addr, const char* flag,
                                                       net::HttpHandler handler) {
  if (addr.empty()) return std::unique_ptr<net::HttpServer>();
  net::HttpServerOptions o;
  if (!SplitAddr(addr, o.address, o.port))
    return Invalid(std::string(flag) + " must be HOST:PORT, not '" + addr + "'");
  o.worker_threads = 4;
  return net::HttpServer::Create(o, std::move(handler));
}

// The server's own node's repos.yaml (--repos); none without the flag.
Result<RepoTable> LoadRepos(const std::string& file) {
  if (file.empty()) return RepoTable{};
  return LoadReposFile(file);
}

}  // namespace

namespace {

// The gateway's run-time ports, as the sandbox service sees them.
class ProxyPorts final : public PortHost {
 public:
  explicit ProxyPorts(gateway::Proxy& proxy) : proxy_(proxy) {}
  Result<int> Open(const std::string& address, int port, const std::string& set) override {
    return proxy_.AddListener({address, port, set});
  }
  void Close(int port) override { proxy_.RemoveListener(port); }
  std::uint64_t Requests(int port) const override { return proxy_.Requests(port); }

 private:
  gateway::Proxy& proxy_;
};

// "LO-HI", 1024 <= LO <= HI <= 65535.
bool ParseRange(const std::string& text, int& lo, int& hi) {
  auto dash = text.find('-');
  if (dash == std::string::npos) return false;
  try {
    std::size_t a = 0, b = 0;
    lo = std::stoi(text.substr(0, dash), &a);
    hi = std::stoi(text.substr(dash + 1), &b);
    if (a != dash || b != text.size() - dash - 1) return false;
  } catch (const std::exception&) {
    return false;
  }
  return lo >= 1024 && lo <= hi && hi <= 65535;
}

// "90s", "45m", "12h", "14d" (whole numbers) up to ten years; false otherwise.
bool ParseLongDuration(const std::string& text, std::chrono::milliseconds& out) {
  if (text.size() < 2 || text.size() > 12) return false;
  const char unit = text.back();
  const long long per = unit == 's'   ? 1000
                        : unit == 'm' ? 60000
                        : unit == 'h' ? 3600000
                        : unit == 'd' ? 86400000
                                      : 0;
  long long n = 0;
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    n = n * 10 + (text[i] - '0');
  }
  if (per == 0 || n > 3650LL * 86400000 / per) return false;
  out = std::chrono::milliseconds(n * per);
  return true;
}

Result<SandboxOptions> SandboxSettings(const ServerOptions& o, const std::string& address) {
  SandboxOptions s;
  s.address = address;
  if (!ParseRange(o.sandbox_gateway_ports, s.gateway_lo, s.gateway_hi))
    return Invalid("--sandbox-gateway-ports must be LO-HI within 1024-65535, not '" +
                   o.sandbox_gateway_ports + "'");
  if (!ParseRange(o.sandbox_service_ports, s.service_lo, s.service_hi))
    return Invalid("--sandbox-service-ports must be LO-HI within 1024-65535, not '" +
                   o.sandbox_service_ports + "'");
  if (s.gateway_lo <= s.service_hi && s.service_lo <= s.gateway_hi)
    return Invalid("--sandbox-gateway-ports and --sandbox-service-ports overlap");
  std::chrono::milliseconds expire{}, retention{};
  if (!ParseLongDuration(o.sandbox_expire_after, expire) || expire < std::chrono::minutes(1))
    return Invalid("--sandbox-expire-after must be a duration from 1m to 3650d");
  if (!ParseLongDuration(o.sandbox_retention, retention))
    return Invalid("--sandbox-retention must be a duration up to 3650d");
  s.default_expiry_ms = expire.count();
  s.retention_ms = retention.count();
  return s;
}

}  // namespace

int RunServer(const ServerOptions& options) {
  const std::string bootstrap_token = TakeSecretEnv("SLIPWAY_BOOTSTRAP_TOKEN");
  const std::string secret_key = TakeSecretEnv("SLIPWAY_SECRET_KEY");
  (void)TakeSecretEnv("SLIPWAY_TOKEN");  // a CLI credential; no child of the server needs it
  obs::InitLogging(options.log_level, options.log_json,
                   [](std::string_view text) { return git::RedactSecrets(text); });
  std::string api_host, gw_host;
  int api_port = 0, gw_port = 0;
  if (!SplitAddr(options.api_addr, api_host, api_port))
    return StartupError("--api must be HOST:PORT, not '" + options.api_addr + "'");
  if (!SplitAddr(options.gateway_addr, gw_host, gw_port))
    return StartupError("--gateway must be HOST:PORT, not '" + options.gateway_addr + "'");
  auto login_role = RoleFromString(options.login_role);
  if (!login_role) return StartupError("--login-role must be admin, backend, qa or viewer");
  if (!options.login_repo.empty()) {
    if (auto s = git::ValidateRepoUrl(options.login_repo); !s.ok())
      return StartupError("--login-repo: " + s.message());
  }
  auto repos = LoadRepos(options.repos);
  if (!repos.ok()) return StartupError(repos.status().message());
  std::vector<NotifyTarget> notify_targets;
  if (!options.notify.empty()) {
    auto loaded = LoadNotifyFile(options.notify);
    if (!loaded.ok()) return StartupError(loaded.status().message());
    notify_targets = std::move(*loaded);
  }

  umask(077);  // every file the server writes (database, key, token, logs) is private
  auto paths = PrepareDataDir(options.data_dir);
  if (!paths.ok()) return StartupError(paths.status().message());

  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto box = OpenKey(options, *paths, secret_key);
  if (!box.ok()) return StartupError(box.status().message());
  auto& clock = SystemClock::Instance();
  auto store = OpenSqliteStore(paths->db(), clock, &*box);
  if (!store.ok()) return StartupError(store.status().message());
  // Deployments tell it their outcome; it delivers in the background, until shutdown.
  Notifier notifier(clock, **store);
  notifier.AddServerTargets(std::move(notify_targets));
  notifier.Start();
  auto term = (*store)->NextTerm();
  if (!term.ok())
    return StartupError("cannot raise the control plane's term: " + term.status().message());
  std::chrono::milliseconds lease{};
  if (!ParseDuration(options.node_lease, lease) || lease < std::chrono::seconds(2) ||
      lease > std::chrono::hours(24))
    return StartupError("--node-lease must be a duration from 2s to 24h, not '" +
                        options.node_lease + "'");
  NodeHubOptions hub_options;
  hub_options.root = paths->data;
  hub_options.term = *term;
  hub_options.op_lease = lease;
  hub_options.heartbeat = std::min<std::chrono::milliseconds>(lease / 8, std::chrono::seconds(5));
  hub_options.silence = hub_options.heartbeat * 3;
  NodeHub hub(clock, hub_options);
  hub.Start();
  NodeRegistry registry(**store, hub, clock);  // records nodes as they come and go
  registry.Attach();
  // The server's own node speaks the agent protocol too, over an in-process pipe.
  auto local = InProcessNode::Start(
      hub, {"local", {}, paths->data, paths->askpass(), nullptr, std::move(*repos)});
  if (!local->WaitWelcomed(std::chrono::seconds(10)))
    return StartupError("the local node did not connect");
  Agent& agent = hub.AgentFor("local");
  gateway::Router router;
  EventLog events(**store);
  ServingState serving;
  RolloutBoard rollouts;
  Context ctx{**store, agent, router, clock, events, serving, *paths, &hub, &rollouts};
  ctx.notifier = &notifier;
  Environments environments(**store);

  AuthOptions auth_options;
  auth_options.login_repo = options.login_repo;
  auth_options.login_role = *login_role;
  AuthService auth(**store, agent, clock, auth_options);
  auto boot = auth.Bootstrap(bootstrap_token, paths->data + "/admin.token");
  if (!boot.ok()) return StartupError(boot.status().message());

  gateway::ProxyOptions gw;
  gw.address = gw_host;
  gw.port = gw_port;
  gw.threads = options.gateway_threads;
  gw.access_log = options.gateway_access_log;
  for (const auto& text : options.gateway_listen) {
    gateway::ListenOn on;
    if (!gateway::ParseListen(text, on) || on.set.empty())
      return StartupError("--gateway-listen must be HOST:PORT=SET, not '" + text + "'");
    gw.extra.push_back(on);
  }
  auto proxy = gateway::Proxy::Create(gw, router);
  if (!proxy.ok()) return StartupError(proxy.status().message());

  auto sandbox_options = SandboxSettings(options, gw_host);
  if (!sandbox_options.ok()) return StartupError(sandbox_options.status().message());
  Controller controller(ctx, {options.max_concurrent});
  ProxyPorts proxy_ports(**proxy);
  // Every deployment asks it for the app's environment (and a sandbox app's service map).
  Sandboxes sandboxes(ctx, controller, environments, proxy_ports, *sandbox_options);
  ctx.injection = &sandboxes;
  ApiDeps deps{ctx, controller, auth, registry};
  deps.environments = &environments;
  deps.sandboxes = &sandboxes;
  net::HttpServerOptions api;
  api.address = api_host;
  api.port = api_port;
  api.max_streams = options.max_streams;
  auto http = net::HttpServer::Create(api, MakeApiHandler(deps));
  if (!http.ok()) return StartupError(http.status().message());
  auto hooks = ExtraListener(options.hooks_addr, "--hooks", MakeApiHandler(deps, Listener::kHooks));
  if (!hooks.ok()) return StartupError(hooks.status().message());
  auto metrics =
      ExtraListener(options.metrics_addr, "--metrics", MakeApiHandler(deps, Listener::kMetrics));
  if (!metrics.ok()) return StartupError(metrics.status().message());

  controller.Start();  // recovery first: the gateway then opens on a true route table
  sandboxes.Start();   // the sandboxes' ports and routes, following their recovered apps
  (*proxy)->Start();
  (*http)->Start();
  if (*hooks) (*hooks)->Start();
  if (*metrics) (*metrics)->Start();
  spdlog::info("slipway server ready: api http://{}:{}  gateway http://{}:{}  data {}", api_host,
               (*http)->port(), gw_host, (*proxy)->port(), paths->data);
  std::cout << "slipway is running\n"
            << "  API      http://" << api_host << ":" << (*http)->port()
            << "/api/v1   (health: /health, metrics: /metrics)\n"
            << "  gateway  http://" << gw_host << ":" << (*proxy)->port()
            << "            (apps answer as <app>.localhost)\n";
  if (*hooks)
    std::cout << "  hooks    http://" << options.hooks_addr << "/hooks/<provider>/<app>\n";
  if (*metrics) std::cout << "  metrics  http://" << options.metrics_addr << "/metrics\n";
  std::cout << "  data     " << paths->data << "\n";
  if (!boot->empty()) std::cout << "  " << *boot << "\n";
  std::cout << "next: slipway apps create hello --repo <git url> --secret <webhook secret>; "
               "slipway deploy hello\n";
  std::cout.flush();

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info(
      "signal {}: shutting down (instances keep running and are adopted on the next start)", sig);
  events.Close();  // long polls and streams return, so the API's workers can stop
  if (*hooks) (*hooks)->Stop();
  if (*metrics) (*metrics)->Stop();
  (*http)->Stop();
  sandboxes.Stop();
  controller.Stop();
  notifier.Stop();  // after the deployments, which may still send
  (*proxy)->Stop();
  local.reset();
  hub.Stop();
  return 0;
}

}  // namespace slipway
