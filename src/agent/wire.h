#pragma once
// How the Agent's calls travel as protocol ops (docs/PROTOCOL.md, "Op kinds"): JSON forms of
// the structs they carry, and the mapping between a control plane's paths and a node's.
//
// Paths on the wire are relative to the node's data directory. The control plane names node
// paths as if the node's data directory were its own (Paths in control/context.h); the
// sending side strips that root (ToWire), the node resolves against its own root (FromWire),
// refusing anything that would escape it. The local agent shares the control plane's root,
// so the round trip is the identity there.
//
// Conversions from JSON throw nlohmann::json::exception on a mistyped member; callers decode
// inside their catch-all boundary and answer "invalid args".
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent.h"

namespace slipway {

void to_json(nlohmann::json& j, const ContainerSpec& v);
void from_json(const nlohmann::json& j, ContainerSpec& v);
void to_json(nlohmann::json& j, const InstanceSpec& v);
void from_json(const nlohmann::json& j, InstanceSpec& v);
void to_json(nlohmann::json& j, const InstanceHandle& v);
void from_json(const nlohmann::json& j, InstanceHandle& v);
void to_json(nlohmann::json& j, const ServiceSpec& v);
void from_json(const nlohmann::json& j, ServiceSpec& v);
void to_json(nlohmann::json& j, const ServiceView& v);
void from_json(const nlohmann::json& j, ServiceView& v);
void to_json(nlohmann::json& j, const TaskView& v);
void from_json(const nlohmann::json& j, TaskView& v);
void to_json(nlohmann::json& j, const ImageRequest& v);
void from_json(const nlohmann::json& j, ImageRequest& v);
void to_json(nlohmann::json& j, const ProbeResult& v);
void from_json(const nlohmann::json& j, ProbeResult& v);
void to_json(nlohmann::json& j, const RepoView& v);
void from_json(const nlohmann::json& j, RepoView& v);

namespace os {
void to_json(nlohmann::json& j, const RunResult& v);
void from_json(const nlohmann::json& j, RunResult& v);
}  // namespace os

namespace wire {

// `path` (under `root`) as the node-relative form sent on the wire. kInvalid when it is not
// under `root`.
Result<std::string> ToWire(const std::string& root, const std::string& path);
// A wire path resolved under the node's `root`. kInvalid for an absolute path, an empty one,
// or one with a ".." component.
Result<std::string> FromWire(const std::string& root, const std::string& path);

// What one result value may hold, serialized: a frame is at most protocol::kMaxFrameBytes
// (1 MiB) including its envelope.
inline constexpr std::size_t kMaxListBytes = 1'000'000;

// list_repos's value: {"repos": [{name, kind, location}, …], "truncated": bool}, repos left
// out (and truncated set) past kMaxListBytes.
nlohmann::json ReposToWire(const std::vector<RepoView>& repos);
std::vector<RepoView> ReposFromWire(const nlohmann::json& value);
// list_branches's value: {"branches": [[name, commit], …], "truncated": bool}. Pairs rather
// than objects so that 10 000 branches of usual names fit in one frame; past kMaxListBytes
// the rest are left out and truncated is set (as it is when the list already was).
nlohmann::json BranchesToWire(const git::BranchList& list);
git::BranchList BranchesFromWire(const nlohmann::json& value);

// write_file: a file travels base64-encoded in `data`. One that does not fit in one frame
// goes in parts of kWritePartBytes, each op naming its `part` (0-based), `parts`, the byte
// `offset` where it starts and `upload`, an id of the whole write; the node stages the parts
// beside the target and writes the target when the last one arrives.
inline constexpr std::size_t kWritePartBytes = std::size_t{512} << 10;

struct WritePart {
  int index = 0;
  int parts = 1;
  std::size_t offset = 0;
  std::string upload;  // [A-Za-z0-9_-], 1..64 characters; "" for a single op
};

// The args of the write_file ops that carry `content` to the wire path `path`, in order.
// `upload` (used only when there are parts) must be unique to this write.
std::vector<nlohmann::json> WriteFileArgs(const std::string& path, std::string_view content,
                                          int mode, const std::string& upload);
// The part that write_file `args` carry (parts == 1 when they carry the whole file).
// kInvalid when the part members are malformed.
Result<WritePart> WritePartOf(const nlohmann::json& args);

// A Status carried in a result: the error text plus its code in value.code.
std::string CodeName(Code code);
Code CodeFromName(const std::string& name);

}  // namespace wire
}  // namespace slipway
