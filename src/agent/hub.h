#pragma once
// The control plane's side of the agent protocol: the nodes that dialled in, the ops sent to
// them, and an Agent per node whose calls become ops (docs/PROTOCOL.md).
//
// A call (RemoteAgent, through Call) blocks its thread: it submits the op to the OpTracker,
// sends it when the node has a slot, hands the op's output events to the caller's sink on the
// caller's thread, and returns the result. It never waits forever: a node that goes silent
// past the op lease fails the call with "node <name> lost"; a cancel flag sends `cancel`.
//
// Thread-safety: every public method may be called from any thread. Links are called with the
// hub's lock held: NodeLink::Send must not block and must not call back into the hub.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "core/clock.h"
#include "core/op_tracker.h"
#include "core/protocol.h"

namespace slipway {

// One connection to a node (a WebSocket, or the in-process pipe of the local node).
class NodeLink {
 public:
  virtual ~NodeLink() = default;
  // Queues one frame; never blocks. False when the link is closed.
  virtual bool Send(std::string text) = 0;
  virtual void Close(int code, std::string reason) = 0;
  virtual std::string remote_address() const = 0;
};

struct NodeHubOptions {
  std::string root;  // the control plane's data directory: node paths are relative to it
  std::uint64_t term = 1;
  std::chrono::milliseconds heartbeat{std::chrono::seconds(5)};
  std::chrono::milliseconds silence{std::chrono::seconds(15)};   // a silent link is closed: down
  std::chrono::milliseconds op_lease{std::chrono::seconds(60)};  // "node <name> lost" after
  int max_ops_per_node = 64;
};

// One call of ours on a node, as the nodes API shows it.
struct OpView {
  std::string op_id;
  std::string kind;
  // queued (waiting for a free slot on the node, never sent), running, or stalled (sent,
  // the node silent for a while, still within its lease)
  std::string state;
  std::uint64_t last_seq = 0;  // events received so far
};

// A node as the hub sees it.
struct NodeView {
  std::string name;
  bool connected = false;
  std::vector<std::string> labels;
  std::string address;  // where its instances are reached (advertised, else the peer address)
  std::string agent_version;
  protocol::Capabilities capabilities;
  long long connected_ms = 0;        // wall clock of the last hello
  long long last_heard_ms = 0;       // wall clock of the last frame
  long long clock_skew_ms = 0;       // its heartbeat time minus ours, when last heard
  std::vector<std::string> running;  // op ids it reported running
  int ops_in_flight = 0;             // calls of ours waiting on it
  std::vector<OpView> ops;           // those calls, oldest first
  std::int64_t token_id = 0;         // the enrollment token that owns its name
};

// Who a link authenticated as: its enrollment token, and when that token expires (0 =
// never). The link is closed when the token expires or is revoked (NodeHub::DisconnectToken).
struct NodeCredential {
  std::int64_t token_id = 0;
  long long expires_ms = 0;
};

// Told about nodes coming and going (the control layer records them). Called without the
// hub's lock, on the thread that saw the change.
struct NodeObserver {
  std::function<void(const NodeView&)> connected;
  std::function<void(const NodeView&)> disconnected;
};

// Where an op's output goes: events of kind output/progress/state, in seq order.
using OpSink = std::function<void(protocol::EventKind, const nlohmann::json&)>;

class NodeHub {
 public:
  class Session;  // one link's conversation; see Accept

  NodeHub(Clock& clock, NodeHubOptions options);
  ~NodeHub();  // Stop()s
  NodeHub(const NodeHub&) = delete;
  NodeHub& operator=(const NodeHub&) = delete;

  void SetObserver(NodeObserver observer);
  // Starts the ticker (leases, heartbeats, silence). Stop ends it and fails every waiting
  // call with kUnavailable "the control plane is stopping".
  void Start();
  void Stop();

  // A new authenticated link. Feed it every received text in order and OnClose once at the
  // end; the first text must be a hello. `advertise` overrides the node's address when set.
  // Only the server's own in-process node may take the name "local" (`local`). A node name
  // belongs to the first enrollment token that connects with it (SetOwner restores that at
  // start): another token's hello with that name is refused (4003).
  std::shared_ptr<Session> Accept(std::shared_ptr<NodeLink> link, bool local = false,
                                  NodeCredential credential = {});
  void SetOwner(const std::string& node, std::int64_t token_id);
  // Closes every link that authenticated with `token_id` (it was revoked).
  void DisconnectToken(std::int64_t token_id);

  // Runs one op on `node` and waits for its result (see the file comment). `cancel` may be
  // null. Output events go to `sink` on this thread. The Status of a failed op keeps its
  // code (value.code); a lost node is kUnavailable "node <name> lost".
  Result<nlohmann::json> Call(const std::string& node, const std::string& kind, nlohmann::json args,
                              std::chrono::milliseconds deadline, const OpSink& sink = nullptr,
                              const std::atomic<bool>* cancel = nullptr);

  // An Agent whose calls run on `node` (created on first use, valid as long as the hub).
  Agent& AgentFor(const std::string& node);

  std::vector<NodeView> List() const;
  std::optional<NodeView> Get(const std::string& node) const;
  // Connected nodes that carry every label of `labels`, by name; excluding `excluded`.
  std::vector<std::string> Match(const std::vector<std::string>& labels,
                                 const std::set<std::string>& excluded = {}) const;
  // Closes the node's link (for remove); its calls fail when their lease passes.
  void Disconnect(const std::string& node, const std::string& reason);

  std::uint64_t term() const { return options_.term; }
  const std::string& root() const { return options_.root; }

 private:
  struct Pending;
  struct Node;
  friend class Session;
  void OnText(Session& session, const std::string& text);
  void OnClose(Session& session);
  void OnHello(Session& session, const protocol::Hello& hello);
  bool ForeignOp(const Node& n, const std::string& op_id) const;
  void OnEvent(Node& node, const protocol::Event& e);
  void OnResult(Node& node, const protocol::OpResult& r);
  void OnHeartbeat(Node& node, const protocol::Heartbeat& h);
  void Apply(const OpActions& actions);
  void SendTo(const std::string& node, const protocol::Frame& frame);
  void Tick();
  NodeView ViewOf(const Node& n) const;
  std::shared_ptr<Pending> Submit(const std::string& node, const std::string& kind,
                                  nlohmann::json args, std::chrono::milliseconds deadline);
  Result<nlohmann::json> Wait(Pending& p, const OpSink& sink, const std::atomic<bool>* cancel);
  bool NodeGone(Pending& p);

  Clock& clock_;
  NodeHubOptions options_;
  NodeObserver observer_;
  mutable std::mutex mu_;  // guards everything below
  OpTracker tracker_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::map<std::string, std::shared_ptr<Pending>> pending_;  // by op id
  std::map<std::string, std::unique_ptr<Agent>> agents_;
  std::uint64_t next_op_ = 1;
  Clock::time_point started_{};
  bool stopping_ = false;
  std::condition_variable tick_cv_;
  std::thread ticker_;
};

class NodeHub::Session {
 public:
  Session(NodeHub& hub, std::shared_ptr<NodeLink> link, bool local, NodeCredential credential)
      : hub_(hub), link_(std::move(link)), local_(local), credential_(credential) {}
  // One received text frame, in order. Never throws.
  void OnText(const std::string& text) { hub_.OnText(*this, text); }
  // The link ended. Idempotent.
  void OnClose() { hub_.OnClose(*this); }

 private:
  friend class NodeHub;
  NodeHub& hub_;
  std::shared_ptr<NodeLink> link_;
  std::string node_;  // set by the hello
  bool local_ = false;
  NodeCredential credential_;
  bool closed_ = false;
};

// Whether a node with `labels` carries every label of `wanted`.
bool HasLabels(const std::vector<std::string>& labels, const std::vector<std::string>& wanted);

}  // namespace slipway
