#include "agent/hub.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <utility>

#include "agent/remote_agent.h"
#include "agent/wire.h"

namespace slipway {
using nlohmann::json;
using std::chrono::milliseconds;

bool HasLabels(const std::vector<std::string>& labels, const std::vector<std::string>& wanted) {
  return std::all_of(wanted.begin(), wanted.end(), [&](const std::string& w) {
    return std::find(labels.begin(), labels.end(), w) != labels.end();
  });
}

// A call waiting for its op's result. Guarded by the hub's lock.
struct NodeHub::Pending {
  std::string op_id;
  std::string node;
  protocol::Op op;
  std::condition_variable cv;
  std::deque<protocol::Event> events;  // delivered, not yet handed to the sink
  std::optional<Result<json>> result;
};

struct NodeHub::Node {
  std::string name;
  std::shared_ptr<NodeLink> link;  // null while disconnected
  Session* session = nullptr;
  protocol::Hello hello;
  std::string address;
  long long connected_ms = 0;
  long long last_heard_ms = 0;
  long long clock_skew_ms = 0;
  Clock::time_point last_heard{};
  Clock::time_point last_beat_sent{};
  Clock::time_point down_since{};
  bool silence_closed = false;  // its link was closed for silence; its close is on the way  // when
                                // the link went away (meaningful while link is null)
  std::int64_t owner_token = 0;  // the enrollment token its name belongs to (0: none yet)
};

NodeHub::NodeHub(Clock& clock, NodeHubOptions options)
    : clock_(clock),
      options_(std::move(options)),
      tracker_({options_.op_lease, options_.heartbeat * 2, options_.max_ops_per_node}) {}

NodeHub::~NodeHub() {
  Stop();
}

void NodeHub::SetObserver(NodeObserver observer) {
  std::lock_guard lock(mu_);
  observer_ = std::move(observer);
}

void NodeHub::Start() {
  std::lock_guard lock(mu_);
  if (ticker_.joinable() || stopping_) return;
  started_ = clock_.Now();
  ticker_ = std::thread([this] {
    try {
      Tick();
    } catch (const std::exception& e) {
      spdlog::critical("node hub ticker stopped: {}", e.what());
    }
  });
}

void NodeHub::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, p] : pending_) {
      if (!p->result) p->result = Unavailable("the control plane is stopping");
      p->cv.notify_all();
    }
    for (auto& [name, n] : nodes_)
      if (n->link) n->link->Close(1001, "the control plane is stopping");
    tick_cv_.notify_all();
  }
  if (ticker_.joinable()) ticker_.join();
}

std::shared_ptr<NodeHub::Session> NodeHub::Accept(std::shared_ptr<NodeLink> link, bool local,
                                                  NodeCredential credential) {
  return std::make_shared<Session>(*this, std::move(link), local, credential);
}

void NodeHub::SetOwner(const std::string& node, std::int64_t token_id) {
  std::lock_guard lock(mu_);
  auto& slot = nodes_[node];
  if (!slot) {
    slot = std::make_unique<Node>();
    slot->name = node;
    slot->down_since = clock_.Now();
  }
  slot->owner_token = token_id;
}

void NodeHub::DisconnectToken(std::int64_t token_id) {
  std::lock_guard lock(mu_);
  for (auto& [name, n] : nodes_) {
    if (n->link && n->session && n->session->credential_.token_id == token_id)
      n->link->Close(4004, "the enrollment token was revoked");
  }
}

namespace {
bool IsReservedName(const std::string& name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!lower.empty() && lower.back() == '.') lower.pop_back();
  return lower == "local";
}
}  // namespace

// ---- frames from nodes ------------------------------------------------------------------

void NodeHub::OnText(Session& session, const std::string& text) {
  auto frame = protocol::Decode(text);
  if (!frame.ok()) {
    if (protocol::IsUnknownType(frame.status())) {
      spdlog::info("node {}: ignoring a frame: {}", session.node_, frame.status().message());
      return;
    }
    spdlog::warn("node {}: protocol error: {}", session.node_.empty() ? "?" : session.node_,
                 frame.status().message());
    bool version = protocol::IsUnsupportedVersion(frame.status());
    session.link_->Close(version                                    ? 4000
                         : frame.status().code() == Code::kTooLarge ? 1009
                                                                    : 1002,
                         frame.status().message());
    return;
  }
  if (session.node_.empty()) {
    const auto* hello = std::get_if<protocol::Hello>(&*frame);
    if (!hello) {
      session.link_->Close(1002, "the first frame must be a hello");
      return;
    }
    OnHello(session, *hello);
    return;
  }
  std::unique_lock lock(mu_);
  auto it = nodes_.find(session.node_);
  if (it == nodes_.end() || it->second->session != &session) return;  // replaced
  Node& n = *it->second;
  n.last_heard = clock_.Now();
  n.last_heard_ms = clock_.WallMillis();
  if (const auto* e = std::get_if<protocol::Event>(&*frame)) {
    OnEvent(n, *e);
  } else if (const auto* r = std::get_if<protocol::OpResult>(&*frame)) {
    OnResult(n, *r);
  } else if (const auto* h = std::get_if<protocol::Heartbeat>(&*frame)) {
    OnHeartbeat(n, *h);
  } else {
    lock.unlock();
    spdlog::warn("node {}: unexpected {} frame", session.node_, protocol::TypeOf(*frame));
    session.link_->Close(1002, std::string("unexpected frame ") + protocol::TypeOf(*frame));
  }
}

void NodeHub::OnHello(Session& session, const protocol::Hello& hello) {
  if (session.local_ ? hello.node != "local" : IsReservedName(hello.node)) {
    session.link_->Close(4003, session.local_ ? "the local node must be named local"
                                              : "the node name 'local' is reserved");
    return;
  }
  NodeView view;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      session.link_->Close(1001, "the control plane is stopping");
      return;
    }
    auto& slot = nodes_[hello.node];
    if (!slot) slot = std::make_unique<Node>();
    Node& n = *slot;
    std::int64_t token = session.credential_.token_id;
    if (n.owner_token && token && n.owner_token != token) {
      spdlog::warn("node {}: refused a connection from {} with another enrollment token",
                   hello.node, session.link_->remote_address());
      session.link_->Close(4003,
                           "the node name '" + hello.node + "' is enrolled with another token");
      return;
    }
    if (token) n.owner_token = token;
    // The replaced session keeps its name: its frames and its close are ignored because the
    // node no longer points at it (and its node_ is only ever touched by its own thread).
    if (n.link && n.session != &session)
      n.link->Close(4001, "replaced by a newer connection of the same node");
    n.name = hello.node;
    n.link = session.link_;
    n.silence_closed = false;
    n.session = &session;
    n.hello = hello;
    n.address = hello.address.empty() ? session.link_->remote_address() : hello.address;
    n.connected_ms = n.last_heard_ms = clock_.WallMillis();
    n.last_heard = clock_.Now();
    session.node_ = hello.node;
    protocol::Welcome w{hello.node, options_.term,
                        static_cast<std::uint64_t>(options_.heartbeat.count()),
                        static_cast<std::uint64_t>(options_.silence.count())};
    n.link->Send(protocol::Encode(w));
    // Re-send the ops still running there (idempotent), then take its heartbeat as news.
    for (auto& [id, p] : pending_) {
      if (p->node != hello.node || p->result) continue;
      auto state = tracker_.State(id);
      if (state == OpState::kRunning || state == OpState::kStalled)
        n.link->Send(protocol::Encode(p->op));
    }
    for (const auto& [id, seq] : hello.last_seq) {  // an earlier run's ops: stop them
      if (!tracker_.State(id)) n.link->Send(protocol::Encode(protocol::StopOp{id}));
    }
    Apply(tracker_.NodeHeartbeat(hello.node, {}, clock_.Now()));
    view = ViewOf(n);
  }
  spdlog::info("node {} connected from {} (agent {})", hello.node, view.address,
               hello.agent_version);
  if (observer_.connected) observer_.connected(view);
}

// Whether `op_id` is tracked as another node's: news of it from `n` is ignored (a node
// speaks only for its own ops).
bool NodeHub::ForeignOp(const Node& n, const std::string& op_id) const {
  const TrackedOp* op = tracker_.Find(op_id);
  if (!op || op->node == n.name) return false;
  spdlog::warn("node {}: ignoring news of op {}, which runs on node {}", n.name, op_id, op->node);
  return true;
}

void NodeHub::OnEvent(Node& n, const protocol::Event& e) {
  if (ForeignOp(n, e.op_id)) return;
  auto state = tracker_.State(e.op_id);
  if (!state) {  // an op this control plane does not know (an earlier run's): stop it
    n.link->Send(protocol::Encode(protocol::StopOp{e.op_id}));
    n.link->Send(protocol::Encode(protocol::Ack{e.op_id, e.seq, false}));
    return;
  }
  for (const auto& a : tracker_.Event(e.op_id, e.seq, clock_.Now())) {
    if (a.kind == OpActionKind::kDeliverEvent) {
      auto it = pending_.find(e.op_id);
      if (it != pending_.end()) {
        it->second->events.push_back(e);
        it->second->cv.notify_all();
      }
    } else {
      Apply({a});
    }
  }
}

void NodeHub::OnResult(Node& n, const protocol::OpResult& r) {
  if (ForeignOp(n, r.op_id)) return;
  auto state = tracker_.State(r.op_id);
  n.link->Send(protocol::Encode(protocol::Ack{r.op_id, 0, true}));
  if (!state || *state == OpState::kGivenUp) {
    n.link->Send(protocol::Encode(protocol::StopOp{r.op_id}));
    return;
  }
  Apply(tracker_.Result(r.op_id, r.ok, r.error, clock_.Now()));
  auto it = pending_.find(r.op_id);
  if (it != pending_.end() && !it->second->result) {
    if (r.ok) {
      it->second->result = r.value;
    } else {
      Code code = wire::CodeFromName(r.value.value("code", std::string("internal")));
      it->second->result = Status(code == Code::kOk ? Code::kInternal : code, r.error);
    }
    it->second->cv.notify_all();
  }
  if (state && IsTerminal(*tracker_.State(r.op_id))) tracker_.Forget(r.op_id);
}

void NodeHub::OnHeartbeat(Node& n, const protocol::Heartbeat& h) {
  n.clock_skew_ms = static_cast<long long>(h.time_ms) - clock_.WallMillis();
  std::vector<std::string> own;
  for (const auto& id : h.running) {
    if (!tracker_.State(id))
      n.link->Send(protocol::Encode(protocol::StopOp{id}));
    else if (!ForeignOp(n, id))
      own.push_back(id);
  }
  Apply(tracker_.NodeHeartbeat(n.name, own, clock_.Now()));
}

void NodeHub::OnClose(Session& session) {
  NodeView view;
  {
    std::lock_guard lock(mu_);
    if (session.closed_) return;
    session.closed_ = true;
    if (session.node_.empty()) return;
    auto it = nodes_.find(session.node_);
    if (it == nodes_.end() || it->second->session != &session) return;
    Node& n = *it->second;
    n.link.reset();
    n.session = nullptr;
    n.down_since = clock_.Now();
    Apply(tracker_.NodeLost(n.name, clock_.Now()));
    view = ViewOf(n);
  }
  spdlog::warn("node {} disconnected", view.name);
  if (observer_.disconnected) observer_.disconnected(view);
}

// ---- tracker actions, time --------------------------------------------------------------

void NodeHub::SendTo(const std::string& node, const protocol::Frame& frame) {
  auto it = nodes_.find(node);
  if (it != nodes_.end() && it->second->link) it->second->link->Send(protocol::Encode(frame));
}

void NodeHub::Apply(const OpActions& actions) {
  for (const auto& a : actions) {
    auto it = pending_.find(a.op_id);
    const TrackedOp* op = tracker_.Find(a.op_id);
    std::string node = op ? op->node : "";
    switch (a.kind) {
      case OpActionKind::kSend:
        if (it != pending_.end()) SendTo(node, it->second->op);
        break;
      case OpActionKind::kSendCancel:
        SendTo(node, protocol::Cancel{a.op_id});
        break;
      case OpActionKind::kSendStopOp:
        SendTo(node, protocol::StopOp{a.op_id});
        break;
      case OpActionKind::kAckEvents:
        SendTo(node, protocol::Ack{a.op_id, a.seq, false});
        break;
      case OpActionKind::kFailDeployment:
        if (it != pending_.end() && !it->second->result) {
          it->second->result = Unavailable(a.message);
          it->second->cv.notify_all();
        }
        break;
      case OpActionKind::kDeliverEvent:
      case OpActionKind::kDropDuplicateEvent:
        break;
    }
  }
}

void NodeHub::Tick() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    tick_cv_.wait_for(lock, milliseconds(200));
    if (stopping_) break;
    auto now = clock_.Now();
    Apply(tracker_.Tick(now));
    protocol::Heartbeat beat{static_cast<std::uint64_t>(clock_.WallMillis()), {}};
    std::string beat_text = protocol::Encode(beat);
    long long wall = clock_.WallMillis();
    for (auto& [name, n] : nodes_) {
      if (!n->link) continue;
      long long expires = n->session ? n->session->credential_.expires_ms : 0;
      if (expires && wall >= expires) {
        n->link->Close(4004, "the enrollment token expired");
        continue;
      }
      if (now - n->last_heard > options_.silence) {
        if (std::exchange(n->silence_closed, true)) continue;  // said and done once
        spdlog::warn("node {}: silent for {} ms; closing its link", name, options_.silence.count());
        n->link->Close(4002, "no heartbeat");  // the link's close brings OnClose
        continue;
      }
      if (now - n->last_beat_sent >= options_.heartbeat) {
        n->link->Send(beat_text);
        n->last_beat_sent = now;
      }
    }
  }
}

// ---- calls ------------------------------------------------------------------------------

std::shared_ptr<NodeHub::Pending> NodeHub::Submit(const std::string& node, const std::string& kind,
                                                  json args, milliseconds deadline) {
  auto p = std::make_shared<Pending>();
  p->node = node;
  p->op_id = fmt::format("t{}.{}", options_.term, next_op_++);
  p->op = protocol::Op{p->op_id, options_.term, kind, std::move(args),
                       static_cast<std::uint64_t>(std::max<long long>(deadline.count(), 1))};
  if (stopping_) {
    p->result = Unavailable("the control plane is stopping");
    return p;
  }
  pending_[p->op_id] = p;
  // Nothing is sent to a node without a link: the op queues until it (re)connects.
  auto it = nodes_.find(node);
  if (it == nodes_.end() || !it->second->link) Apply(tracker_.NodeLost(node, clock_.Now()));
  Apply(tracker_.Submit(p->op_id, node, clock_.Now()));
  return p;
}

Result<json> NodeHub::Call(const std::string& node, const std::string& kind, json args,
                           milliseconds deadline, const OpSink& sink,
                           const std::atomic<bool>* cancel) {
  std::shared_ptr<Pending> p;
  {
    std::lock_guard lock(mu_);
    p = Submit(node, kind, std::move(args), deadline);
  }
  auto result = Wait(*p, sink, cancel);
  std::lock_guard lock(mu_);
  pending_.erase(p->op_id);
  auto state = tracker_.State(p->op_id);
  if (state && IsTerminal(*state)) tracker_.Forget(p->op_id);
  return result;
}

Result<json> NodeHub::Wait(Pending& p, const OpSink& sink, const std::atomic<bool>* cancel) {
  std::unique_lock lock(mu_);
  bool cancel_sent = false;
  while (true) {
    while (!p.events.empty()) {
      protocol::Event e = std::move(p.events.front());
      p.events.pop_front();
      if (!sink) continue;
      lock.unlock();
      sink(e.kind, e.data);
      lock.lock();
    }
    if (p.result) return std::move(*p.result);
    if (NodeGone(p)) return Unavailable("node " + p.node + " lost");
    if (cancel && cancel->load() && !cancel_sent) {
      cancel_sent = true;
      auto state = tracker_.State(p.op_id);
      Apply(tracker_.Cancel(p.op_id, clock_.Now()));
      if (state == OpState::kQueued) return Status(Code::kCancelled, "cancelled");
    }
    p.cv.wait_for(lock, milliseconds(50));
  }
}

// A call to a node that has been away for a whole lease (or was never seen for as long since
// the hub started) fails at once rather than waiting for it: the op was never sent (queued),
// or its own lease will end it anyway. Drops the op from the tracker when it gives up.
bool NodeHub::NodeGone(Pending& p) {
  auto it = nodes_.find(p.node);
  if (it != nodes_.end() && it->second->link) return false;
  auto since = it != nodes_.end() ? it->second->down_since : started_;
  if (clock_.Now() < since + options_.op_lease) return false;
  auto state = tracker_.State(p.op_id);
  if (state == OpState::kQueued) Apply(tracker_.Cancel(p.op_id, clock_.Now()));
  return !state || *state == OpState::kQueued;
}

Agent& NodeHub::AgentFor(const std::string& node) {
  std::lock_guard lock(mu_);
  auto& a = agents_[node];
  if (!a) a = MakeRemoteAgent(*this, node);
  return *a;
}

// ---- views ------------------------------------------------------------------------------

NodeView NodeHub::ViewOf(const Node& n) const {
  NodeView v;
  v.name = n.name;
  v.connected = n.link != nullptr;
  v.labels = n.hello.labels;
  v.address = n.address;
  v.agent_version = n.hello.agent_version;
  v.capabilities = n.hello.capabilities;
  v.connected_ms = n.connected_ms;
  v.last_heard_ms = n.last_heard_ms;
  v.clock_skew_ms = n.clock_skew_ms;
  v.token_id = n.owner_token;
  std::vector<std::pair<std::uint64_t, OpView>> ops;
  for (const auto& [id, p] : pending_) {
    if (p->node != n.name) continue;
    ++v.ops_in_flight;
    v.running.push_back(id);
    const TrackedOp* t = tracker_.Find(id);
    if (!t) continue;
    ops.emplace_back(t->submitted, OpView{id, p->op.kind, ToString(t->state), t->last_seq});
  }
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, op] : ops) v.ops.push_back(std::move(op));
  return v;
}

std::vector<NodeView> NodeHub::List() const {
  std::lock_guard lock(mu_);
  std::vector<NodeView> out;
  for (const auto& [name, n] : nodes_) out.push_back(ViewOf(*n));
  return out;
}

std::optional<NodeView> NodeHub::Get(const std::string& node) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return std::nullopt;
  return ViewOf(*it->second);
}

std::vector<std::string> NodeHub::Match(const std::vector<std::string>& labels,
                                        const std::set<std::string>& excluded) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, n] : nodes_) {
    if (n->link && !excluded.count(name) && HasLabels(n->hello.labels, labels)) out.push_back(name);
  }
  return out;
}

void NodeHub::Disconnect(const std::string& node, const std::string& reason) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it != nodes_.end() && it->second->link) it->second->link->Close(4003, reason);
}

}  // namespace slipway
