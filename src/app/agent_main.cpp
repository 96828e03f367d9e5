#include "app/agent_main.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "agent/executor.h"
#include "agent/node_client.h"
#include "git/git.h"
#include "manifest/repos_file.h"
#include "net/ws_client.h"
#include "obs/log.h"

namespace slipway {
namespace {
using std::chrono::milliseconds;

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop = true;
}

int Usage(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return 2;
}

std::vector<std::string> SplitLabels(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

Status ValidateOptions(const AgentOptions& o, const std::vector<std::string>& labels) {
  if (o.server.rfind("ws://", 0) != 0 && o.server.rfind("wss://", 0) != 0)
    return Invalid("--server must be ws://HOST:PORT/ws/agent or wss://…");
  if (o.token.empty()) return Invalid("--token (or SLIPWAY_AGENT_TOKEN) is required");
  if (!protocol::IsValidId(o.name)) return Invalid("--name must be 1..64 chars of [A-Za-z0-9._-]");
  std::string lower;
  for (char c : o.name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "local" || lower == "local.")
    return Invalid("--name local is reserved for the server's own node");
  if (o.data_dir.empty()) return Invalid("--data is required");
  if (labels.size() > protocol::kMaxLabels)
    return Invalid("--labels: at most " + std::to_string(protocol::kMaxLabels) + " labels");
  for (const auto& l : labels) {
    if (l.empty() || l.size() > protocol::kMaxLabelChars ||
        l.find_first_of(" \t\r\n\"'\\") != std::string::npos)
      return Invalid("--labels: each label is 1..64 characters without spaces or quotes");
  }
  if (!o.advertise.empty() &&
      (o.advertise.size() > 255 || o.advertise.find_first_of(" \t/:") != std::string::npos))
    return Invalid("--advertise must be a host name or an IPv4 address");
  return Status::Ok();
}

std::uint64_t DiskFree(const std::string& dir) {
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

protocol::Hello MakeHello(const AgentOptions& o, const std::vector<std::string>& labels,
                          const RepoTable& repos) {
  protocol::Hello h;
  h.node = o.name;
  h.agent_version = "slipway 0.1.0";
  h.labels = labels;
  h.address = o.advertise;
  h.capabilities.runtimes = {"process"};
  std::error_code ec;
  h.capabilities.docker = std::filesystem::exists("/var/run/docker.sock", ec);
  if (h.capabilities.docker) h.capabilities.runtimes.push_back("container");
  h.capabilities.disk_free_bytes = DiskFree(o.data_dir);
  h.capabilities.repos = RepoNames(repos);
  return h;
}

// The node's repos.yaml (--repos); none without the flag.
Result<RepoTable> LoadRepos(const std::string& file) {
  if (file.empty()) return RepoTable{};
  return LoadReposFile(file);
}

// Waits `delay` unless asked to stop.
void Sleep(milliseconds delay) {
  auto until = std::chrono::steady_clock::now() + delay;
  while (!g_stop && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(milliseconds(50));
}

enum class Outcome { kNotWelcomed, kWelcomed, kRefused };

// Whether the control plane closed with a refusal that retrying cannot heal: 4003 (the name is
// reserved or enrolled with another token), 4004 (the token was revoked or expired).
bool IsRefusal(const std::string& why) {
  return why.find("connection: 4003") != std::string::npos ||
         why.find("connection: 4004") != std::string::npos;
}

// One connection, from hello to its end.
Outcome Converse(net::WsClient& ws, NodeClient& client, const std::string& token) {
  // A frame that cannot be queued ends the connection: the executor keeps it in its outbox
  // and sends it again after the reconnect (a half-working link would strand ops).
  auto send = [&ws](const std::string& text) {
    if (ws.SendText(text)) return true;
    ws.Close(1008, "send queue full");
    return false;
  };
  if (!ws.SendText(client.Hello())) return Outcome::kNotWelcomed;
  auto last_heard = std::chrono::steady_clock::now();
  bool welcomed = false;
  while (!g_stop) {
    auto text = ws.Receive(milliseconds(100));
    auto now = std::chrono::steady_clock::now();
    if (text.ok()) {
      last_heard = now;
      if (auto s = client.OnText(*text, send); !s.ok()) {
        spdlog::error("control plane: {}", s.message());
        ws.Close(s.code() == Code::kConflict ? 4000 : 1002, s.message());
        break;
      }
      if (client.welcomed() && !welcomed) {
        welcomed = true;
        spdlog::info("connected as node {}", client.node_id());
      }
    } else if (text.status().code() != Code::kTimeout) {
      if (IsRefusal(text.status().message())) {
        std::cerr << "error: the control plane refused this agent: "
                  << git::RedactSecrets(text.status().message(), {token}) << "\n";
        client.Disconnected();
        return Outcome::kRefused;
      }
      spdlog::warn("connection lost: {}", text.status().message());
      break;
    }
    if (client.welcomed() && now - last_heard > client.silence()) {
      spdlog::warn("the control plane has been silent for {} ms; reconnecting",
                   client.silence().count());
      ws.Close(4002, "no heartbeat");
      break;
    }
    if (auto beat = client.Heartbeat(now)) ws.SendText(*beat);
  }
  client.Disconnected();
  return welcomed ? Outcome::kWelcomed : Outcome::kNotWelcomed;
}

// Jittered exponential backoff between connection attempts: 0.5 s doubling to 30 s, each
// wait drawn uniformly from [d/2, d] so that many agents do not redial in step.
class Backoff {
 public:
  milliseconds Next() {
    auto d = current_;
    current_ = std::min(current_ * 2, milliseconds(30000));
    std::uniform_int_distribution<long long> pick(d.count() / 2, d.count());
    return milliseconds(pick(rng_));
  }
  void Reset() { current_ = milliseconds(500); }

 private:
  milliseconds current_{500};
  std::mt19937_64 rng_{std::random_device{}()};
};

int Loop(const AgentOptions& o, NodeClient& client) {
  net::WsClientOptions wo;
  wo.url = o.server;
  wo.headers = {{"Authorization", "Bearer " + o.token}};
  wo.ca_file = o.ca_file;
  wo.idle_timeout = milliseconds(20000);
  // Above the executor's outbox bound (output beyond it is counted, not queued), so that the
  // send queue never refuses a frame the outbox admitted.
  wo.max_queued_bytes = 96u << 20;
  Backoff backoff;
  while (!g_stop) {
    auto ws = net::WsClient::Connect(wo);
    if (!ws.ok()) {
      if (ws.status().code() == Code::kUnauthorized || ws.status().code() == Code::kInvalid) {
        std::cerr << "error: the control plane refused this agent: "
                  << git::RedactSecrets(ws.status().message(), {o.token}) << "\n";
        return 2;
      }
      auto wait = backoff.Next();
      spdlog::warn("cannot reach the control plane ({}); retrying in {} ms",
                   git::RedactSecrets(ws.status().message(), {o.token}), wait.count());
      Sleep(wait);
      continue;
    }
    auto outcome = Converse(**ws, client, o.token);
    if (outcome == Outcome::kRefused) return 2;
    if (outcome == Outcome::kWelcomed) backoff.Reset();
    if (!g_stop) Sleep(backoff.Next());
  }
  return 0;
}

}  // namespace

int RunAgent(const AgentOptions& options) {
  AgentOptions o = options;
  if (o.token.empty()) {
    if (const char* t = std::getenv("SLIPWAY_AGENT_TOKEN")) o.token = t;
  }
  unsetenv("SLIPWAY_AGENT_TOKEN");  // no child (git, steps, instances) inherits it
  obs::InitLogging(o.log_level, false,
                   [&o](std::string_view text) { return git::RedactSecrets(text, {o.token}); });
  auto labels = SplitLabels(o.labels);
  if (auto s = ValidateOptions(o, labels); !s.ok()) return Usage(s.message());
  auto repos = LoadRepos(o.repos);
  if (!repos.ok()) return Usage(repos.status().message());
  umask(077);
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  if (ec || chmod(o.data_dir.c_str(), 0700) != 0)
    return Usage("cannot create data directory " + o.data_dir);
  o.data_dir = std::filesystem::canonical(o.data_dir, ec).string();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);

  auto worker = MakeLocalAgent(o.data_dir, o.data_dir + "/askpass.sh", *repos);
  ExecutorOptions eo;
  eo.root = o.data_dir;
  eo.term_file = o.data_dir + "/term";
  eo.max_outbox_bytes = 64u << 20;
  eo.outbox_dir = o.data_dir + "/outbox";  // unacked events and results outlive a restart
  OpExecutor executor(*worker, eo);
  NodeClient client(executor, MakeHello(o, labels, *repos));
  spdlog::info("agent {} starting: data {}, control plane {}", o.name, o.data_dir, o.server);
  int code = Loop(o, client);
  spdlog::info("agent {} stopping", o.name);
  return code;
}

}  // namespace slipway
