#include "core/protocol.h"

#include <algorithm>
#include <array>
#include <exception>
#include <utility>

namespace slipway::protocol {
namespace {

using json = nlohmann::json;

constexpr std::array<const char*, std::variant_size_v<Frame>> kTypeNames = {
    "hello", "welcome", "op", "event", "result", "cancel", "ack", "heartbeat", "stop_op"};
constexpr std::array<const char*, 3> kEventKindNames = {"output", "progress", "state"};
// A safety net checked on the raw text, before parsing; the precise per-member limit
// (kMaxNestingDepth) is checked after parsing so its error names the member.
constexpr int kMaxRawDepth = 2 * kMaxNestingDepth;

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- Nesting depth ----

// True if no '[' or '{' in text opens deeper than limit. Brackets inside strings do not count.
// Runs before parsing so that a hostile frame cannot make the parser or the checks below
// recurse deeply.
bool RawDepthWithin(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// The depth of j (a scalar 0, a container 1 + its deepest member); stops descending once the
// answer is known to exceed limit, so the recursion is at most limit + 1 deep.
int DepthOf(const json& j, int limit) {
  if (!j.is_structured()) return 0;
  if (limit <= 0) return 1;
  int deepest = 0;
  for (const json& member : j) {
    deepest = std::max(deepest, DepthOf(member, limit - 1));
    if (deepest >= limit) break;
  }
  return 1 + deepest;
}

bool IsKindChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool IsValidKind(std::string_view kind) {
  return !kind.empty() && kind.size() <= kMaxIdChars &&
         std::all_of(kind.begin(), kind.end(), IsKindChar);
}

// ---- Reading members ----

// Reads the members of one frame object. The first failure is kept and later reads return
// defaults, so a decoder reads every member in order and checks status() once at the end.
// Control characters (C0 and DEL) in a name or label would forge log lines and terminal
// output wherever it is shown.
bool HasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

class Reader {
 public:
  Reader(const json& obj, const char* type) : obj_(obj), type_(type) {}

  const Status& status() const { return status_; }
  void Fail(Code code, const char* key, const std::string& what) {
    if (status_.ok()) status_ = Status(code, std::string(type_) + "." + key + ": " + what);
  }
  // Keeps a nested reader's failure as this one's.
  void Adopt(const Status& s) {
    if (status_.ok()) status_ = s;
  }

  // The member, or nullptr after recording "missing" (if required) or an earlier failure.
  const json* Find(const char* key, bool required = true) {
    if (!status_.ok()) return nullptr;
    auto it = obj_.find(key);
    if (it != obj_.end()) return &*it;
    if (required) Fail(Code::kInvalid, key, "missing");
    return nullptr;
  }

  std::string String(const char* key) {
    const json* m = Find(key);
    if (m && !m->is_string()) Fail(Code::kInvalid, key, "must be a string");
    return status_.ok() && m ? m->get<std::string>() : std::string();
  }

  std::string Id(const char* key) {
    std::string id = String(key);
    if (status_.ok() && !IsValidId(id))
      Fail(Code::kInvalid, key, "must be 1..64 chars of [A-Za-z0-9._-]");
    return id;
  }

  std::uint64_t Uint(const char* key, std::uint64_t min = 0) {
    const json* m = Find(key);
    if (m && !m->is_number_unsigned()) Fail(Code::kInvalid, key, "must be an unsigned integer");
    std::uint64_t n = status_.ok() && m ? m->get<std::uint64_t>() : 0;
    if (status_.ok() && n < min) Fail(Code::kInvalid, key, "must be >= " + std::to_string(min));
    return n;
  }

  bool Bool(const char* key) {
    const json* m = Find(key);
    if (m && !m->is_boolean()) Fail(Code::kInvalid, key, "must be a boolean");
    return status_.ok() && m && m->get<bool>();
  }

  // A JSON object nested at most kMaxNestingDepth deep; {} when absent and optional.
  json Object(const char* key, bool required = true) {
    const json* m = Find(key, required);
    if (m && !m->is_object()) Fail(Code::kInvalid, key, "must be an object");
    if (!status_.ok() || !m) return json::object();
    return Bounded(key, *m);
  }

  // Any JSON value nested at most kMaxNestingDepth deep.
  json Bounded(const char* key, const json& value) {
    if (DepthOf(value, kMaxNestingDepth) > kMaxNestingDepth)
      Fail(Code::kInvalid, key, "nested deeper than " + std::to_string(kMaxNestingDepth));
    return status_.ok() ? value : json();
  }

  // An array of strings, at most max_count of them, each 1..max_chars long (0 = any length).
  std::vector<std::string> Strings(const char* key, std::size_t max_count, std::size_t max_chars,
                                   bool required = true);
  std::vector<std::string> Ids(const char* key, bool required);

 private:
  const json& obj_;
  const char* type_;
  Status status_;
};

std::vector<std::string> Reader::Strings(const char* key, std::size_t max_count,
                                         std::size_t max_chars, bool required) {
  std::vector<std::string> out;
  const json* m = Find(key, required);
  if (m && !m->is_array()) Fail(Code::kInvalid, key, "must be an array");
  if (!status_.ok() || !m) return out;
  if (m->size() > max_count)
    Fail(Code::kInvalid, key, "more than " + std::to_string(max_count) + " entries");
  for (const json& item : *m) {
    if (!status_.ok()) break;
    if (!item.is_string()) {
      Fail(Code::kInvalid, key, "entries must be strings");
    } else if (HasControl(item.get_ref<const std::string&>())) {
      Fail(Code::kInvalid, key, "entries must not contain control characters");
    } else if (max_chars > 0 && (item.get_ref<const std::string&>().empty() ||
                                 item.get_ref<const std::string&>().size() > max_chars)) {
      Fail(Code::kInvalid, key, "entries must be 1.." + std::to_string(max_chars) + " chars");
    } else {
      out.push_back(item.get<std::string>());
    }
  }
  return out;
}

std::vector<std::string> Reader::Ids(const char* key, bool required) {
  std::vector<std::string> ids = Strings(key, kMaxListedOps, kMaxIdChars, required);
  if (status_.ok() && !std::all_of(ids.begin(), ids.end(), IsValidId))
    Fail(Code::kInvalid, key, "entries must be 1..64 chars of [A-Za-z0-9._-]");
  return ids;
}

Result<Frame> Finish(const Reader& r, Frame frame) {
  if (!r.status().ok()) return r.status();
  return frame;
}

// ---- Decoders, one per type ----

Capabilities DecodeCapabilities(Reader& outer) {
  Capabilities c;
  json obj = outer.Object("capabilities");
  if (!outer.status().ok()) return c;
  Reader r(obj, "hello.capabilities");
  c.runtimes = r.Strings("runtimes", kMaxLabels, kMaxLabelChars);
  c.docker = r.Bool("docker");
  c.disk_free_bytes = r.Uint("disk_free_bytes");
  c.repos = r.Strings("repos", kMaxRepos, 2 * kMaxLabelChars);
  outer.Adopt(r.status());
  return c;
}

std::map<std::string, std::uint64_t> DecodeLastSeq(Reader& r) {
  std::map<std::string, std::uint64_t> out;
  json obj = r.Object("last_seq");
  if (obj.size() > kMaxListedOps) {
    r.Fail(Code::kInvalid, "last_seq", "more than " + std::to_string(kMaxListedOps) + " ops");
    return out;
  }
  for (const auto& [op_id, seq] : obj.items()) {
    if (!IsValidId(op_id)) {
      r.Fail(Code::kInvalid, "last_seq", "keys must be op ids");
    } else if (!seq.is_number_unsigned() || seq.get<std::uint64_t>() < 1) {
      r.Fail(Code::kInvalid, "last_seq", "values must be integers >= 1");
    } else {
      out.emplace(op_id, seq.get<std::uint64_t>());
    }
  }
  return out;
}

Result<Frame> DecodeHello(const json& j) {
  Reader r(j, "hello");
  Hello h;
  h.node = r.Id("node");
  h.agent_version = r.String("agent_version");
  if (r.status().ok() && (h.agent_version.size() > kMaxLabelChars || HasControl(h.agent_version)))
    r.Fail(Code::kInvalid, "agent_version", "must be at most 64 printable characters");
  h.labels = r.Strings("labels", kMaxLabels, kMaxLabelChars);
  h.capabilities = DecodeCapabilities(r);
  h.last_seq = DecodeLastSeq(r);
  if (j.contains("address")) {
    h.address = r.String("address");
    if (r.status().ok() && (h.address.empty() || h.address.size() > 255 ||
                            h.address.find_first_of(" \t\r\n/") != std::string::npos))
      r.Fail(Code::kInvalid, "address", "must be a host name or an IP address");
  }
  return Finish(r, std::move(h));
}

Result<Frame> DecodeWelcome(const json& j) {
  Reader r(j, "welcome");
  Welcome w;
  w.node_id = r.Id("node_id");
  w.term = r.Uint("term");
  w.heartbeat_ms = r.Uint("heartbeat_ms", 1);
  w.lease_ms = r.Uint("lease_ms", 1);
  if (r.status().ok() && w.lease_ms <= w.heartbeat_ms)
    r.Fail(Code::kInvalid, "lease_ms", "must be greater than heartbeat_ms");
  return Finish(r, std::move(w));
}

Result<Frame> DecodeOp(const json& j) {
  Reader r(j, "op");
  Op op;
  op.op_id = r.Id("op_id");
  op.term = r.Uint("term");
  op.kind = r.String("kind");
  if (r.status().ok() && !IsValidKind(op.kind))
    r.Fail(Code::kInvalid, "kind", "must be 1..64 chars of [a-z0-9_]");
  op.args = r.Object("args");
  op.deadline_ms = r.Uint("deadline_ms", 1);
  return Finish(r, std::move(op));
}

EventKind DecodeEventKind(Reader& r) {
  std::string name = r.String("kind");
  for (std::size_t i = 0; i < kEventKindNames.size(); ++i) {
    if (name == kEventKindNames[i]) return static_cast<EventKind>(i);
  }
  r.Fail(Code::kInvalid, "kind", "must be output, progress or state");
  return EventKind::kOutput;
}

Result<Frame> DecodeEvent(const json& j) {
  Reader r(j, "event");
  Event e;
  e.op_id = r.Id("op_id");
  e.seq = r.Uint("seq", 1);
  e.kind = DecodeEventKind(r);
  if (const json* data = r.Find("data")) e.data = r.Bounded("data", *data);
  if (r.status().ok() && Dump(e.data).size() > kMaxEventDataBytes)
    r.Fail(Code::kTooLarge, "data", "over " + std::to_string(kMaxEventDataBytes) + " bytes");
  return Finish(r, std::move(e));
}

Result<Frame> DecodeResult(const json& j) {
  Reader r(j, "result");
  OpResult res;
  res.op_id = r.Id("op_id");
  res.ok = r.Bool("ok");
  if (r.status().ok() && !res.ok) {
    res.error = r.String("error");
    if (r.status().ok() && res.error.empty()) r.Fail(Code::kInvalid, "error", "must not be empty");
  } else if (r.Find("error", false)) {
    r.Fail(Code::kInvalid, "error", "must be absent when ok is true");
  }
  res.value = r.Object("value", false);
  return Finish(r, std::move(res));
}

Result<Frame> DecodeCancel(const json& j) {
  Reader r(j, "cancel");
  Cancel c{r.Id("op_id")};
  return Finish(r, std::move(c));
}

Result<Frame> DecodeAck(const json& j) {
  Reader r(j, "ack");
  Ack a;
  a.op_id = r.Id("op_id");
  a.result = j.contains("result") && r.Bool("result");
  // seq 0 acks no event: allowed only to ack the result of an op that had none.
  a.seq = r.Uint("seq", a.result ? 0 : 1);
  return Finish(r, std::move(a));
}

Result<Frame> DecodeHeartbeat(const json& j) {
  Reader r(j, "heartbeat");
  Heartbeat h;
  h.time_ms = r.Uint("time_ms");
  h.running = r.Ids("running", false);
  return Finish(r, std::move(h));
}

Result<Frame> DecodeStopOp(const json& j) {
  Reader r(j, "stop_op");
  StopOp s{r.Id("op_id")};
  return Finish(r, std::move(s));
}

using Decoder = Result<Frame> (*)(const json&);
constexpr std::array<Decoder, std::variant_size_v<Frame>> kDecoders = {
    DecodeHello,  DecodeWelcome, DecodeOp,        DecodeEvent, DecodeResult,
    DecodeCancel, DecodeAck,     DecodeHeartbeat, DecodeStopOp};

// ---- Encoders, one per type ----

json ToJson(const Hello& h) {
  const Capabilities& c = h.capabilities;
  json j = {{"node", h.node},
            {"agent_version", h.agent_version},
            {"labels", h.labels},
            {"capabilities",
             {{"runtimes", c.runtimes},
              {"docker", c.docker},
              {"disk_free_bytes", c.disk_free_bytes},
              {"repos", c.repos}}},
            {"last_seq", h.last_seq}};
  if (!h.address.empty()) j["address"] = h.address;
  return j;
}
json ToJson(const Welcome& w) {
  return {{"node_id", w.node_id},
          {"term", w.term},
          {"heartbeat_ms", w.heartbeat_ms},
          {"lease_ms", w.lease_ms}};
}
json ToJson(const Op& op) {
  return {{"op_id", op.op_id},
          {"term", op.term},
          {"kind", op.kind},
          {"args", op.args},
          {"deadline_ms", op.deadline_ms}};
}
json ToJson(const Event& e) {
  return {{"op_id", e.op_id}, {"seq", e.seq}, {"kind", ToString(e.kind)}, {"data", e.data}};
}
json ToJson(const OpResult& r) {
  json j = {{"op_id", r.op_id}, {"ok", r.ok}, {"value", r.value}};
  if (!r.ok) j["error"] = r.error;
  return j;
}
json ToJson(const Cancel& c) {
  return {{"op_id", c.op_id}};
}
json ToJson(const Ack& a) {
  json j = {{"op_id", a.op_id}, {"seq", a.seq}};
  if (a.result) j["result"] = true;
  return j;
}
json ToJson(const Heartbeat& h) {
  json j = {{"time_ms", h.time_ms}};
  if (!h.running.empty()) j["running"] = h.running;
  return j;
}
json ToJson(const StopOp& s) {
  return {{"op_id", s.op_id}};
}

// ---- Envelope ----

// Checks "v" and "type" and picks the decoder; see Decode for the codes.
Result<Decoder> DecoderFor(const json& j) {
  auto v = j.find("v");
  if (v == j.end()) return Invalid("frame: missing v");
  if (!v->is_number_integer()) return Invalid("frame: v must be an integer");
  if (!v->is_number_unsigned() || v->get<std::uint64_t>() != kVersion)
    return Status(Code::kConflict, "unsupported protocol version " + Dump(*v));
  auto type = j.find("type");
  if (type == j.end()) return Invalid("frame: missing type");
  if (!type->is_string()) return Invalid("frame: type must be a string");
  const std::string& name = type->get_ref<const std::string&>();
  for (std::size_t i = 0; i < kTypeNames.size(); ++i) {
    if (name == kTypeNames[i]) return kDecoders[i];
  }
  return NotFound("unknown frame type '" + name.substr(0, kMaxIdChars) + "'");
}

Result<Frame> DecodeUnchecked(std::string_view text) {
  if (text.size() > kMaxFrameBytes)
    return Status(Code::kTooLarge, "frame over " + std::to_string(kMaxFrameBytes) + " bytes");
  if (!RawDepthWithin(text, kMaxRawDepth))
    return Invalid("frame: nested deeper than " + std::to_string(kMaxRawDepth));
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Invalid("frame: not valid JSON");
  if (!j.is_object()) return Invalid("frame: not a JSON object");
  Result<Decoder> decoder = DecoderFor(j);
  if (!decoder.ok()) return decoder.status();
  return (*decoder)(j);
}

}  // namespace

const char* ToString(EventKind kind) {
  return kEventKindNames[static_cast<std::size_t>(kind)];
}

const char* TypeOf(const Frame& frame) {
  return kTypeNames[frame.index()];
}

bool IsValidId(std::string_view id) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  };
  return !id.empty() && id.size() <= kMaxIdChars && std::all_of(id.begin(), id.end(), ok);
}

std::string Encode(const Frame& frame) {
  json j = std::visit([](const auto& f) { return ToJson(f); }, frame);
  j["type"] = TypeOf(frame);
  j["v"] = kVersion;
  return Dump(j);
}

Result<Frame> Decode(std::string_view text) {
  try {
    return DecodeUnchecked(text);
  } catch (const std::exception& e) {
    return Invalid(std::string("frame: ") + e.what());
  }
}

}  // namespace slipway::protocol
