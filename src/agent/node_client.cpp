#include "agent/node_client.h"

#include <spdlog/spdlog.h>

namespace slipway {

std::string NodeClient::Hello() {
  protocol::Hello h = hello_;
  h.last_seq = executor_.LastSeq();
  return protocol::Encode(h);
}

Status NodeClient::OnText(const std::string& text, const OpExecutor::Send& send) {
  auto frame = protocol::Decode(text);
  if (!frame.ok()) {
    if (protocol::IsUnknownType(frame.status())) {
      spdlog::info("agent: ignoring a frame: {}", frame.status().message());
      return Status::Ok();
    }
    return frame.status();
  }
  if (const auto* w = std::get_if<protocol::Welcome>(&*frame)) {
    if (w->term < executor_.term())
      return Conflict("the control plane's term " + std::to_string(w->term) +
                      " is older than one already seen (" + std::to_string(executor_.term()) +
                      "): a deposed control plane");
    welcomed_ = true;
    node_id_ = w->node_id;
    heartbeat_ = std::chrono::milliseconds(w->heartbeat_ms);
    silence_ = std::chrono::milliseconds(w->lease_ms);
    executor_.OnFrame(*frame);
    executor_.Connected(send);
    return Status::Ok();
  }
  if (!welcomed_) return Invalid("expected a welcome first");
  if (std::holds_alternative<protocol::Heartbeat>(*frame)) return Status::Ok();
  executor_.OnFrame(*frame);
  return Status::Ok();
}

std::optional<std::string> NodeClient::Heartbeat(std::chrono::steady_clock::time_point now) {
  if (!welcomed_ || now - last_beat_ < heartbeat_) return std::nullopt;
  last_beat_ = now;
  auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  protocol::Heartbeat h{static_cast<std::uint64_t>(wall.count()), executor_.Running()};
  return protocol::Encode(h);
}

void NodeClient::Disconnected() {
  welcomed_ = false;
  executor_.Disconnected();
}

}  // namespace slipway
