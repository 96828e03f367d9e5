#pragma once
// The proxy's I/O plumbing: one event loop per thread (its own connections, upstream pool
// and deadlines, so threads never share a scheduler or a lock), a growable byte buffer, and
// deadlines swept by the loop instead of a timer per operation.
//
// Thread-safety: everything here belongs to one loop and is used only on its thread.
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace slipway::gateway {
class RouteTable;
}

namespace slipway::gateway::io {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

// Bytes read but not yet used, in [begin, end) of one allocation, made on first use.
class Buffer {
 public:
  explicit Buffer(std::size_t initial = 16 * 1024) : cap_(initial) {}
  std::string_view data() const {
    return buf_ ? std::string_view{buf_.get() + begin_, end_ - begin_} : std::string_view{};
  }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  void Consume(std::size_t n);
  // Space to read into: compacts, and grows (doubling) up to `max_capacity`. Empty when the
  // buffer is full at that size.
  asio::mutable_buffer Prepare(std::size_t max_capacity);
  void Commit(std::size_t n) { end_ += n; }

 private:
  std::unique_ptr<char[]> buf_;
  std::size_t cap_;
  std::size_t begin_ = 0, end_ = 0;
};

struct Loop;

// A deadline on one socket: when it passes, the loop's sweeper closes the socket, so the
// pending operation fails and `fired()` tells the owner it was a timeout. Links itself into
// the loop's list; must not outlive the loop nor move.
class Deadline {
 public:
  Deadline(Loop& loop, tcp::socket* socket);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  void Watch(tcp::socket* socket) { socket_ = socket; }
  // From the loop's clock (≤ one sweep late). With `cancel`, the sweep also closes the
  // socket as soon as `*cancel` is true (which must outlive the arming).
  void Arm(std::chrono::milliseconds after, const std::atomic<bool>* cancel = nullptr);
  void Disarm() {
    at_ = SteadyClock::time_point::max();
    cancel_ = nullptr;
  }
  bool fired() const { return fired_; }

 private:
  friend struct Loop;
  Loop& loop_;
  tcp::socket* socket_;
  SteadyClock::time_point at_ = SteadyClock::time_point::max();
  const std::atomic<bool>* cancel_ = nullptr;
  bool fired_ = false;
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
};

// Idle upstream connections by "host:port", newest last.
struct IdleConn {
  tcp::socket socket;
  SteadyClock::time_point since;
};

struct Loop {
  explicit Loop(std::size_t index) : index(index) {}
  ~Loop();  // closes pooled connections first, while `ctx` still exists

  std::size_t index;
  SteadyClock::time_point now = SteadyClock::now();  // refreshed by each sweep
  // Declared before `ctx`: sessions destroyed with `ctx` unlink their deadlines from it.
  Deadline* deadlines = nullptr;   // intrusive list head
  std::function<void()> on_sweep;  // extra work per sweep (flushing the access log)
  asio::io_context ctx{1};
  std::unordered_map<std::string, std::vector<IdleConn>> idle;
  // The route table this loop last read and the router version it came with. Sessions copy
  // `table` (a holder owned by this loop, so the copy's reference count is never shared with
  // another thread) and keep it until their request ends.
  std::shared_ptr<const std::shared_ptr<const RouteTable>> table;
  std::uint64_t table_version = ~std::uint64_t{0};

  // Closes sockets whose deadline passed and pooled connections idle too long. Runs on
  // the loop every `period` until the loop stops.
  asio::awaitable<void> Sweep(std::chrono::milliseconds period,
                              std::chrono::milliseconds pool_idle);
  void SweepOnce(std::chrono::milliseconds pool_idle);
};

// A connected socket that the peer has not closed and that has no unread bytes: a pooled
// upstream connection safe to send a request on.
bool LooksReusable(tcp::socket& socket);

}  // namespace slipway::gateway::io
