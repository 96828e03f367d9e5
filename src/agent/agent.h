#pragma once
// What the control plane asks of a node. The control plane never runs git, a build or an
// instance itself: it calls an Agent. LocalAgent executes in-process (the single-machine
// default); a remote agent carries the same calls over a WebSocket transport, so both paths
// share the pipeline code above this interface.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "git/git.h"
#include "manifest/repos_file.h"
#include "os/process.h"
#include "runtime/runtime.h"
#include "runtime/swarm_runtime.h"

namespace slipway {

struct StepRequest {
  std::string command;  // run with /bin/sh -c
  std::string cwd;
  std::map<std::string, std::string> env;
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
  const std::atomic<bool>* cancel = nullptr;
};

struct ProbeResult {
  int status = 0;  // HTTP status, 0 when no response
  std::chrono::microseconds latency{0};
  std::string error;  // why there was no response
  bool healthy() const { return status >= 200 && status < 300; }
};

// Where a container release's image comes from; it is tagged `tag` on the node.
struct ImageRequest {
  std::string release_dir;  // build context and base for image_tar
  std::string dockerfile;   // relative to release_dir
  std::string image_tar;    // relative to release_dir
  std::string image;        // already on the node
  std::string tag;          // "slipway/<app>:<n>-<sha7>"
};

// A repository of the node's repos.yaml, as it may be shown to anyone who can read.
struct RepoView {
  std::string name;
  std::string kind;      // "path" | "url"
  std::string location;  // RepoEntry::Redacted(): never a credential
};

class Agent {
 public:
  virtual ~Agent() = default;
  virtual std::string name() const = 0;

  // Brings the node's mirror of `repo_url` (credentials allowed in the URL) up to date.
  virtual Status Fetch(const std::string& repo_url, const std::string& cache_dir,
                       const std::atomic<bool>* cancel, const os::LineSink& sink) = 0;
  virtual Result<std::string> Resolve(const std::string& cache_dir, const std::string& ref) = 0;
  // Whether `username`/`password` may read `repo_url` (git ls-remote on the node). Ok,
  // kUnauthorized for wrong credentials, kUnavailable/kTimeout when the server cannot say.
  // The password is used for this one call and never kept, logged or echoed.
  virtual Status CheckCredentials(const std::string& repo_url, const std::string& username,
                                  const std::string& password) = 0;
  virtual Status Export(const std::string& cache_dir, const std::string& commit,
                        const std::string& dest, const os::LineSink& sink) = 0;
  virtual Result<os::RunResult> RunStep(const StepRequest& step, const os::LineSink& sink) = 0;

  // Builds, loads or tags the image of a container release. Output lines go to `sink`.
  virtual Status PrepareImage(const ImageRequest& request, const os::LineSink& sink) = 0;
  virtual Status RemoveImage(const std::string& tag) = 0;

  // Swarm services (see runtime/swarm_runtime.h).
  virtual Result<std::string> DeployService(const ServiceSpec& spec) = 0;
  virtual Result<ServiceView> InspectService(const std::string& service) = 0;
  virtual Result<std::vector<TaskView>> ServiceTasks(const std::string& service) = 0;
  virtual bool TaskHealthy(const std::string& container_id) = 0;
  virtual Status RollbackService(const std::string& service) = 0;

  virtual Result<int> AllocatePort() = 0;
  virtual Result<InstanceHandle> StartInstance(const InstanceSpec& spec) = 0;
  virtual bool IsRunning(const InstanceHandle& h) = 0;
  virtual long long MemoryBytes(const InstanceHandle& h) = 0;
  virtual void StopInstance(const InstanceHandle& h, std::chrono::milliseconds grace) = 0;
  // The instance's last output lines (its log file, or the container's logs).
  virtual std::vector<std::string> RecentOutput(const InstanceHandle& h,
                                                const std::string& log_path, int lines) = 0;
  // Kills the processes carrying this node's home marker (SLIPWAY_HOME=<data dir>) whose pid
  // and process group are not in `keep_pids`, and removes the containers labelled with this
  // node's home that are not in `keep_containers`: what an earlier run left behind. Returns
  // how many it removed.
  virtual Result<int> ReapStrays(const std::vector<int>& keep_pids,
                                 const std::vector<std::string>& keep_containers) = 0;
  // The node's files. Paths are under the node's data directory (see agent/wire.h).
  // ReadFile: kNotFound when absent, kTooLarge over `max_bytes`.
  virtual Result<std::string> ReadFile(const std::string& path, std::size_t max_bytes) = 0;
  // Renames `from` to `to` (same filesystem: atomic), replacing `to` and creating its parent.
  virtual Status MovePath(const std::string& from, const std::string& to) = 0;
  // Writes `content` to `path` atomically (a temporary file beside it, then a rename), with
  // permission bits `mode` (e.g. 0600; at most 0777), creating its parent directories; an
  // existing file is replaced, a reader sees the old content or the new, never a part.
  // kInvalid when the content is over kMaxWriteFileBytes, the mode is out of range or the
  // path leaves the node's data directory; kUnavailable when the disk refuses.
  virtual Status WriteFile(const std::string& path, const std::string& content, int mode) = 0;
  // Removes a file or a whole tree; an absent path is not an error.
  virtual Status RemovePath(const std::string& path) = 0;
  virtual Result<bool> PathExists(const std::string& path) = 0;

  // GET http://127.0.0.1:<port><path>, bounded by `timeout`.
  virtual ProbeResult Probe(int port, const std::string& path,
                            std::chrono::milliseconds timeout) = 0;

  // The repositories of the node's repos.yaml, by name. A node started without one has none,
  // which is what these defaults answer.
  virtual Result<std::vector<RepoView>> ListRepos() { return std::vector<RepoView>{}; }
  // The branches of the node's repository `repo` (git::ListBranches, run on the node).
  // `username`/`password` (both empty: none) are the caller's git credentials, used for a URL
  // that carries none of its own, for this one call: never kept, logged or echoed.
  // kNotFound when the node has no such repository; kUnauthorized when the git host refuses.
  virtual Result<git::BranchList> ListBranches(const std::string& repo, const std::string& username,
                                               const std::string& password) {
    (void)username;
    (void)password;
    return NotFound("node " + name() + " has no repository named '" + repo + "'");
  }
};

// The largest file Agent::WriteFile takes (4 MiB).
constexpr std::size_t kMaxWriteFileBytes = std::size_t{4} << 20;

// Environment marker put on every process an agent starts (build steps, process instances),
// with the node's data directory as value, so that a restarted agent can find and reap what
// an earlier run left behind (and only that). Containers carry the label slipway.home.
constexpr const char* kHomeMarker = "SLIPWAY_HOME";

// Runs everything on this machine. `data_dir` is the node's data directory (absolute): the
// home marker's value; `askpass_path` is where the git credential helper is written; `repos`
// is the node's repos.yaml (ListRepos, ListBranches).
std::unique_ptr<Agent> MakeLocalAgent(std::string data_dir, std::string askpass_path,
                                      RepoTable repos = {});

}  // namespace slipway
