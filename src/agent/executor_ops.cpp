// The op kinds a node runs (docs/PROTOCOL.md, "Op kinds"): each decodes its args, calls the
// node's Agent and encodes what it produced.
#include <filesystem>
#include <map>

#include "agent/executor.h"
#include "agent/wire.h"
#include "core/utf8.h"
#include "crypto/crypto.h"
#include "git/git.h"
#include "net/http.h"

namespace slipway {
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t kMaxLine = 16u << 10;  // one output event's text, well under 64 KiB
constexpr std::size_t kMaxReadFile = 512u << 10;

using Handler = Result<json> (*)(Agent&, const json&, const OpContext&);

Result<std::string> PathArg(const OpContext& ctx, const json& args, const char* key) {
  return wire::FromWire(ctx.root, args.at(key).get<std::string>());
}

os::LineSink OutputSink(const OpContext& ctx, std::vector<std::string> secrets = {}) {
  return [&ctx, secrets = std::move(secrets)](os::OutputStream s, std::string_view line) {
    std::string text = secrets.empty() ? std::string(line) : git::RedactSecrets(line, secrets);
    if (text.size() > kMaxLine) text.resize(kMaxLine);
    ctx.emit(protocol::EventKind::kOutput,
             {{"stream", s == os::OutputStream::kStderr ? "stderr" : "stdout"}, {"text", text}});
  };
}

json Empty() {
  return json::object();
}

Result<json> OrEmpty(const Status& s) {
  if (!s.ok()) return s;
  return Empty();
}

// Credentials arrive beside the URL and go back into it for git's askpass, never to disk.
std::string WithCredentials(const std::string& url, const json& args) {
  if (!args.contains("credentials")) return url;
  const json& c = args.at("credentials");
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  return url.substr(0, scheme + 3) +
         net::PercentEncodeComponent(c.at("username").get<std::string>()) + ":" +
         net::PercentEncodeComponent(c.at("password").get<std::string>()) + "@" +
         url.substr(scheme + 3);
}

Result<json> Fetch(Agent& a, const json& args, const OpContext& ctx) {
  auto cache = PathArg(ctx, args, "cache");
  if (!cache.ok()) return cache.status();
  std::vector<std::string> secrets;
  if (args.contains("credentials"))
    secrets.push_back(args.at("credentials").at("password").get<std::string>());
  std::string url = WithCredentials(args.at("url").get<std::string>(), args);
  return OrEmpty(a.Fetch(url, *cache, ctx.cancel, OutputSink(ctx, std::move(secrets))));
}

Result<json> Resolve(Agent& a, const json& args, const OpContext& ctx) {
  auto cache = PathArg(ctx, args, "cache");
  if (!cache.ok()) return cache.status();
  auto sha = a.Resolve(*cache, args.at("ref").get<std::string>());
  if (!sha.ok()) return sha.status();
  return json{{"sha", *sha}};
}

Result<json> CheckCredentials(Agent& a, const json& args, const OpContext&) {
  return OrEmpty(a.CheckCredentials(args.at("url").get<std::string>(),
                                    args.at("username").get<std::string>(),
                                    args.at("password").get<std::string>()));
}

Result<json> Export(Agent& a, const json& args, const OpContext& ctx) {
  auto cache = PathArg(ctx, args, "cache");
  auto dest = PathArg(ctx, args, "dest");
  if (!cache.ok()) return cache.status();
  if (!dest.ok()) return dest.status();
  return OrEmpty(a.Export(*cache, args.at("commit").get<std::string>(), *dest, OutputSink(ctx)));
}

Result<json> RunStep(Agent& a, const json& args, const OpContext& ctx) {
  auto cwd = PathArg(ctx, args, "cwd");
  if (!cwd.ok()) return cwd.status();
  StepRequest step;
  step.command = args.at("command").get<std::string>();
  step.cwd = *cwd;
  step.env = args.value("env", std::map<std::string, std::string>{});
  step.timeout = milliseconds(args.at("timeout_ms").get<long long>());
  step.cancel = ctx.cancel;
  auto result = a.RunStep(step, OutputSink(ctx));
  if (!result.ok()) return result.status();
  return json(*result);
}

Result<json> PrepareImage(Agent& a, const json& args, const OpContext& ctx) {
  ImageRequest req = args.at("request").get<ImageRequest>();
  auto dir = wire::FromWire(ctx.root, req.release_dir);
  if (!dir.ok()) return dir.status();
  req.release_dir = *dir;
  return OrEmpty(a.PrepareImage(req, OutputSink(ctx)));
}

Result<json> RemoveImage(Agent& a, const json& args, const OpContext&) {
  return OrEmpty(a.RemoveImage(args.at("tag").get<std::string>()));
}

Result<json> DeployService(Agent& a, const json& args, const OpContext&) {
  auto id = a.DeployService(args.at("spec").get<ServiceSpec>());
  if (!id.ok()) return id.status();
  return json{{"id", *id}};
}

Result<json> InspectService(Agent& a, const json& args, const OpContext&) {
  auto view = a.InspectService(args.at("service").get<std::string>());
  if (!view.ok()) return view.status();
  return json(*view);
}

Result<json> ServiceTasks(Agent& a, const json& args, const OpContext&) {
  auto tasks = a.ServiceTasks(args.at("service").get<std::string>());
  if (!tasks.ok()) return tasks.status();
  return json{{"tasks", *tasks}};
}

Result<json> TaskHealthy(Agent& a, const json& args, const OpContext&) {
  return json{{"healthy", a.TaskHealthy(args.at("container_id").get<std::string>())}};
}

Result<json> RollbackService(Agent& a, const json& args, const OpContext&) {
  return OrEmpty(a.RollbackService(args.at("service").get<std::string>()));
}

Result<json> AllocatePort(Agent& a, const json&, const OpContext&) {
  auto port = a.AllocatePort();
  if (!port.ok()) return port.status();
  return json{{"port", *port}};
}

Result<json> StartInstance(Agent& a, const json& args, const OpContext& ctx) {
  InstanceSpec spec = args.at("spec").get<InstanceSpec>();
  auto dir = wire::FromWire(ctx.root, spec.release_dir);
  auto log = wire::FromWire(ctx.root, spec.log_path);
  if (!dir.ok()) return dir.status();
  if (!log.ok()) return log.status();
  spec.release_dir = *dir;
  spec.log_path = *log;
  auto handle = a.StartInstance(spec);
  if (!handle.ok()) return handle.status();
  return json(*handle);
}

Result<json> IsRunning(Agent& a, const json& args, const OpContext&) {
  return json{{"running", a.IsRunning(args.at("handle").get<InstanceHandle>())}};
}

Result<json> MemoryBytes(Agent& a, const json& args, const OpContext&) {
  return json{{"bytes", a.MemoryBytes(args.at("handle").get<InstanceHandle>())}};
}

Result<json> StopInstance(Agent& a, const json& args, const OpContext&) {
  a.StopInstance(args.at("handle").get<InstanceHandle>(),
                 milliseconds(args.at("grace_ms").get<long long>()));
  return Empty();
}

Result<json> RecentOutput(Agent& a, const json& args, const OpContext& ctx) {
  auto log = PathArg(ctx, args, "log_path");
  if (!log.ok()) return log.status();
  int lines = std::clamp(args.at("lines").get<int>(), 0, 200);
  auto out = a.RecentOutput(args.at("handle").get<InstanceHandle>(), *log, lines);
  for (auto& line : out)
    if (line.size() > 2048) line.resize(2048);
  return json{{"lines", out}};
}

Result<json> ReapStrays(Agent& a, const json& args, const OpContext&) {
  auto reaped = a.ReapStrays(args.at("keep_pids").get<std::vector<int>>(),
                             args.at("keep_containers").get<std::vector<std::string>>());
  if (!reaped.ok()) return reaped.status();
  return json{{"reaped", *reaped}};
}

Result<json> ReadFile(Agent& a, const json& args, const OpContext& ctx) {
  auto path = PathArg(ctx, args, "path");
  if (!path.ok()) return path.status();
  auto max = std::min<std::size_t>(args.at("max_bytes").get<std::size_t>(), kMaxReadFile);
  auto text = a.ReadFile(*path, max);
  if (!text.ok()) return text.status();
  // Frames are JSON text: a file that is not UTF-8 cannot travel unchanged.
  if (!IsUtf8(*text))
    return Invalid(std::filesystem::path(*path).filename().string() + " is not valid UTF-8 text");
  return json{{"text", *text}};
}

Result<json> MovePath(Agent& a, const json& args, const OpContext& ctx) {
  auto from = PathArg(ctx, args, "from");
  auto to = PathArg(ctx, args, "to");
  if (!from.ok()) return from.status();
  if (!to.ok()) return to.status();
  return OrEmpty(a.MovePath(*from, *to));
}

// A file travels as base64 (frames are JSON text, a file may be binary), in one op or, when
// larger than one frame holds, in parts (agent/wire.h, WriteFileArgs): the parts before the
// last one are gathered in a staging file beside the target, the last one writes the whole.
Result<json> WriteFile(Agent& a, const json& args, const OpContext& ctx) {
  auto path = PathArg(ctx, args, "path");
  if (!path.ok()) return path.status();
  if (path->empty()) return Invalid("write_file needs a path");
  std::string data;
  if (!crypto::Base64Decode(args.at("data").get<std::string>(), data))
    return Invalid("write_file: data is not base64");
  int mode = args.at("mode").get<int>();
  auto part = wire::WritePartOf(args);
  if (!part.ok()) return part.status();
  if (part->parts == 1) return OrEmpty(a.WriteFile(*path, data, mode));
  const std::string staging = *path + ".upload-" + part->upload;
  std::string whole;
  if (part->index > 0) {
    auto so_far = a.ReadFile(staging, kMaxWriteFileBytes);
    if (!so_far.ok() || so_far->size() != part->offset)
      return Invalid("write_file: part " + std::to_string(part->index) + " arrived out of order");
    whole = std::move(*so_far);
  }
  if (whole.size() + data.size() > kMaxWriteFileBytes)
    return Invalid("write_file: the parts are over the " + std::to_string(kMaxWriteFileBytes) +
                   " byte limit");
  whole += data;
  if (part->index + 1 < part->parts) return OrEmpty(a.WriteFile(staging, whole, 0600));
  Status written = a.WriteFile(*path, whole, mode);
  (void)a.RemovePath(staging);
  return OrEmpty(written);
}

Result<json> RemovePath(Agent& a, const json& args, const OpContext& ctx) {
  auto path = PathArg(ctx, args, "path");
  if (!path.ok()) return path.status();
  if (path->empty()) return Invalid("remove_path needs a path");
  return OrEmpty(a.RemovePath(*path));
}

Result<json> PathExists(Agent& a, const json& args, const OpContext& ctx) {
  auto path = PathArg(ctx, args, "path");
  if (!path.ok()) return path.status();
  auto exists = a.PathExists(*path);
  if (!exists.ok()) return exists.status();
  return json{{"exists", *exists}};
}

Result<json> Probe(Agent& a, const json& args, const OpContext&) {
  auto timeout = std::clamp<long long>(args.at("timeout_ms").get<long long>(), 1, 60000);
  return json(a.Probe(args.at("port").get<int>(), args.at("path").get<std::string>(),
                      milliseconds(timeout)));
}

Result<json> ListRepos(Agent& a, const json&, const OpContext&) {
  auto repos = a.ListRepos();
  if (!repos.ok()) return repos.status();
  return wire::ReposToWire(*repos);
}

// The caller's credentials serve this one call: they reach git's askpass environment only,
// and git's messages come back with them redacted (git::ListBranches).
Result<json> ListBranches(Agent& a, const json& args, const OpContext&) {
  std::string username, password;
  if (args.contains("credentials")) {
    username = args.at("credentials").at("username").get<std::string>();
    password = args.at("credentials").at("password").get<std::string>();
  }
  auto branches = a.ListBranches(args.at("repo").get<std::string>(), username, password);
  if (!branches.ok()) return branches.status();
  return wire::BranchesToWire(*branches);
}

const std::map<std::string, Handler>& Handlers() {
  static const std::map<std::string, Handler> kHandlers = {
      {"fetch", Fetch},
      {"resolve", Resolve},
      {"check_credentials", CheckCredentials},
      {"export", Export},
      {"run_step", RunStep},
      {"prepare_image", PrepareImage},
      {"remove_image", RemoveImage},
      {"deploy_service", DeployService},
      {"inspect_service", InspectService},
      {"service_tasks", ServiceTasks},
      {"task_healthy", TaskHealthy},
      {"rollback_service", RollbackService},
      {"allocate_port", AllocatePort},
      {"start_instance", StartInstance},
      {"is_running", IsRunning},
      {"memory_bytes", MemoryBytes},
      {"stop_instance", StopInstance},
      {"recent_output", RecentOutput},
      {"reap_strays", ReapStrays},
      {"read_file", ReadFile},
      {"move_path", MovePath},
      {"write_file", WriteFile},
      {"remove_path", RemovePath},
      {"path_exists", PathExists},
      {"probe", Probe},
      {"list_repos", ListRepos},
      {"list_branches", ListBranches},
  };
  return kHandlers;
}

}  // namespace

Result<json> RunOpKind(Agent& worker, const std::string& kind, const json& args,
                       const OpContext& ctx) {
  auto it = Handlers().find(kind);
  if (it == Handlers().end()) return Invalid("unknown op kind");
  return it->second(worker, args, ctx);
}

}  // namespace slipway
