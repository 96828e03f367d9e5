#include "agent/remote_agent.h"

#include "agent/hub.h"
#include "agent/wire.h"
#include "crypto/crypto.h"
#include "git/git.h"

namespace slipway {
namespace {
using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kShort{std::chrono::minutes(2)};
constexpr milliseconds kLong{std::chrono::minutes(30)};
// Listing a node's repositories reads its table; listing branches runs git there, bounded
// (30 s) well below this.
constexpr milliseconds kListRepos{std::chrono::seconds(15)};
constexpr milliseconds kListBranches{std::chrono::minutes(1)};

class RemoteAgent final : public Agent {
 public:
  RemoteAgent(NodeHub& hub, std::string node) : hub_(hub), node_(std::move(node)) {}

  std::string name() const override { return node_; }

  Status Fetch(const std::string& repo_url, const std::string& cache_dir,
               const std::atomic<bool>* cancel, const os::LineSink& sink) override {
    git::Remote remote = git::ParseRemote(repo_url);
    json args = {{"url", remote.url}};
    if (!Path(args, "cache", cache_dir)) return BadPath();
    if (!remote.username.empty() || !remote.password.empty())
      args["credentials"] = {{"username", remote.username}, {"password", remote.password}};
    return Done(Call("fetch", std::move(args), kLong, sink, cancel));
  }

  Result<std::string> Resolve(const std::string& cache_dir, const std::string& ref) override {
    json args = {{"ref", ref}};
    if (!Path(args, "cache", cache_dir)) return BadPath();
    auto v = Call("resolve", std::move(args));
    if (!v.ok()) return v.status();
    return v->at("sha").get<std::string>();
  }

  Status CheckCredentials(const std::string& repo_url, const std::string& username,
                          const std::string& password) override {
    return Done(Call("check_credentials",
                     {{"url", repo_url}, {"username", username}, {"password", password}}));
  }

  Status Export(const std::string& cache_dir, const std::string& commit, const std::string& dest,
                const os::LineSink& sink) override {
    json args = {{"commit", commit}};
    if (!Path(args, "cache", cache_dir) || !Path(args, "dest", dest)) return BadPath();
    return Done(Call("export", std::move(args), kLong, sink));
  }

  Result<os::RunResult> RunStep(const StepRequest& step, const os::LineSink& sink) override {
    json args = {
        {"command", step.command}, {"env", step.env}, {"timeout_ms", step.timeout.count()}};
    if (!Path(args, "cwd", step.cwd)) return BadPath();
    // The step's own timeout ends it first; the op deadline is a backstop.
    auto v = Call("run_step", std::move(args), step.timeout + std::chrono::minutes(1), sink,
                  step.cancel);
    if (!v.ok()) {
      if (v.status().code() == Code::kCancelled) {
        os::RunResult r;
        r.cancelled = true;
        return r;
      }
      return v.status();
    }
    return v->get<os::RunResult>();
  }

  Status PrepareImage(const ImageRequest& request, const os::LineSink& sink) override {
    ImageRequest r = request;
    auto dir = wire::ToWire(hub_.root(), r.release_dir);
    if (!dir.ok()) return dir.status();
    r.release_dir = *dir;
    return Done(Call("prepare_image", {{"request", r}}, kLong, sink));
  }

  Status RemoveImage(const std::string& tag) override {
    return Done(Call("remove_image", {{"tag", tag}}));
  }

  Result<std::string> DeployService(const ServiceSpec& spec) override {
    auto v = Call("deploy_service", {{"spec", spec}});
    if (!v.ok()) return v.status();
    return v->at("id").get<std::string>();
  }
  Result<ServiceView> InspectService(const std::string& service) override {
    auto v = Call("inspect_service", {{"service", service}});
    if (!v.ok()) return v.status();
    return v->get<ServiceView>();
  }
  Result<std::vector<TaskView>> ServiceTasks(const std::string& service) override {
    auto v = Call("service_tasks", {{"service", service}});
    if (!v.ok()) return v.status();
    return v->at("tasks").get<std::vector<TaskView>>();
  }
  bool TaskHealthy(const std::string& container_id) override {
    auto v = Call("task_healthy", {{"container_id", container_id}});
    return v.ok() && v->value("healthy", false);
  }
  Status RollbackService(const std::string& service) override {
    return Done(Call("rollback_service", {{"service", service}}));
  }

  Result<int> AllocatePort() override {
    auto v = Call("allocate_port", json::object());
    if (!v.ok()) return v.status();
    return v->at("port").get<int>();
  }

  Result<InstanceHandle> StartInstance(const InstanceSpec& spec) override {
    InstanceSpec s = spec;
    auto dir = wire::ToWire(hub_.root(), s.release_dir);
    auto log = wire::ToWire(hub_.root(), s.log_path);
    if (!dir.ok() || !log.ok()) return BadPath();
    s.release_dir = *dir;
    s.log_path = *log;
    auto v = Call("start_instance", {{"spec", s}});
    if (!v.ok()) return v.status();
    return v->get<InstanceHandle>();
  }
  bool IsRunning(const InstanceHandle& h) override {
    auto v = Call("is_running", {{"handle", h}});
    return v.ok() && v->value("running", false);
  }
  long long MemoryBytes(const InstanceHandle& h) override {
    auto v = Call("memory_bytes", {{"handle", h}});
    return v.ok() ? v->value("bytes", 0LL) : 0;
  }
  void StopInstance(const InstanceHandle& h, milliseconds grace) override {
    (void)Call("stop_instance", {{"handle", h}, {"grace_ms", grace.count()}},
               grace + std::chrono::minutes(1));
  }
  std::vector<std::string> RecentOutput(const InstanceHandle& h, const std::string& log_path,
                                        int lines) override {
    json args = {{"handle", h}, {"lines", lines}};
    if (!Path(args, "log_path", log_path)) return {};
    auto v = Call("recent_output", std::move(args));
    if (!v.ok()) return {};
    return v->at("lines").get<std::vector<std::string>>();
  }
  Result<int> ReapStrays(const std::vector<int>& keep_pids,
                         const std::vector<std::string>& keep_containers) override {
    auto v = Call("reap_strays", {{"keep_pids", keep_pids}, {"keep_containers", keep_containers}});
    if (!v.ok()) return v.status();
    return v->at("reaped").get<int>();
  }

  Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes) override {
    json args = {{"max_bytes", max_bytes}};
    if (!Path(args, "path", path)) return BadPath();
    auto v = Call("read_file", std::move(args));
    if (!v.ok()) return v.status();
    return v->at("text").get<std::string>();
  }
  Status MovePath(const std::string& from, const std::string& to) override {
    json args = json::object();
    if (!Path(args, "from", from) || !Path(args, "to", to)) return BadPath();
    return Done(Call("move_path", std::move(args)));
  }
  // Checked here too, so that an oversized file never goes out in parts to be refused.
  Status WriteFile(const std::string& path, const std::string& content, int mode) override {
    if (content.size() > kMaxWriteFileBytes)
      return Invalid("a written file is at most " + std::to_string(kMaxWriteFileBytes) +
                     " bytes, not " + std::to_string(content.size()));
    auto p = wire::ToWire(hub_.root(), path);
    if (!p.ok() || p->empty()) return BadPath();
    std::string upload = crypto::RandomToken("").substr(0, 22);
    auto ops = wire::WriteFileArgs(*p, content, mode, upload);
    for (auto& args : ops) {
      Status s = Done(Call("write_file", std::move(args)));
      if (s.ok()) continue;
      if (ops.size() > 1) (void)RemovePath(path + ".upload-" + upload);
      return s;
    }
    return Status::Ok();
  }
  Status RemovePath(const std::string& path) override {
    json args = json::object();
    if (!Path(args, "path", path)) return BadPath();
    return Done(Call("remove_path", std::move(args)));
  }
  Result<bool> PathExists(const std::string& path) override {
    json args = json::object();
    if (!Path(args, "path", path)) return BadPath();
    auto v = Call("path_exists", std::move(args));
    if (!v.ok()) return v.status();
    return v->at("exists").get<bool>();
  }

  ProbeResult Probe(int port, const std::string& path, milliseconds timeout) override {
    auto v = Call("probe", {{"port", port}, {"path", path}, {"timeout_ms", timeout.count()}},
                  timeout + std::chrono::seconds(10));
    if (!v.ok()) {
      ProbeResult r;
      r.error = v.status().message();
      return r;
    }
    return v->get<ProbeResult>();
  }

  Result<std::vector<RepoView>> ListRepos() override {
    auto v = Call("list_repos", json::object(), kListRepos);
    if (!v.ok()) return v.status();
    return Decode<std::vector<RepoView>>("list_repos", [&] { return wire::ReposFromWire(*v); });
  }

  Result<git::BranchList> ListBranches(const std::string& repo, const std::string& username,
                                       const std::string& password) override {
    json args = {{"repo", repo}};
    if (!username.empty() || !password.empty())
      args["credentials"] = {{"username", username}, {"password", password}};
    auto v = Call("list_branches", std::move(args), kListBranches);
    if (!v.ok()) return v.status();
    return Decode<git::BranchList>("list_branches", [&] { return wire::BranchesFromWire(*v); });
  }

 private:
  // Decodes an ok value; a malformed one is a node bug: kInternal, never thrown.
  template <typename T, typename F>
  Result<T> Decode(const char* kind, F decode) {
    try {
      return decode();
    } catch (const std::exception& e) {
      return Internal("node " + node_ + ": malformed answer to " + kind + ": " + e.what());
    }
  }

  // A value of a malformed answer is a node bug: reported as kInternal, never thrown.
  Result<json> Call(const std::string& kind, json args, milliseconds deadline = kShort,
                    const os::LineSink& sink = nullptr, const std::atomic<bool>* cancel = nullptr) {
    OpSink events;
    if (sink) {
      events = [&sink](protocol::EventKind kind, const json& data) {
        if (kind != protocol::EventKind::kOutput || !data.is_object()) return;
        auto stream = data.value("stream", std::string("stdout")) == "stderr"
                          ? os::OutputStream::kStderr
                          : os::OutputStream::kStdout;
        sink(stream, data.value("text", std::string()));
      };
    }
    try {
      auto v = hub_.Call(node_, kind, std::move(args), deadline, events, cancel);
      if (v.ok() && !v->is_object()) return Internal("node " + node_ + ": malformed " + kind);
      return v;
    } catch (const std::exception& e) {
      return Internal("node " + node_ + ": malformed answer to " + kind + ": " + e.what());
    }
  }

  bool Path(json& args, const char* key, const std::string& path) {
    auto p = wire::ToWire(hub_.root(), path);
    if (!p.ok()) return false;
    args[key] = *p;
    return true;
  }

  static Status BadPath() { return Invalid("path is outside the data directory"); }
  static Status Done(const Result<json>& v) { return v.ok() ? Status::Ok() : v.status(); }

  NodeHub& hub_;
  std::string node_;
};

}  // namespace

std::unique_ptr<Agent> MakeRemoteAgent(NodeHub& hub, std::string node) {
  return std::make_unique<RemoteAgent>(hub, std::move(node));
}

}  // namespace slipway
