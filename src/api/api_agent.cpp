// The agents' door: GET /ws/agent upgrades to the agent protocol's WebSocket once the
// enrollment token checks out (docs/PROTOCOL.md). A refusal is answered before the upgrade,
// with 401 {error, detail}, and audited.
#include "agent/hub.h"
#include "api/api_internal.h"

namespace slipway::api {
namespace {

// The hub's view of one agent WebSocket.
class PeerLink final : public NodeLink {
 public:
  explicit PeerLink(std::shared_ptr<net::WebSocketPeer> peer) : peer_(std::move(peer)) {}
  bool Send(std::string text) override { return peer_->SendText(std::move(text)); }
  void Close(int code, std::string reason) override { peer_->Close(code, std::move(reason)); }
  std::string remote_address() const override { return peer_->remote_address(); }

 private:
  std::shared_ptr<net::WebSocketPeer> peer_;
};

// What the three callbacks of one connection share.
struct AgentConnection {
  std::mutex mu;
  std::shared_ptr<NodeHub::Session> session;
};

}  // namespace

HttpResponse Api::AgentSocket(HttpRequest& req) {
  if (req.method != "GET") return Error(405, "method_not_allowed", "agents connect with GET");
  if (!ctx_.hub) return Error(503, "unavailable", "this server takes no agents");
  auto token = auth_.AuthenticateNode(Bearer(req));
  if (!token.ok()) {
    AuditEvent e;
    e.actor = "anonymous";
    e.action = "node.connect";
    e.target = "ws/agent";
    e.detail_json = json{{"detail", token.status().message()}}.dump();
    e.source = req.remote;
    e.outcome = "denied: unauthorized";
    (void)ctx_.store.AppendAudit(e);
    return Error(token.status());
  }
  NodeHub* hub = ctx_.hub;
  auto conn = std::make_shared<AgentConnection>();
  auto handler = std::make_shared<net::WebSocketHandler>();
  handler->idle_timeout = std::chrono::seconds(30);
  handler->max_message = protocol::kMaxFrameBytes;
  NodeCredential credential{token->id, token->expires_ms};
  handler->on_open = [hub, conn, credential](std::shared_ptr<net::WebSocketPeer> peer) {
    std::lock_guard lock(conn->mu);
    conn->session = hub->Accept(std::make_shared<PeerLink>(std::move(peer)), false, credential);
  };
  handler->on_text = [conn](std::string text) {
    std::shared_ptr<NodeHub::Session> session;
    {
      std::lock_guard lock(conn->mu);
      session = conn->session;
    }
    if (session) session->OnText(text);
  };
  handler->on_close = [conn](int) {
    std::lock_guard lock(conn->mu);
    if (conn->session) conn->session->OnClose();
    conn->session.reset();
  };
  HttpResponse res;
  res.websocket = handler;
  return res;
}

}  // namespace slipway::api
