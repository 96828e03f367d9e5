#include "agent/in_process.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "agent/executor.h"
#include "agent/node_client.h"

namespace slipway {
namespace {

// Frames both ways, delivered in order by one thread so that neither side is ever called
// while the other holds its lock.
class Pipe final : public NodeLink {
 public:
  bool Send(std::string text) override {  // hub → node
    return Push(false, std::move(text));
  }
  void Close(int, std::string reason) override {
    std::lock_guard lock(mu_);
    if (!closed_) spdlog::warn("local node link closed: {}", reason);
    closed_ = true;
    cv_.notify_all();
  }
  std::string remote_address() const override { return "127.0.0.1"; }

  bool Push(bool to_hub, std::string text) {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    queue_.emplace_back(to_hub, std::move(text));
    cv_.notify_all();
    return true;
  }

  // Waits up to `wait` for the next frame; nullopt on timeout; `closed` once closed.
  std::optional<std::pair<bool, std::string>> Next(std::chrono::milliseconds wait, bool& closed) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, wait, [this] { return closed_ || !queue_.empty(); });
    closed = closed_;
    if (closed_ || queue_.empty()) return std::nullopt;
    auto front = std::move(queue_.front());
    queue_.pop_front();
    return front;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<bool, std::string>> queue_;  // (to the hub?, text)
  bool closed_ = false;
};

class Node final : public InProcessNode {
 public:
  Node(NodeHub& hub, InProcessNodeOptions o)
      : owned_(o.worker ? nullptr : MakeLocalAgent(o.data_dir, o.askpass, o.repos)),
        executor_(o.worker ? *o.worker : *owned_,
                  {o.data_dir, "", 4096, 64u << 20, std::chrono::seconds(2)}),
        client_(executor_, MakeHello(o)),
        pipe_(std::make_shared<Pipe>()),
        session_(hub.Accept(pipe_, o.name == "local")) {
    thread_ = std::thread([this] { Loop(); });
  }

  ~Node() override {
    pipe_->Close(1001, "the server is stopping");
    thread_.join();
    session_->OnClose();
  }

  bool WaitWelcomed(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return welcomed_; });
  }

 private:
  static protocol::Hello MakeHello(const InProcessNodeOptions& o) {
    protocol::Hello h;
    h.node = o.name;
    h.agent_version = "in-process";
    h.labels = o.labels;
    h.capabilities.runtimes = {"process", "container", "swarm"};
    h.capabilities.docker = true;
    h.capabilities.repos = RepoNames(o.repos);
    return h;
  }

  void Loop() {
    try {
      pipe_->Push(true, client_.Hello());
      Run();
    } catch (const std::exception& e) {
      spdlog::critical("local node pipe stopped: {}", e.what());
    }
  }

  void Run() {
    auto send = [pipe = pipe_](const std::string& text) { return pipe->Push(true, text); };
    bool closed = false;
    while (!closed) {
      auto next = pipe_->Next(std::chrono::milliseconds(200), closed);
      if (next && next->first) {
        session_->OnText(next->second);
      } else if (next) {
        if (auto s = client_.OnText(next->second, send); !s.ok())
          spdlog::error("local node: {}", s.message());
        Welcomed();
      }
      if (auto beat = client_.Heartbeat(std::chrono::steady_clock::now())) pipe_->Push(true, *beat);
    }
    client_.Disconnected();
  }

  void Welcomed() {
    if (!client_.welcomed()) return;
    std::lock_guard lock(mu_);
    welcomed_ = true;
    cv_.notify_all();
  }

  std::unique_ptr<Agent> owned_;
  OpExecutor executor_;
  NodeClient client_;
  std::shared_ptr<Pipe> pipe_;
  std::shared_ptr<NodeHub::Session> session_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool welcomed_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<InProcessNode> InProcessNode::Start(NodeHub& hub, InProcessNodeOptions options) {
  return std::make_unique<Node>(hub, std::move(options));
}

}  // namespace slipway
