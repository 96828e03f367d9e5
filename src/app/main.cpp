// slipway: one binary, several roles. `slipway server` runs the control plane, gateway and
// local agent; every other verb is a client of a running server's API.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include "app/agent_main.h"
#include "app/gateway_main.h"
#include "app/server.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"slipway: git-to-production deployments with zero downtime"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "slipway 0.1.0");

  // Global options may come before or after the verb (`slipway status --json hello`).
  app.fallthrough();
  slipway::cli::GlobalOptions global;
  app.add_option("--server", global.server,
                 "API URL of the slipway server (or SLIPWAY_SERVER, or `slipway login`)");
  app.add_option("--token", global.token, "API token (or SLIPWAY_TOKEN, or `slipway login`)");
  app.add_flag("--json", global.json, "Machine-readable output");

  slipway::ServerOptions server;
  bool run_server = false;
  auto* srv = app.add_subcommand("server", "Run the control plane, gateway and local agent");
  srv->add_option("--data", server.data_dir, "Data directory (database, releases, logs)");
  srv->add_option("--api", server.api_addr, "API listen address HOST:PORT");
  srv->add_option("--gateway", server.gateway_addr, "Gateway listen address HOST:PORT");
  srv->add_option("--log-level", server.log_level, "trace|debug|info|warn|error");
  srv->add_flag("--log-json", server.log_json, "Log one JSON object per line");
  srv->add_option("--max-concurrent", server.max_concurrent, "Deployments running at once")
      ->check(CLI::Range(1, 64));
  srv->add_option("--gateway-threads", server.gateway_threads, "Gateway I/O threads")
      ->check(CLI::Range(1, 64));
  srv->add_option("--hooks", server.hooks_addr,
                  "Extra listener HOST:PORT serving only /hooks/… and /health (for the git host)");
  srv->add_option("--metrics", server.metrics_addr,
                  "Extra listener HOST:PORT serving /metrics without a token");
  srv->add_option("--login-repo", server.login_repo,
                  "Let users log in with their git credentials for this repository");
  srv->add_option("--login-role", server.login_role,
                  "Role of git-credential users without a user record (default viewer)");
  srv->add_option("--secret-key-file", server.secret_key_file,
                  "Key sealing secrets at rest (default <data>/secret.key; or SLIPWAY_SECRET_KEY)");
  srv->add_option("--max-streams", server.max_streams, "Open event streams and long polls")
      ->check(CLI::Range(1, 100000));
  srv->add_option("--gateway-listen", server.gateway_listen,
                  "Extra gateway port HOST:PORT=SET serving the routes of one route set");
  srv->add_option("--gateway-access-log", server.gateway_access_log,
                  "Append a JSON line per gateway request to this file");
  srv->add_option("--node-lease", server.node_lease,
                  "How long work on a silent node lives before it fails (60s)");
  srv->add_option("--repos", server.repos,
                  "repos.yaml: repository names on the server's own node (slipway repos)");
  srv->add_option("--notify", server.notify,
                  "YAML file of notification targets told of every app's deployments");
  srv->add_option("--sandbox-gateway-ports", server.sandbox_gateway_ports,
                  "Port range LO-HI of the sandboxes' own gateway ports (8081-8999)");
  srv->add_option("--sandbox-service-ports", server.sandbox_service_ports,
                  "Port range LO-HI of the sandboxes' service ports (9001-9999)");
  srv->add_option("--sandbox-expire-after", server.sandbox_expire_after,
                  "A sandbox idle this long expires (14d); its own setting wins");
  srv->add_option("--sandbox-retention", server.sandbox_retention,
                  "An expired sandbox is deleted after this long (7d)");
  srv->callback([&] { run_server = true; });

  slipway::GatewayOptions gateway;
  bool run_gateway = false;
  auto* gw = app.add_subcommand("gateway", "Run the gateway alone, routing from a route file");
  gw->add_option("--routes", gateway.routes, "Route file (YAML); SIGHUP reloads it")->required();
  gw->add_option("--listen", gateway.listen,
                 "HOST:PORT[=SET], repeatable (default 127.0.0.1:8080)");
  gw->add_option("--threads", gateway.threads, "I/O threads")->check(CLI::Range(1, 64));
  gw->add_option("--access-log", gateway.access_log, "Append a JSON line per request to this file");
  gw->add_option("--max-connections", gateway.max_connections, "Client connections open at once");
  gw->add_option("--header-timeout", gateway.header_timeout, "Time to send a request head (10s)");
  gw->add_option("--idle-timeout", gateway.idle_timeout, "Keep-alive idle time (60s)");
  gw->add_option("--connect-timeout", gateway.connect_timeout, "Upstream connect time (5s)");
  gw->add_option("--upstream-timeout", gateway.upstream_timeout,
                 "Upstream response-head wait and body silence (60s)");
  gw->add_option("--log-level", gateway.log_level, "trace|debug|info|warn|error");
  gw->callback([&] { run_gateway = true; });

  slipway::AgentOptions agent;
  bool run_agent = false;
  auto* ag =
      app.add_subcommand("agent", "Run a node: dial the control plane and run its work here");
  ag->add_option("--server", agent.server, "Control plane: ws://HOST:PORT/ws/agent (or wss://)")
      ->required();
  ag->add_option("--token", agent.token, "Enrollment token (or SLIPWAY_AGENT_TOKEN)");
  ag->add_option("--name", agent.name, "Node name")->required();
  ag->add_option("--labels", agent.labels, "Comma-separated labels: alpha,region=eu");
  ag->add_option("--data", agent.data_dir, "Data directory (mirrors, builds, releases, logs)")
      ->required();
  ag->add_option("--advertise", agent.advertise,
                 "Address the gateway reaches this node's instances at (default: as seen)");
  ag->add_option("--repos", agent.repos, "repos.yaml: repository names on this node");
  ag->add_option("--ca-file", agent.ca_file, "wss: CA bundle to verify the control plane with");
  ag->add_option("--log-level", agent.log_level, "trace|debug|info|warn|error");
  ag->callback([&] { run_agent = true; });

  int exit_code = 0;
  slipway::cli::RegisterCommands(app, global, &exit_code);
  slipway::cli::AddNodesCommands(app, global, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << " (see slipway --help)\n";
    return 2;
  }
  if (run_server) return slipway::RunServer(server);
  if (run_gateway) return slipway::RunGateway(gateway);
  if (run_agent) return slipway::RunAgent(agent);
  return exit_code;
}
