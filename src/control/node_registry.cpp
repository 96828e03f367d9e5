#include "control/node_registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

namespace slipway {
namespace {

using json = nlohmann::json;

// NodeRecord's rule: 1..64 characters of [A-Za-z0-9._-].
bool ValidNodeName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

json CapabilitiesJson(const protocol::Capabilities& c) {
  return {{"runtimes", c.runtimes},
          {"docker", c.docker},
          {"disk_free_bytes", c.disk_free_bytes},
          {"repos", c.repos}};
}

// A stored JSON column; `fallback` when it does not parse to the expected kind.
json ParseColumn(const std::string& text, const json& fallback) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || j.type() != fallback.type()) return fallback;
  return j;
}

std::vector<std::string> LabelsOf(const std::string& labels_json) {
  std::vector<std::string> out;
  for (const auto& l : ParseColumn(labels_json, json::array()))
    if (l.is_string()) out.push_back(l.get<std::string>());
  return out;
}

NodeRow FromRecord(const NodeRecord& r) {
  NodeRow row;
  row.name = r.name;
  row.drained = r.drained;
  row.labels = LabelsOf(r.labels_json);
  row.address = r.address;
  row.agent_version = r.agent_version;
  row.capabilities = ParseColumn(r.capabilities_json, json::object());
  row.token_id = r.token_id;
  row.first_seen_ms = r.first_seen_ms;
  row.last_seen_ms = r.last_seen_ms;
  return row;
}

// The hub's live view over the record: what a connected node announced is the freshest.
void Overlay(NodeRow& row, const NodeView& v) {
  row.name = v.name;
  row.connected = v.connected;
  if (v.connected || row.address.empty()) {
    row.labels = v.labels;
    row.address = v.address;
    row.agent_version = v.agent_version;
    row.capabilities = CapabilitiesJson(v.capabilities);
  }
  row.last_heard_ms = v.last_heard_ms;
  row.connected_ms = v.connected_ms;
  row.clock_skew_ms = v.clock_skew_ms;
  row.ops_in_flight = v.ops_in_flight;
  row.ops = v.ops;
  if (v.connected) row.last_seen_ms = std::max(row.last_seen_ms, v.last_heard_ms);
}

// A disconnected view without a record is a node that was removed: not shown.
bool Shown(const NodeView& v, bool recorded) {
  return v.connected || recorded;
}

}  // namespace

NodeRegistry::NodeRegistry(Store& store, NodeHub& hub, Clock& clock)
    : store_(store), hub_(hub), clock_(clock) {}

NodeRegistry::~NodeRegistry() {
  if (attached_) hub_.SetObserver({});
}

void NodeRegistry::Attach() {
  NodeObserver observer;
  observer.connected = [this](const NodeView& v) { OnConnected(v); };
  observer.disconnected = [this](const NodeView& v) { OnDisconnected(v); };
  hub_.SetObserver(std::move(observer));
  attached_ = true;
  // A node name stays with the enrollment token it first connected with, across restarts.
  if (auto records = store_.ListNodes(); records.ok()) {
    for (const auto& r : *records)
      if (r.token_id) hub_.SetOwner(r.name, r.token_id);
  }
}

void NodeRegistry::OnConnected(const NodeView& v) {
  if (!ValidNodeName(v.name)) {
    spdlog::warn("node '{}' is not recorded: a node name is 1..64 of [A-Za-z0-9._-]", v.name);
    return;
  }
  NodeRecord r;
  if (auto known = store_.GetNode(v.name); known.ok()) r = *known;  // keeps its token
  r.name = v.name;
  r.labels_json = json(v.labels).dump();
  r.address = v.address;
  r.agent_version = v.agent_version;
  r.capabilities_json = CapabilitiesJson(v.capabilities).dump();
  r.last_seen_ms = clock_.WallMillis();
  if (v.token_id) r.token_id = v.token_id;
  if (auto stored = store_.UpsertNode(r); !stored.ok())
    spdlog::warn("node {}: cannot record it: {}", v.name, stored.status().message());
}

void NodeRegistry::OnDisconnected(const NodeView& v) {
  auto s = store_.TouchNode(v.name, clock_.WallMillis());
  if (!s.ok() && s.code() != Code::kNotFound)  // kNotFound: it was just removed
    spdlog::warn("node {}: cannot record its last sighting: {}", v.name, s.message());
}

Result<std::vector<NodeRow>> NodeRegistry::List() {
  auto records = store_.ListNodes();
  if (!records.ok()) return records.status();
  std::map<std::string, NodeRow> rows;
  for (const auto& r : *records) rows[r.name] = FromRecord(r);
  for (const auto& v : hub_.List()) {
    auto it = rows.find(v.name);
    if (!Shown(v, it != rows.end())) continue;
    Overlay(rows[v.name], v);
  }
  std::vector<NodeRow> out;
  out.reserve(rows.size());
  for (auto& [name, row] : rows) out.push_back(std::move(row));
  return out;
}

Result<NodeRow> NodeRegistry::Show(const std::string& name) {
  auto record = store_.GetNode(name);
  if (!record.ok() && record.status().code() != Code::kNotFound) return record.status();
  auto view = hub_.Get(name);
  if (!record.ok() && !(view && Shown(*view, false)))
    return NotFound("node '" + name + "' does not exist");
  NodeRow row = record.ok() ? FromRecord(*record) : NodeRow{};
  if (view) Overlay(row, *view);
  return row;
}

Result<NodeRow> NodeRegistry::Drain(const std::string& name, bool drained) {
  if (auto s = store_.SetNodeDrained(name, drained); !s.ok()) return s;
  return Show(name);
}

Status NodeRegistry::Remove(const std::string& name) {
  if (name == kLocalNode)
    return Invalid("node 'local' is the server's own node; it cannot be removed");
  auto view = hub_.Get(name);
  bool connected = view && view->connected;
  if (connected) hub_.Disconnect(name, "removed by an operator");
  auto s = store_.DeleteNode(name);
  if (s.code() == Code::kNotFound && connected) return Status::Ok();
  return s;
}

bool NodeRegistry::IsDrained(const std::string& name) {
  auto r = store_.GetNode(name);
  return r.ok() && r->drained;
}

}  // namespace slipway
