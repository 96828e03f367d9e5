#include "docker/client.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "net/http_client.h"
#include "os/process.h"

namespace slipway::docker {
namespace {

using json = nlohmann::json;

// Our newest supported API version; the daemon's is used when it is older.
constexpr const char* kMaxApiVersion = "1.43";

bool OlderVersion(const std::string& a, const std::string& b) {
  int amaj = 0, amin = 0, bmaj = 0, bmin = 0;
  std::sscanf(a.c_str(), "%d.%d", &amaj, &amin);
  std::sscanf(b.c_str(), "%d.%d", &bmaj, &bmin);
  return amaj < bmaj || (amaj == bmaj && amin < bmin);
}

std::string EngineMessage(const net::ClientResponse& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"];
  return r.body.empty() ? "HTTP " + std::to_string(r.status) : r.body;
}

Status MapError(const net::ClientResponse& r, const std::string& what) {
  std::string msg = what + ": " + EngineMessage(r);
  if (r.status == 404) return NotFound(msg);
  if (r.status == 409) return Conflict(msg);
  if (r.status == 400) return Invalid(msg);
  if (msg.find("port is already allocated") != std::string::npos ||
      msg.find("address already in use") != std::string::npos) {
    return Conflict(what + ": port in use (" + EngineMessage(r) + ")");
  }
  return Unavailable(msg);
}

// Splits a stream of JSON messages (one per line) from /build or /images/load and passes
// their text on; returns the first error message seen.
class JsonMessages {
 public:
  explicit JsonMessages(const LineSink& sink) : sink_(sink) {}
  bool Feed(std::string_view data) {
    pending_.append(data);
    std::size_t nl;
    while ((nl = pending_.find('\n')) != std::string::npos) {
      Handle(pending_.substr(0, nl));
      pending_.erase(0, nl + 1);
    }
    return true;
  }
  void Finish() {
    if (!pending_.empty()) Handle(pending_);
    pending_.clear();
  }
  const std::string& error() const { return error_; }
  const std::vector<std::string>& streamed() const { return streamed_; }

 private:
  void Handle(const std::string& line) {
    if (line.empty()) return;
    auto j = json::parse(line, nullptr, false);
    if (!j.is_object()) return;
    if (j.contains("error") && j["error"].is_string()) {
      if (error_.empty()) error_ = j["error"];
      sink_(j["error"].get<std::string>());
      return;
    }
    std::string text;
    if (j.contains("stream") && j["stream"].is_string())
      text = j["stream"];
    else if (j.contains("status") && j["status"].is_string())
      text = j["status"];
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.empty()) return;
    streamed_.push_back(text);
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);) sink_(l);
  }
  const LineSink& sink_;
  std::string pending_;
  std::string error_;
  std::vector<std::string> streamed_;
};

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": no such file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<Client> Client::Connect() {
  Client c;
  const char* host = std::getenv("DOCKER_HOST");
  std::string url = host && *host ? host : "unix:///var/run/docker.sock";
  if (url.rfind("tcp://", 0) == 0) url = "http://" + url.substr(6);
  std::string base;
  if (!net::ParseUrl(url, c.endpoint_, base)) {
    return Invalid("DOCKER_HOST '" + url + "' is not unix:// or tcp://");
  }
  // The version is negotiated once per daemon address; a daemon that went away since is
  // reported by the call that needs it.
  static std::mutex mu;
  static std::map<std::string, std::string> negotiated;
  {
    std::lock_guard lock(mu);
    if (auto it = negotiated.find(url); it != negotiated.end()) {
      c.version_ = it->second;
      return c;
    }
  }
  net::ClientRequest req;
  req.target = "/version";
  req.timeout = std::chrono::seconds(5);
  auto res = net::HttpCall(c.endpoint_, req);
  if (!res.ok()) {
    return Unavailable("the Docker daemon is not reachable at " + c.where() +
                       " (is dockerd running?): " + res.status().message());
  }
  auto j = json::parse(res->body, nullptr, false);
  std::string server = j.is_object() ? j.value("ApiVersion", "1.41") : "1.41";
  c.version_ = OlderVersion(server, kMaxApiVersion) ? server : kMaxApiVersion;
  std::lock_guard lock(mu);
  negotiated[url] = c.version_;
  return c;
}

std::string Client::where() const {
  return endpoint_.unix_path.empty() ? fmt::format("tcp://{}:{}", endpoint_.host, endpoint_.port)
                                     : "unix://" + endpoint_.unix_path;
}

Result<json> Client::Call(const std::string& method, const std::string& path, const json& body,
                          int timeout_ms) const {
  net::ClientRequest req;
  req.method = method;
  req.target = "/v" + version_ + path;
  req.timeout = std::chrono::milliseconds(timeout_ms);
  if (!body.is_null()) {
    req.body = body.dump();
    req.headers.push_back({"Content-Type", "application/json"});
  }
  auto res = net::HttpCall(endpoint_, req);
  if (!res.ok()) {
    return Unavailable("the Docker daemon is not reachable at " + where() + ": " +
                       res.status().message());
  }
  if (res->status >= 300 && res->status != 304) return MapError(*res, method + " " + path);
  if (res->body.empty()) return json::object();
  auto j = json::parse(res->body, nullptr, false);
  return j.is_discarded() ? json(res->body) : j;
}

Status Client::Ping() const {
  return Call("GET", "/_ping").status();
}

Status Client::BuildImage(const std::string& context_dir, const std::string& dockerfile,
                          const std::string& tag, const LineSink& sink) const {
  // The build context travels as a tar of the directory.
  char tmpl[] = "/tmp/slipway-context-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return Unavailable("cannot create a temporary file for the build context");
  close(fd);
  std::string tar_path = tmpl;
  os::CommandSpec spec;
  spec.argv = {"tar", "-C", context_dir, "-cf", tar_path, "."};
  auto tar = os::Run(spec, [&](os::OutputStream, std::string_view l) { sink(std::string(l)); });
  auto context = ReadFile(tar_path);
  unlink(tar_path.c_str());
  if (!tar.ok() || tar->exit_code != 0 || !context.ok())
    return Unavailable("cannot pack the build context " + context_dir);
  net::ClientRequest req;
  req.method = "POST";
  req.target = fmt::format("/v{}/build?t={}&dockerfile={}&rm=1&forcerm=1", version_,
                           net::PercentEncode(tag), net::PercentEncode(dockerfile));
  req.body = std::move(*context);
  req.headers.push_back({"Content-Type", "application/x-tar"});
  req.timeout = std::chrono::minutes(30);
  JsonMessages messages(sink);
  auto res = net::HttpStream(endpoint_, req, [&](std::string_view d) { return messages.Feed(d); });
  messages.Finish();
  if (!res.ok())
    return Unavailable("image build interrupted: the Docker daemon is not reachable at " + where() +
                       " (" + res.status().message() + ")");
  if (res->status >= 300)
    return Invalid("image build refused: HTTP " + std::to_string(res->status));
  if (!messages.error().empty()) return Invalid("image build failed: " + messages.error());
  return Status::Ok();
}

Result<std::string> Client::LoadImage(const std::string& tar_path, const LineSink& sink) const {
  auto tar = ReadFile(tar_path);
  if (!tar.ok()) return tar.status();
  net::ClientRequest req;
  req.method = "POST";
  req.target = "/v" + version_ + "/images/load";
  req.body = std::move(*tar);
  req.headers.push_back({"Content-Type", "application/x-tar"});
  req.timeout = std::chrono::minutes(10);
  JsonMessages messages(sink);
  auto res = net::HttpStream(endpoint_, req, [&](std::string_view d) { return messages.Feed(d); });
  messages.Finish();
  if (!res.ok())
    return Unavailable("image load interrupted: the Docker daemon is not reachable at " + where() +
                       " (" + res.status().message() + ")");
  if (res->status >= 300)
    return Invalid("image load refused (HTTP " + std::to_string(res->status) + "): is " + tar_path +
                   " a docker save tarball?");
  if (!messages.error().empty()) return Invalid("image load failed: " + messages.error());
  for (const auto& text : messages.streamed()) {
    for (const char* prefix : {"Loaded image: ", "Loaded image ID: "}) {
      auto pos = text.find(prefix);
      if (pos != std::string::npos) {
        std::string ref = text.substr(pos + std::string(prefix).size());
        ref = ref.substr(0, ref.find('\n'));
        return ref;
      }
    }
  }
  return Invalid("image load reported no image: is " + tar_path + " a docker save tarball?");
}

Status Client::TagImage(const std::string& image, const std::string& repo,
                        const std::string& tag) const {
  return Call("POST", fmt::format("/images/{}/tag?repo={}&tag={}", net::PercentEncode(image),
                                  net::PercentEncode(repo), net::PercentEncode(tag)))
      .status();
}

Status Client::RemoveImage(const std::string& image) const {
  return Call("DELETE", "/images/" + net::PercentEncode(image) + "?force=1").status();
}

bool Client::ImageExists(const std::string& image) const {
  return Call("GET", "/images/" + net::PercentEncode(image) + "/json").ok();
}

Result<std::string> Client::CreateContainer(const std::string& name, const json& config) const {
  auto r = Call("POST", "/containers/create?name=" + net::PercentEncode(name), config);
  if (!r.ok()) return r.status();
  return (*r).value("Id", "");
}

Status Client::StartContainer(const std::string& id) const {
  return Call("POST", "/containers/" + id + "/start").status();
}

Status Client::StopContainer(const std::string& id, int grace_seconds) const {
  return Call("POST", fmt::format("/containers/{}/stop?t={}", id, grace_seconds), nullptr,
              (grace_seconds + 30) * 1000)
      .status();
}

Status Client::RemoveContainer(const std::string& id) const {
  return Call("DELETE", "/containers/" + id + "?force=1&v=1").status();
}

Result<ContainerState> Client::InspectContainer(const std::string& id) const {
  auto r = Call("GET", "/containers/" + id + "/json");
  if (!r.ok()) return r.status();
  ContainerState s;
  s.id = (*r).value("Id", id);
  const auto& st = (*r)["State"];
  s.running = st.value("Running", false);
  s.restarting = st.value("Restarting", false);
  s.exit_code = st.value("ExitCode", 0);
  s.status = st.value("Status", "");
  const json& config = (*r)["Config"];
  if (config.is_object() && config.contains("Labels") && config.at("Labels").is_object())
    s.labels = config.at("Labels").get<std::map<std::string, std::string>>();
  return s;
}

Status Client::EnsureNetwork(const std::string& name,
                             const std::map<std::string, std::string>& labels) const {
  // CheckDuplicate: without it the Engine makes a second network of the same name.
  json body = {{"Name", name}, {"Driver", "bridge"}, {"CheckDuplicate", true}, {"Labels", labels}};
  auto r = Call("POST", "/networks/create", body);
  if (r.ok() || r.status().code() == Code::kConflict) return Status::Ok();
  if (r.status().message().find("already exists") != std::string::npos) return Status::Ok();
  return r.status();
}

Status Client::RemoveNetwork(const std::string& name) const {
  auto r = Call("DELETE", "/networks/" + net::PercentEncode(name));
  if (r.ok() || r.status().code() == Code::kNotFound) return r.status();
  if (r.status().message().find("active endpoints") != std::string::npos)
    return Conflict(r.status().message());
  return r.status();
}

Result<long long> Client::MemoryUsage(const std::string& id) const {
  auto r = Call("GET", "/containers/" + id + "/stats?stream=false");
  if (!r.ok()) return r.status();
  const auto& mem = (*r)["memory_stats"];
  if (!mem.is_object()) return 0LL;
  long long usage = mem.value("usage", 0LL);
  // cgroup v1 counts page cache in usage; what the app holds is usage minus cache.
  if (mem.contains("stats") && mem["stats"].is_object()) {
    usage -= mem["stats"].value("total_inactive_file", mem["stats"].value("inactive_file", 0LL));
  }
  return usage;
}

Result<std::vector<ContainerSummary>> Client::ListContainers(const std::string& label) const {
  json filters = {{"label", {label}}};
  auto r = Call("GET", "/containers/json?all=1&filters=" + net::PercentEncode(filters.dump()));
  if (!r.ok()) return r.status();
  std::vector<ContainerSummary> out;
  for (const auto& c : *r) {
    ContainerSummary s;
    s.id = c.value("Id", "");
    s.names = c.value("Names", std::vector<std::string>{});
    s.labels = c.value("Labels", std::map<std::string, std::string>{});
    s.state = c.value("State", "");
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::string> DemuxLogs(const std::string& raw) {
  std::string text;
  std::size_t i = 0;
  bool framed =
      raw.size() >= 8 && (raw[0] == 1 || raw[0] == 2) && raw[1] == 0 && raw[2] == 0 && raw[3] == 0;
  if (!framed) {
    text = raw;
  } else {
    while (i + 8 <= raw.size()) {
      std::size_t len = (static_cast<unsigned char>(raw[i + 4]) << 24) |
                        (static_cast<unsigned char>(raw[i + 5]) << 16) |
                        (static_cast<unsigned char>(raw[i + 6]) << 8) |
                        static_cast<unsigned char>(raw[i + 7]);
      text.append(raw, i + 8, len);
      i += 8 + len;
    }
  }
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

Result<std::vector<std::string>> Client::Logs(const std::string& id, int tail) const {
  net::ClientRequest req;
  req.target = fmt::format("/v{}/containers/{}/logs?stdout=1&stderr=1&tail={}", version_, id, tail);
  req.timeout = std::chrono::seconds(10);
  auto res = net::HttpCall(endpoint_, req);
  if (!res.ok()) return Unavailable("the Docker daemon is not reachable at " + where());
  if (res->status >= 300) return MapError(*res, "logs of " + id);
  return DemuxLogs(res->body);
}

}  // namespace slipway::docker
