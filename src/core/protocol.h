#pragma once
// The agent protocol, version 1 (docs/PROTOCOL.md): the frames a control plane and an agent
// exchange as JSON text over WebSocket, and a pure codec for them. No I/O, no clocks, no
// logging: Encode turns a struct into text, Decode turns untrusted text into a struct or a
// Status, validating every limit the protocol document states.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace slipway::protocol {

inline constexpr std::uint64_t kVersion = 1;
inline constexpr std::size_t kMaxFrameBytes = std::size_t{1} << 20;       // whole frame
inline constexpr std::size_t kMaxEventDataBytes = std::size_t{64} << 10;  // event.data, as JSON
inline constexpr std::size_t kMaxLabels = 32;
inline constexpr std::size_t kMaxLabelChars = 64;
inline constexpr std::size_t kMaxIdChars = 64;      // op ids, node names, op kinds
inline constexpr std::size_t kMaxListedOps = 4096;  // heartbeat.running, hello.last_seq
inline constexpr std::size_t kMaxRepos = 256;       // hello.capabilities.repos
// args, value and data: a scalar has depth 0, an object or array 1 + its deepest member.
inline constexpr int kMaxNestingDepth = 16;

// Capabilities an agent announces in its hello.
struct Capabilities {
  std::vector<std::string> runtimes;
  bool docker = false;
  std::uint64_t disk_free_bytes = 0;
  std::vector<std::string> repos;
  bool operator==(const Capabilities&) const = default;
};

// agent -> cp, first frame after the upgrade.
struct Hello {
  std::string node;  // node name, 1..64 chars of [A-Za-z0-9._-]
  std::string agent_version;
  std::vector<std::string> labels;  // <= 32, each 1..64 chars
  Capabilities capabilities;
  std::map<std::string, std::uint64_t> last_seq;  // op_id -> highest seq still buffered (>= 1)
  // Optional: where the gateway reaches this node's instances (host or IP, no port); the
  // address the connection came from when absent.
  std::string address;
  bool operator==(const Hello&) const = default;
};

// cp -> agent, answer to hello. REQUIRES (checked by Decode): 1 <= heartbeat_ms < lease_ms.
struct Welcome {
  std::string node_id;
  std::uint64_t term = 0;
  std::uint64_t heartbeat_ms = 0;
  std::uint64_t lease_ms = 0;
  bool operator==(const Welcome&) const = default;
};

// cp -> agent: run one operation. deadline_ms is a duration (>= 1) counted from receipt.
struct Op {
  std::string op_id;
  std::uint64_t term = 0;
  std::string kind;  // fetch, build, start_instance, ...; 1..64 chars of [a-z0-9_]
  nlohmann::json args = nlohmann::json::object();  // an object, nesting <= 16
  std::uint64_t deadline_ms = 0;
  bool operator==(const Op&) const = default;
};

enum class EventKind { kOutput, kProgress, kState };
const char* ToString(EventKind kind);

// agent -> cp: something an op did. seq is dense per op, starting at 1.
struct Event {
  std::string op_id;
  std::uint64_t seq = 0;
  EventKind kind = EventKind::kOutput;
  nlohmann::json data;  // any JSON, <= 64 KiB serialized, nesting <= 16
  bool operator==(const Event&) const = default;
};

// agent -> cp: how an op ended. error is non-empty exactly when !ok.
struct OpResult {
  std::string op_id;
  bool ok = false;
  std::string error;
  nlohmann::json value = nlohmann::json::object();  // an object, nesting <= 16
  bool operator==(const OpResult&) const = default;
};

// cp -> agent: stop an op the control plane no longer wants.
struct Cancel {
  std::string op_id;
  bool operator==(const Cancel&) const = default;
};

// cp -> agent: every event of op_id up to seq is stored (seq >= 1, or 0 with result: an op
// without events); with `result`, its result is stored too and the agent may forget it.
struct Ack {
  std::string op_id;
  std::uint64_t seq = 0;
  bool result = false;
  bool operator==(const Ack&) const = default;
};

// Both ways. running is sent by the agent only (empty from the cp, and then omitted).
struct Heartbeat {
  std::uint64_t time_ms = 0;
  std::vector<std::string> running;
  bool operator==(const Heartbeat&) const = default;
};

// cp -> agent: this op was given up while the agent was away; stop it, clean up, and report
// a result with error "given up".
struct StopOp {
  std::string op_id;
  bool operator==(const StopOp&) const = default;
};

using Frame = std::variant<Hello, Welcome, Op, Event, OpResult, Cancel, Ack, Heartbeat, StopOp>;

// The "type" string of a frame ("hello", "op", "result", ...).
const char* TypeOf(const Frame& frame);

// True for op ids and node names: 1..64 chars of [A-Za-z0-9._-].
bool IsValidId(std::string_view id);

// Serializes frame as one JSON object with "type" and "v": 1. Never throws (invalid UTF-8 in
// strings is replaced). Does not validate: Decode(Encode(f)) equals f exactly when f respects
// the limits above.
std::string Encode(const Frame& frame);

// Parses and validates one untrusted frame. Never throws. Unknown members are ignored.
// Failures, by code:
//   kTooLarge  the text is over kMaxFrameBytes, or event data over kMaxEventDataBytes;
//   kConflict  "v" is an integer other than 1: "unsupported protocol version" (close the
//              connection, see IsUnsupportedVersion);
//   kNotFound  "type" is a string naming no known frame: "unknown frame type" (log and
//              ignore it, see IsUnknownType);
//   kInvalid   anything else: not JSON, not an object, a missing or mistyped member, a bad
//              id, seq 0, too many labels, nesting too deep, ...
Result<Frame> Decode(std::string_view text);

inline bool IsUnsupportedVersion(const Status& s) {
  return s.code() == Code::kConflict;
}
inline bool IsUnknownType(const Status& s) {
  return s.code() == Code::kNotFound;
}

}  // namespace slipway::protocol
