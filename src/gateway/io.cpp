#include "gateway/io.h"

#include <sys/socket.h>

#include <cstring>

namespace slipway::gateway::io {

void Buffer::Consume(std::size_t n) {
  begin_ += n;
  if (begin_ >= end_) begin_ = end_ = 0;
}

asio::mutable_buffer Buffer::Prepare(std::size_t max_capacity) {
  if (!buf_) buf_.reset(new char[cap_]);
  if (begin_ > 0 && (end_ == cap_ || begin_ >= cap_ / 2)) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == cap_ && cap_ < max_capacity) {
    std::size_t grown = std::min(max_capacity, cap_ * 2);
    std::unique_ptr<char[]> bigger(new char[grown]);
    std::memcpy(bigger.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    buf_ = std::move(bigger);
    cap_ = grown;
  }
  return asio::buffer(buf_.get() + end_, cap_ - end_);
}

Deadline::Deadline(Loop& loop, tcp::socket* socket) : loop_(loop), socket_(socket) {
  next_ = loop_.deadlines;
  if (next_) next_->prev_ = this;
  loop_.deadlines = this;
}

Deadline::~Deadline() {
  if (prev_) prev_->next_ = next_;
  if (next_) next_->prev_ = prev_;
  if (loop_.deadlines == this) loop_.deadlines = next_;
}

void Deadline::Arm(std::chrono::milliseconds after, const std::atomic<bool>* cancel) {
  fired_ = false;
  at_ = loop_.now + after;
  cancel_ = cancel;
}

Loop::~Loop() {
  idle.clear();
}  // sockets close while ctx still exists

void Loop::SweepOnce(std::chrono::milliseconds pool_idle) {
  now = SteadyClock::now();
  for (Deadline* d = deadlines; d; d = d->next_) {
    if (!d->socket_) continue;
    bool cancelled = d->cancel_ && d->cancel_->load(std::memory_order_relaxed);
    if (d->at_ > now && !cancelled) continue;
    d->at_ = SteadyClock::time_point::max();
    d->cancel_ = nullptr;
    d->fired_ = true;
    boost::system::error_code ignored;
    d->socket_->close(ignored);
  }
  for (auto it = idle.begin(); it != idle.end();) {
    auto& conns = it->second;
    std::erase_if(conns, [&](const IdleConn& c) { return now - c.since > pool_idle; });
    it = conns.empty() ? idle.erase(it) : std::next(it);
  }
  if (on_sweep) on_sweep();
}

asio::awaitable<void> Loop::Sweep(std::chrono::milliseconds period,
                                  std::chrono::milliseconds pool_idle) {
  asio::steady_timer timer(ctx);
  for (;;) {
    timer.expires_after(period);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    SweepOnce(pool_idle);
  }
}

bool LooksReusable(tcp::socket& socket) {
  char byte;
  ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace slipway::gateway::io
