#pragma once
// The nodes the control plane knows: their durable records (Store) merged with the live view
// of the ones connected now (NodeHub). Operators list, drain and remove nodes through it;
// placement asks it whether a node is drained.
//
// Thread-safety: every method may be called from any thread (the store and the hub are
// thread-safe; the registry keeps no state of its own).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/hub.h"
#include "core/clock.h"
#include "core/status.h"
#include "store/store.h"

namespace slipway {

// One node as operators see it.
struct NodeRow {
  std::string name;
  bool connected = false;  // "up" when connected, "down" otherwise
  bool drained = false;    // no new placements
  std::vector<std::string> labels;
  std::string address;
  std::string agent_version;
  nlohmann::json capabilities = nlohmann::json::object();
  std::int64_t token_id = 0;  // the enrollment token it authenticated with (0: none known)
  long long first_seen_ms = 0;
  long long last_seen_ms = 0;   // last frame heard while connected, else the record's time
  long long last_heard_ms = 0;  // 0 when this control plane never heard it
  long long connected_ms = 0;
  long long clock_skew_ms = 0;
  int ops_in_flight = 0;
  std::vector<OpView> ops;  // our calls on it: queued, running or stalled
  const char* state() const { return connected ? "up" : "down"; }
};

class NodeRegistry {
 public:
  // The server's own, in-process node: always present, never removed.
  static constexpr const char* kLocalNode = "local";

  // Every reference must outlive the registry.
  NodeRegistry(Store& store, NodeHub& hub, Clock& clock);
  ~NodeRegistry();  // detaches from the hub
  NodeRegistry(const NodeRegistry&) = delete;
  NodeRegistry& operator=(const NodeRegistry&) = delete;

  // Becomes the hub's observer: a node that connects is recorded (UpsertNode; its drained
  // flag, first sighting and enrollment token are kept), one that disconnects gets its
  // last_seen time. Call once, before any node connects. Store errors are logged.
  void Attach();

  // Every recorded node and every connected one, by name.
  Result<std::vector<NodeRow>> List();
  // kNotFound when the node is neither recorded nor connected.
  Result<NodeRow> Show(const std::string& name);
  // Sets or clears the drained flag; returns the node. kNotFound for an unrecorded node.
  Result<NodeRow> Drain(const std::string& name, bool drained);
  // Disconnects the node (when connected) and deletes its record. kInvalid for the local
  // node; kNotFound when the node is neither recorded nor connected. An agent that still
  // holds a valid enrollment token may connect again (revoke the token to keep it out).
  Status Remove(const std::string& name);
  // Whether placement must skip the node. False for an unknown node or a store error.
  bool IsDrained(const std::string& name);

 private:
  void OnConnected(const NodeView& view);
  void OnDisconnected(const NodeView& view);

  Store& store_;
  NodeHub& hub_;
  Clock& clock_;
  bool attached_ = false;
};

}  // namespace slipway
