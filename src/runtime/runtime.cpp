#include "runtime/runtime.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <mutex>

#include "os/process.h"

namespace slipway {

Result<InstanceHandle> ProcessRuntime::Start(const InstanceSpec& spec) {
  os::CommandSpec cmd;
  cmd.argv = os::ShellCommand(spec.command);
  cmd.cwd = spec.release_dir;
  cmd.env = spec.env;
  cmd.env["PORT"] = std::to_string(spec.port);
  auto d = os::SpawnDetached(cmd, spec.log_path);
  if (!d.ok()) return d.status();
  return InstanceHandle{d->pid, d->start_ticks, spec.port};
}

bool ProcessRuntime::IsRunning(const InstanceHandle& h) {
  return os::IsAlive(h.pid, h.start_ticks);
}

long long ProcessRuntime::MemoryBytes(const InstanceHandle& h) {
  return os::GroupRssBytes(h.pid);
}

void ProcessRuntime::Stop(const InstanceHandle& h, std::chrono::milliseconds grace) {
  os::StopGroup(h.pid, h.start_ticks, grace);
}

Result<int> AllocatePort() {
  // Ports handed out recently stay reserved, so two deployments starting at once never get
  // the same one before either has bound it.
  static std::mutex mu;
  static std::deque<int> recent;
  std::lock_guard lock(mu);
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    if (port == 0) break;
    bool reused = false;
    for (int p : recent) reused = reused || p == port;
    if (reused) continue;
    recent.push_back(port);
    if (recent.size() > 256) recent.pop_front();
    return port;
  }
  return Unavailable("no free TCP port on 127.0.0.1");
}

}  // namespace slipway
