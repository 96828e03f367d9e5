#pragma once
// A Docker Engine API client over the unix socket (or DOCKER_HOST unix:// / tcp://), with
// no docker CLI involved. The API version is negotiated once at Connect. Engine errors come
// back as Status values with clear messages: kUnavailable (daemon down), kNotFound (no such
// image or container), kConflict (name taken, port already allocated), kInvalid (bad request).
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "net/http.h"

namespace slipway::docker {

using LineSink = std::function<void(const std::string& line)>;

struct ContainerState {
  std::string id;
  bool running = false;
  bool restarting = false;  // crashed and waiting for its restart policy
  int exit_code = 0;
  std::string status;  // created | running | exited | …
  std::map<std::string, std::string> labels;
};

struct ContainerSummary {
  std::string id;
  std::vector<std::string> names;
  std::map<std::string, std::string> labels;
  std::string state;
};

class Client {
 public:
  // Reads DOCKER_HOST (default unix:///var/run/docker.sock) and negotiates the API version.
  static Result<Client> Connect();
  const std::string& api_version() const { return version_; }
  std::string where() const;

  Status Ping() const;
  // Builds an image from a directory (sent as a tar context), streaming the build output.
  Status BuildImage(const std::string& context_dir, const std::string& dockerfile,
                    const std::string& tag, const LineSink& sink) const;
  // Loads a `docker save` tarball; returns the first image reference it contained
  // ("name:tag" or "sha256:…").
  Result<std::string> LoadImage(const std::string& tar_path, const LineSink& sink) const;
  Status TagImage(const std::string& image, const std::string& repo, const std::string& tag) const;
  Status RemoveImage(const std::string& image) const;
  bool ImageExists(const std::string& image) const;

  Result<std::string> CreateContainer(const std::string& name, const nlohmann::json& config) const;
  Status StartContainer(const std::string& id) const;
  Status StopContainer(const std::string& id, int grace_seconds) const;
  Status RemoveContainer(const std::string& id) const;
  Result<ContainerState> InspectContainer(const std::string& id) const;
  Result<long long> MemoryUsage(const std::string& id) const;
  // Containers (running or not) carrying label key=value.
  Result<std::vector<ContainerSummary>> ListContainers(const std::string& label) const;
  // Creates bridge network `name` with `labels`. Ok when it exists already, whoever made it
  // (a concurrent create that lost the race answers 409, taken as success).
  Status EnsureNetwork(const std::string& name,
                       const std::map<std::string, std::string>& labels) const;
  // Removes network `name`: kNotFound when there is none, kConflict while containers are
  // still attached to it ("has active endpoints").
  Status RemoveNetwork(const std::string& name) const;
  // The last `tail` lines of stdout and stderr, de-multiplexed.
  Result<std::vector<std::string>> Logs(const std::string& id, int tail) const;

  // Raw calls for the swarm runtime and tests.
  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const nlohmann::json& body = nullptr, int timeout_ms = 60000) const;

 private:
  net::Endpoint endpoint_;
  std::string version_ = "1.41";
};

// De-multiplexes the Engine's stdout/stderr stream framing (8-byte headers) into lines.
std::vector<std::string> DemuxLogs(const std::string& raw);

}  // namespace slipway::docker
