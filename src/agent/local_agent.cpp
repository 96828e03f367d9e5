#include <dirent.h>
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "agent/agent.h"
#include "agent/wire.h"
#include "docker/client.h"
#include "git/git.h"
#include "net/http_client.h"

namespace slipway {
namespace {

// Listing the branches of a repository on another host: well under the op's deadline.
constexpr std::chrono::seconds kListBranchesTimeout{30};

class LocalAgent final : public Agent {
 public:
  LocalAgent(std::string root, std::string askpass, RepoTable repos)
      : root_(std::move(root)), askpass_(std::move(askpass)), repos_(std::move(repos)) {}

  std::string name() const override { return "local"; }

  Status Fetch(const std::string& repo_url, const std::string& cache_dir,
               const std::atomic<bool>* cancel, const os::LineSink& sink) override {
    git::Remote remote = git::ParseRemote(repo_url);
    if (!remote.username.empty()) {
      if (auto s = git::WriteAskpass(askpass_); !s.ok()) return s;
    }
    git::FetchOptions options;
    options.cache_dir = cache_dir;
    options.askpass_path = askpass_;
    options.cancel = cancel;
    return git::Fetch(remote, options, sink);
  }

  Result<std::string> Resolve(const std::string& cache_dir, const std::string& ref) override {
    return git::Resolve(cache_dir, ref);
  }

  Status CheckCredentials(const std::string& repo_url, const std::string& username,
                          const std::string& password) override {
    return git::CheckCredentials(repo_url, username, password, askpass_, std::chrono::seconds(20));
  }

  Status Export(const std::string& cache_dir, const std::string& commit, const std::string& dest,
                const os::LineSink& sink) override {
    std::error_code ec;  // a leftover of an interrupted export is replaced
    std::filesystem::remove_all(dest, ec);
    std::filesystem::create_directories(std::filesystem::path(dest).parent_path(), ec);
    return git::Export(cache_dir, commit, dest, sink);
  }

  Result<os::RunResult> RunStep(const StepRequest& step, const os::LineSink& sink) override {
    os::CommandSpec spec;
    spec.argv = {"/bin/sh", "-c", step.command};
    spec.cwd = step.cwd;
    spec.env = step.env;
    spec.env[kHomeMarker] = root_;
    return os::Run(spec, sink, {step.timeout, step.cancel});
  }

  Status PrepareImage(const ImageRequest& r, const os::LineSink& sink) override {
    auto client = docker::Client::Connect();
    if (!client.ok()) return client.status();
    auto lines = [&sink](const std::string& l) { sink(os::OutputStream::kStdout, l); };
    if (!r.dockerfile.empty()) return client->BuildImage(r.release_dir, r.dockerfile, r.tag, lines);
    std::string source = r.image;
    if (!r.image_tar.empty()) {
      auto loaded = client->LoadImage(r.release_dir + "/" + r.image_tar, lines);
      if (!loaded.ok()) return loaded.status();
      source = *loaded;
    } else if (!client->ImageExists(source)) {
      return NotFound("image '" + source +
                      "' is not on this node (no registry is assumed: ship it as image_tar)");
    }
    auto colon = r.tag.rfind(':');
    return client->TagImage(source, r.tag.substr(0, colon), r.tag.substr(colon + 1));
  }

  Status RemoveImage(const std::string& tag) override {
    auto client = docker::Client::Connect();
    return client.ok() ? client->RemoveImage(tag) : client.status();
  }

  Result<std::string> DeployService(const ServiceSpec& spec) override {
    ServiceSpec marked = spec;
    marked.labels["slipway.home"] = root_;
    return swarm_.Deploy(marked);
  }
  Result<ServiceView> InspectService(const std::string& service) override {
    return swarm_.Inspect(service);
  }
  Result<std::vector<TaskView>> ServiceTasks(const std::string& service) override {
    return swarm_.Tasks(service);
  }
  bool TaskHealthy(const std::string& container_id) override {
    return swarm_.Healthy(container_id);
  }
  Status RollbackService(const std::string& service) override { return swarm_.Rollback(service); }

  Result<int> AllocatePort() override { return slipway::AllocatePort(); }
  // Only host processes carry the home marker: container processes show up in the host's
  // /proc too, where the marker would get them reaped; containers carry the label instead.
  Result<InstanceHandle> StartInstance(const InstanceSpec& spec) override {
    InstanceSpec marked = spec;
    if (marked.runtime == "container")
      marked.container.labels["slipway.home"] = root_;
    else
      marked.env[kHomeMarker] = root_;
    std::error_code ec;
    if (!marked.log_path.empty())
      std::filesystem::create_directories(std::filesystem::path(marked.log_path).parent_path(), ec);
    return For(marked.runtime).Start(marked);
  }
  bool IsRunning(const InstanceHandle& h) override {
    if (h.runtime == "swarm") return swarm_.Inspect(h.container_id).ok();
    return For(h).IsRunning(h);
  }
  long long MemoryBytes(const InstanceHandle& h) override {
    return h.runtime == "swarm" ? 0 : For(h).MemoryBytes(h);
  }
  void StopInstance(const InstanceHandle& h, std::chrono::milliseconds grace) override {
    if (h.runtime == "swarm") {
      (void)swarm_.Remove(h.container_id);
      return;
    }
    For(h).Stop(h, grace);
  }

  std::vector<std::string> RecentOutput(const InstanceHandle& h, const std::string& log_path,
                                        int lines) override {
    std::vector<std::string> out;
    if (!h.container_id.empty()) {
      auto client = docker::Client::Connect();
      if (!client.ok()) return out;
      auto logs = client->Logs(h.container_id, lines);
      return logs.ok() ? *logs : out;
    }
    std::ifstream in(log_path);
    for (std::string line; std::getline(in, line);) {
      out.push_back(line);
      if (static_cast<int>(out.size()) > lines) out.erase(out.begin());
    }
    return out;
  }

  Result<int> ReapStrays(const std::vector<int>& keep_pids,
                         const std::vector<std::string>& keep_containers) override {
    int reaped = ReapProcesses(std::set<int>(keep_pids.begin(), keep_pids.end()));
    auto client = docker::Client::Connect();
    if (!client.ok()) return reaped;  // no Docker on this node: no containers to reap
    auto list = client->ListContainers("slipway.home=" + root_);
    if (!list.ok()) return reaped;
    std::set<std::string> keep(keep_containers.begin(), keep_containers.end());
    for (const auto& c : *list) {
      if (keep.count(c.id)) continue;
      spdlog::warn("removing orphan container {}", c.id.substr(0, 12));
      containers_.Stop({0, 0, 0, c.id, "container"}, std::chrono::seconds(5));
      ++reaped;
    }
    return reaped;
  }

  Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes) override {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) return NotFound(std::filesystem::path(path).filename().string() + ": not found");
    if (size > max_bytes)
      return Status(Code::kTooLarge, std::filesystem::path(path).filename().string() +
                                         " is larger than " + std::to_string(max_bytes) + " bytes");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in && !in.eof()) return Unavailable("cannot read " + path);
    return text.str();
  }

  Status MovePath(const std::string& from, const std::string& to) override {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(to).parent_path(), ec);
    std::filesystem::remove_all(to, ec);
    std::filesystem::rename(from, to, ec);
    if (ec) return Unavailable("cannot move " + from + " to " + to + ": " + ec.message());
    return Status::Ok();
  }

  Status WriteFile(const std::string& path, const std::string& content, int mode) override {
    if (content.size() > kMaxWriteFileBytes)
      return Invalid(fmt::format("{}: {} bytes is over the {} byte limit of a written file",
                                 std::filesystem::path(path).filename().string(), content.size(),
                                 kMaxWriteFileBytes));
    if (mode < 0 || mode > 0777) return Invalid(fmt::format("file mode {:o} is not 0..0777", mode));
    // Only under the data directory, as on the wire (agent/wire.h): the same check twice.
    auto rel = wire::ToWire(root_, path);
    if (!rel.ok() || rel->empty() || !wire::FromWire(root_, *rel).ok())
      return Invalid("path is outside the data directory");
    return WriteAtomically(path, content, mode);
  }

  Status RemovePath(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return Unavailable("cannot remove " + path + ": " + ec.message());
    return Status::Ok();
  }

  Result<bool> PathExists(const std::string& path) override {
    std::error_code ec;
    return std::filesystem::exists(path, ec);
  }

  Result<std::vector<RepoView>> ListRepos() override {
    std::vector<RepoView> out;
    for (const auto& e : repos_) out.push_back({e.name, ToString(e.kind), e.Redacted()});
    return out;
  }

  // A URL's own credentials win over the caller's, as an app repo's do over a git login.
  Result<git::BranchList> ListBranches(const std::string& repo, const std::string& username,
                                       const std::string& password) override {
    auto it = std::find_if(repos_.begin(), repos_.end(),
                           [&repo](const RepoEntry& e) { return e.name == repo; });
    if (it == repos_.end()) return NotFound("no repository named '" + repo + "' on this node");
    git::Remote remote{it->location, "", ""};
    git::Remote own = git::ParseRemote(it->location);
    bool has_own = !own.username.empty() || !own.password.empty();
    if (it->kind == RepoKind::kUrl && !has_own) {
      remote.username = username;
      remote.password = password;
    }
    return git::ListBranches(remote, askpass_, kListBranchesTimeout);
  }

  ProbeResult Probe(int port, const std::string& path, std::chrono::milliseconds timeout) override {
    net::Endpoint ep;
    ep.port = port;
    net::ClientRequest req;
    req.target = path;
    req.timeout = timeout;
    req.max_body = 1 << 20;
    auto started = std::chrono::steady_clock::now();
    auto res = net::HttpCall(ep, req);
    ProbeResult out;
    out.latency = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    if (!res.ok()) {
      out.error = res.status().message();
      return out;
    }
    out.status = res->status;
    return out;
  }

 private:
  Runtime& For(const std::string& runtime) {
    return runtime == "container" ? static_cast<Runtime&>(containers_) : processes_;
  }
  Runtime& For(const InstanceHandle& h) {
    return h.container_id.empty() ? static_cast<Runtime&>(processes_) : containers_;
  }

  // The parent is created, then resolved: a directory that is a symlink out of the data
  // directory (a release comes from a repository) is refused rather than written through.
  Status WriteAtomically(const std::string& path, const std::string& content, int mode) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path root = fs::canonical(root_, ec);
    if (ec) return Unavailable("data directory " + root_ + ": " + ec.message());
    auto inside = [&root](const fs::path& p) {
      return p == root || wire::ToWire(root.string(), p.string()).ok();
    };
    fs::path parent = fs::path(path).parent_path();
    if (fs::path known = fs::weakly_canonical(parent, ec); ec || !inside(known))
      return Invalid("path is outside the data directory");
    fs::create_directories(parent, ec);
    if (ec) return Unavailable("cannot create " + parent.string() + ": " + ec.message());
    fs::path real = fs::canonical(parent, ec);
    if (ec || !inside(real)) return Invalid("path is outside the data directory");
    std::string name = fs::path(path).filename().string();
    if (name.empty() || name == "." || name == "..") return Invalid(path + " is not a file name");
    std::string tmp = (real / ("." + name + ".tmp-XXXXXX")).string();
    int fd = mkstemp(tmp.data());
    if (fd < 0) return Unavailable("cannot create a file in " + parent.string() + ": " + Errno());
    bool ok = fchmod(fd, static_cast<mode_t>(mode)) == 0 && WriteAll(fd, content) && fsync(fd) == 0;
    std::string why = ok ? "" : Errno();
    if (close(fd) != 0 && ok) ok = false, why = Errno();
    if (ok && rename(tmp.c_str(), (real / name).c_str()) != 0) ok = false, why = Errno();
    if (ok) return Status::Ok();
    unlink(tmp.c_str());
    return Unavailable("cannot write " + path + ": " + why);
  }

  static bool WriteAll(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  static std::string Errno() { return std::strerror(errno); }

  // Kills processes carrying this node's marker whose pid or group is not kept.
  int ReapProcesses(const std::set<int>& keep) {
    const std::string marker = std::string(kHomeMarker) + "=" + root_;
    DIR* dir = opendir("/proc");
    if (!dir) return 0;
    int reaped = 0;
    while (dirent* e = readdir(dir)) {
      int pid = std::atoi(e->d_name);
      if (pid <= 0 || pid == getpid() || !HasMarker(pid, marker)) continue;
      // A kept instance's children share its marker; keep its whole group.
      pid_t pgid = getpgid(pid);
      if (keep.count(pid) || keep.count(pgid)) continue;
      spdlog::warn("reaping stray process {} left by an earlier run", pid);
      kill(pid, SIGKILL);
      ++reaped;
    }
    closedir(dir);
    return reaped;
  }

  static bool HasMarker(int pid, const std::string& marker) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
    std::string var;
    while (std::getline(in, var, '\0')) {
      if (var == marker) return true;
    }
    return false;
  }

  std::string root_;
  std::string askpass_;
  RepoTable repos_;  // fixed at start: read without a lock
  ProcessRuntime processes_;
  ContainerRuntime containers_;
  SwarmRuntime swarm_;
};

}  // namespace

std::unique_ptr<Agent> MakeLocalAgent(std::string data_dir, std::string askpass_path,
                                      RepoTable repos) {
  return std::make_unique<LocalAgent>(std::move(data_dir), std::move(askpass_path),
                                      std::move(repos));
}

}  // namespace slipway
