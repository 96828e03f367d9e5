#pragma once
// The node's half of one connection, whatever carries it (WebSocket or in-process pipe): the
// hello, the welcome, heartbeats, and handing every other frame to the OpExecutor.
//
// Thread-safety: OnText, Heartbeat and Disconnected are called by the connection's owner, one
// at a time.
#include <chrono>
#include <optional>
#include <string>

#include "agent/executor.h"
#include "core/protocol.h"

namespace slipway {

class NodeClient {
 public:
  // `hello` is sent as is, with last_seq filled in from the executor.
  NodeClient(OpExecutor& executor, protocol::Hello hello)
      : executor_(executor), hello_(std::move(hello)) {}

  // The first frame of a connection.
  std::string Hello();
  // One received frame. The welcome connects the executor to `send`. A failure means the
  // connection must close (its message is the reason; kConflict: unsupported version).
  Status OnText(const std::string& text, const OpExecutor::Send& send);
  // A heartbeat frame when one is due (every heartbeat_ms after the welcome), else nullopt.
  std::optional<std::string> Heartbeat(std::chrono::steady_clock::time_point now);
  void Disconnected();

  bool welcomed() const { return welcomed_; }
  std::chrono::milliseconds heartbeat() const { return heartbeat_; }
  // How long the control plane may stay silent before the connection is given up.
  std::chrono::milliseconds silence() const { return silence_; }
  const std::string& node_id() const { return node_id_; }

 private:
  OpExecutor& executor_;
  protocol::Hello hello_;
  bool welcomed_ = false;
  std::string node_id_;
  std::chrono::milliseconds heartbeat_{5000};
  std::chrono::milliseconds silence_{15000};
  std::chrono::steady_clock::time_point last_beat_{};
};

}  // namespace slipway
