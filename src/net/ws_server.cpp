#include "net/ws_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>

#include "net/ws_common.h"

namespace slipway::net::ws {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using WsStream = websocket::stream<beast::tcp_stream&, /*deflateSupported=*/false>;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::seconds kHandshakeTimeout{10};
// How long a peer gets to answer our close frame before its socket is closed: after a close
// of the application or of the protocol; and after Stop() or a full send queue (a peer that
// does not read will not answer either), where waiting longer helps nobody.
constexpr milliseconds kCloseGrace{5000};
constexpr milliseconds kPromptGrace{1000};
constexpr milliseconds kNever = std::chrono::hours(24 * 365);
// Messages are read in pieces of at most this size, so that max_message is enforced by the
// session (Beast's own limit would end the connection without draining it: a reset that can
// overtake the 1009 close frame) and a huge frame costs no memory.
constexpr std::size_t kReadPiece = 64 << 10;

class Session;

// The WebSocketPeer a handler gets, shared with its Session. Thread-safe: every member is
// guarded by mu_. The only I/O object it refers to is the connection's strand, and only
// between Attach() and Detach() (which the session calls before the server can go away), so a
// handler may keep it as long as it likes.
class Peer final : public WebSocketPeer, public std::enable_shared_from_this<Peer> {
 public:
  Peer(std::string remote, std::size_t max_queued)
      : remote_(std::move(remote)), max_queued_(max_queued) {}

  bool SendText(std::string text) override {
    std::lock_guard lock(mu_);
    if (!open_) return false;
    if (text.size() > max_queued_ - queued_) {
      auto reason = "send queue over " + std::to_string(max_queued_) + " bytes";
      RequestLocked(CloseRequest{1008, std::move(reason), kPromptGrace}, /*flush=*/false);
      return false;
    }
    queued_ += text.size();
    outbox_.push_back(std::move(text));
    WakeLocked();
    return true;
  }

  void Close(int code, std::string reason) override {
    std::lock_guard lock(mu_);
    CloseRequest request{SendableCloseCode(code), TruncateCloseReason(std::move(reason)),
                         kCloseGrace};
    RequestLocked(std::move(request), /*flush=*/true);
  }

  std::string remote_address() const override { return remote_; }

  // The connection's side. Attach and Detach run on its strand, and so does Session::Wake.
  void Attach(Session* session, asio::any_io_executor strand) {
    std::lock_guard lock(mu_);
    session_ = session;
    strand_ = std::move(strand);
  }
  // From now on the peer is inert: SendText false, Close nothing, no wake.
  void Detach() {
    std::lock_guard lock(mu_);
    open_ = false;
    outbox_.clear();
    session_ = nullptr;
    strand_.reset();
  }

  // Closes on the connection's behalf (Stop(), a protocol violation, a callback that threw):
  // what is still queued is dropped. The first close requested wins.
  void Abort(int code, std::string reason, milliseconds grace) {
    std::lock_guard lock(mu_);
    RequestLocked(CloseRequest{code, std::move(reason), grace}, /*flush=*/false);
  }

  struct Batch {
    std::deque<std::string> messages;
    std::optional<CloseRequest> close;  // given out once, after the messages queued before it
  };
  Batch Take() {
    std::lock_guard lock(mu_);
    Batch batch;
    batch.messages.swap(outbox_);
    if (close_ && !close_taken_) batch.close = close_;
    close_taken_ = close_.has_value();
    return batch;
  }
  // `bytes` of a taken message left the queue (written, or failed to be).
  void Sent(std::size_t bytes) {
    std::lock_guard lock(mu_);
    queued_ -= std::min(bytes, queued_);
  }
  std::optional<CloseRequest> close_request() const {
    std::lock_guard lock(mu_);
    return close_;
  }
  bool closing() const {
    std::lock_guard lock(mu_);
    return close_.has_value();
  }
  // A close that drops the queue was requested: the writer stops writing messages.
  bool dropping() const {
    std::lock_guard lock(mu_);
    return dropping_;
  }

 private:
  void RequestLocked(CloseRequest request, bool flush) {
    if (close_) return;
    open_ = false;
    close_ = std::move(request);
    if (!flush) {
      dropping_ = true;
      for (const auto& m : outbox_) queued_ -= m.size();
      outbox_.clear();
    }
    WakeLocked();
  }

  // One post per burst: the wake clears wake_posted_ before it looks at the queue.
  void WakeLocked();
  void OnWake();

  mutable std::mutex mu_;
  const std::string remote_;
  const std::size_t max_queued_;
  bool open_ = true;  // false once a close was requested or the connection ended
  std::deque<std::string> outbox_;
  std::size_t queued_ = 0;  // bytes in outbox_ plus those taken but not written yet
  std::optional<CloseRequest> close_;
  bool close_taken_ = false;
  bool dropping_ = false;
  bool wake_posted_ = false;
  Session* session_ = nullptr;  // between Attach and Detach
  std::optional<asio::any_io_executor> strand_;
};

// Runs `fn`, logging (never propagating) what it throws. False when it threw.
bool Guarded(const char* what, const std::string& remote, const std::function<void()>& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    spdlog::error("API websocket {} for {} threw: {}", what, remote, e.what());
  } catch (...) {
    spdlog::error("API websocket {} for {} threw a non-standard exception", what, remote);
  }
  return false;
}

websocket::stream_base::duration IdleTimeout(std::chrono::seconds idle) {
  if (idle.count() <= 0) return websocket::stream_base::none();
  return idle;
}

// One accepted connection, from the handshake to on_close. Lives in the frame of Serve(), on
// the connection's strand; every member is touched on that strand only. Three coroutines run
// the connection: the reader (frames in, on_text calls), the writer (the peer's queue out,
// then the close frame) and the watchdog (closes the socket when a close is not answered).
class Session {
 public:
  Session(beast::tcp_stream& stream, std::shared_ptr<WebSocketHandler> handler, std::string remote,
          ServerHooks hooks)
      : ws_(stream),
        handler_(std::move(handler)),
        peer_(std::make_shared<Peer>(std::move(remote), handler_->max_queued_bytes)),
        hooks_(std::move(hooks)),
        signal_(stream.get_executor()),
        closer_(stream.get_executor()) {
    closer_.expires_after(kNever);
  }

  asio::awaitable<bool> Accept(const UpgradeRequest& request, const Headers& headers) {
    websocket::stream_base::timeout timeouts{kHandshakeTimeout, IdleTimeout(handler_->idle_timeout),
                                             true};
    ws_.set_option(timeouts);
    ws_.read_message_max(0);  // the reader enforces max_message
    ws_.auto_fragment(false);
    auto decorate = [headers](websocket::response_type& res) {
      res.set(http::field::server, "slipway");
      for (const auto& [k, v] : headers) res.set(k, v);
    };
    ws_.set_option(websocket::stream_base::decorator(std::move(decorate)));
    auto [ec] = co_await ws_.async_accept(request, kTuple);
    if (ec) spdlog::debug("API websocket handshake with {} failed: {}", Remote(), ec.message());
    co_return !ec;
  }

  // on_open, the connection, on_close.
  asio::awaitable<void> Run() {
    {
      Attachment attached(*this);
      co_await Open();
      co_await RunLoops();
    }
    co_await Closed();
  }

  // There is something to send, or a close was requested (or both).
  void Wake() {
    woken_ = true;
    signal_.cancel();
    if (closer_armed_) return;
    if (auto close = peer_->close_request()) {
      closer_armed_ = true;
      closer_.expires_after(close->grace);  // wakes the watchdog, which waits again
    }
  }

 private:
  // Connects the peer to this session and the server's Stop() to the peer, while it lasts.
  class Attachment {
   public:
    explicit Attachment(Session& s) : s_(s) {
      s_.peer_->Attach(&s_, s_.ws_.get_executor());
      *s_.hooks_.stop_hook = [&s] { s.peer_->Abort(1001, "server stopping", kPromptGrace); };
    }
    ~Attachment() {
      *s_.hooks_.stop_hook = nullptr;
      s_.peer_->Detach();
    }
    Attachment(const Attachment&) = delete;
    Attachment& operator=(const Attachment&) = delete;

   private:
    Session& s_;
  };

  std::string Remote() const { return peer_->remote_address(); }

  // Runs `fn` on a worker; false when it threw.
  asio::awaitable<bool> Call(const char* what, std::function<void()> fn, bool always) {
    bool ok = true;
    std::function<void()> guarded = [&ok, what, &fn, remote = Remote()] {
      ok = Guarded(what, remote, fn);
    };
    co_await hooks_.on_worker(std::move(guarded), always);
    co_return ok;
  }

  asio::awaitable<void> Open() {
    if (!handler_->on_open) co_return;
    std::function<void()> call = [h = handler_, peer = peer_] { h->on_open(peer); };
    if (!co_await Call("on_open", std::move(call), true))
      peer_->Abort(1011, "internal error", kCloseGrace);
  }

  asio::awaitable<void> Closed() {
    if (!handler_->on_close) co_return;
    std::function<void()> call = [h = handler_, code = end_code_] { h->on_close(code); };
    co_await Call("on_close", std::move(call), true);
  }

  asio::awaitable<void> RunLoops() {
    auto ex = ws_.get_executor();
    auto group = asio::experimental::make_parallel_group(
        asio::co_spawn(ex, Reader(), asio::deferred), asio::co_spawn(ex, Writer(), asio::deferred),
        asio::co_spawn(ex, Watchdog(), asio::deferred));
    auto all = group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    auto [order, reader, writer, watchdog] = co_await std::move(all);
    (void)order;
    for (const auto& e : {reader, writer, watchdog}) LogFailure(e);
  }

  void LogFailure(const std::exception_ptr& e) const {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("API websocket for {} failed: {}", Remote(), ex.what());
    } catch (...) {
      spdlog::error("API websocket for {} failed with a non-standard exception", Remote());
    }
  }

  // Whatever way the reader leaves, the connection is over: the other two stop too.
  class EndOnExit {
   public:
    explicit EndOnExit(Session& s) : s_(s) {}
    ~EndOnExit() {
      s_.ended_ = true;
      s_.signal_.cancel();
      s_.closer_.cancel();
      s_.CloseSocket();
    }
    EndOnExit(const EndOnExit&) = delete;
    EndOnExit& operator=(const EndOnExit&) = delete;

   private:
    Session& s_;
  };

  // Collects each message in `buffer`, piece by piece, and hands it to on_text. Once a close
  // was requested, what comes is dropped (the peer's answer to the close ends the loop).
  asio::awaitable<void> Reader() {
    EndOnExit end(*this);
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws_.async_read_some(buffer, kReadPiece, kTuple);
      (void)n;
      if (ec) {
        end_code_ = EndCode(ec);
        co_return;
      }
      if (Acceptable(buffer) && ws_.is_message_done()) co_await OnMessage(buffer);
    }
  }

  // False (with `buffer` emptied) when the message being read is to be dropped: a close was
  // requested, or it is binary or too large (which requests one).
  bool Acceptable(beast::flat_buffer& buffer) {
    if (peer_->closing()) {
      // dropped
    } else if (!ws_.got_text()) {
      peer_->Abort(1003, "binary messages are not accepted", kCloseGrace);
    } else if (buffer.size() > handler_->max_message) {
      auto reason = "message over " + std::to_string(handler_->max_message) + " bytes";
      peer_->Abort(1009, std::move(reason), kCloseGrace);
    } else {
      return true;
    }
    buffer.consume(buffer.size());
    return false;
  }

  asio::awaitable<void> OnMessage(beast::flat_buffer& buffer) {
    std::string text = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (!handler_->on_text) co_return;
    std::function<void()> call = [this, &text] { handler_->on_text(std::move(text)); };
    if (!co_await Call("on_text", std::move(call), false))
      peer_->Abort(1011, "internal error", kCloseGrace);
  }

  // The code on_close gets (see net/http.h).
  int EndCode(const beast::error_code& ec) const {
    if (int received = static_cast<int>(ws_.reason().code); received != 0) return received;
    if (ec == websocket::error::closed) return 1005;
    if (ec == websocket::error::message_too_big) return 1009;  // Beast sent it (not expected)
    if (ec == websocket::error::bad_frame_payload) return 1007;
    if (ec == websocket::condition::protocol_violation) return 1002;
    if (auto close = peer_->close_request()) return close->code;
    return 1006;
  }

  asio::awaitable<void> Writer() {
    while (!ended_) {
      woken_ = false;
      auto batch = peer_->Take();
      if (!co_await WriteAll(batch.messages)) co_return;
      if (batch.close && !ended_) {
        co_await SendClose(*batch.close);
        co_return;
      }
      if (!woken_ && !ended_) {
        signal_.expires_after(kNever);
        co_await signal_.async_wait(kTuple);
      }
    }
  }

  // False when the connection failed. A write that fails because Beast is already closing
  // leaves the socket to the reader, which is finishing that close.
  asio::awaitable<bool> WriteAll(const std::deque<std::string>& messages) {
    for (const auto& m : messages) {
      if (ended_ || peer_->dropping()) co_return true;
      auto [ec, n] = co_await ws_.async_write(asio::buffer(m), kTuple);
      (void)n;
      peer_->Sent(m.size());
      if (ec) {
        if (ec != asio::error::operation_aborted) CloseSocket();
        co_return false;
      }
    }
    co_return true;
  }

  // The close handshake: our frame out, the peer's answer in (read by the reader, or by
  // Beast while the reader waits for on_text). Bounded by the watchdog.
  asio::awaitable<void> SendClose(const CloseRequest& close) {
    websocket::close_reason reason(static_cast<websocket::close_code>(close.code),
                                   TruncateCloseReason(close.reason));
    auto [ec] = co_await ws_.async_close(reason, kTuple);
    (void)ec;  // the reader sees how the connection ended
  }

  asio::awaitable<void> Watchdog() {
    while (!ended_) {
      co_await closer_.async_wait(kTuple);
      if (!ended_ && closer_armed_ && SteadyClock::now() >= closer_.expiry()) {
        spdlog::debug("API websocket for {}: close not answered in time", Remote());
        CloseSocket();
        co_return;
      }
    }
  }

  void CloseSocket() {
    beast::error_code ec;
    ws_.next_layer().socket().close(ec);
  }

  WsStream ws_;
  std::shared_ptr<WebSocketHandler> handler_;
  std::shared_ptr<Peer> peer_;
  ServerHooks hooks_;
  asio::steady_timer signal_;  // the writer sleeps on it; Wake() and the end cancel it
  asio::steady_timer closer_;  // the watchdog's deadline, armed by the first close request
  bool woken_ = false;         // a wake came since the writer last took the queue
  bool ended_ = false;         // the reader is done: the connection is over
  bool closer_armed_ = false;
  int end_code_ = 1006;
};

void Peer::WakeLocked() {
  if (wake_posted_ || !strand_) return;
  wake_posted_ = true;
  asio::post(*strand_, [self = shared_from_this()] { self->OnWake(); });
}

void Peer::OnWake() {
  Session* session = nullptr;
  {
    std::lock_guard lock(mu_);
    wake_posted_ = false;
    session = session_;
  }
  // session_ changes on this strand only, so it cannot go away before Wake() returns.
  if (session) session->Wake();
}

bool IsWebSocketKey(std::string_view key) {
  // Base64 of 16 bytes: 22 characters and "==".
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char ch : key.substr(0, 22)) {
    bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::optional<Refusal> CheckUpgrade(const UpgradeRequest* request) {
  const Headers wanted{{"Upgrade", "websocket"}, {"Sec-WebSocket-Version", "13"}};
  if (!request || !http::token_list((*request)[http::field::upgrade]).exists("websocket") ||
      !http::token_list((*request)[http::field::connection]).exists("upgrade")) {
    return Refusal{426, "upgrade_required",
                   "this resource speaks WebSocket only: send a GET with Upgrade: websocket "
                   "and Connection: Upgrade",
                   wanted};
  }
  if (request->method() != http::verb::get || request->version() < 11)
    return Refusal{400, "bad_request", "a WebSocket upgrade must be an HTTP/1.1 GET", {}};
  if ((*request)[http::field::sec_websocket_version] != "13") {
    return Refusal{426, "upgrade_required",
                   "unsupported Sec-WebSocket-Version (this server speaks 13)", wanted};
  }
  if (!IsWebSocketKey((*request)[http::field::sec_websocket_key]))
    return Refusal{400, "bad_request", "missing or malformed Sec-WebSocket-Key", {}};
  return std::nullopt;
}

asio::awaitable<void> Serve(beast::tcp_stream& stream, const UpgradeRequest& request,
                            const Headers& headers, std::shared_ptr<WebSocketHandler> handler,
                            std::string remote, ServerHooks hooks) {
  try {
    Session session(stream, std::move(handler), std::move(remote), std::move(hooks));
    if (co_await session.Accept(request, headers)) co_await session.Run();
  } catch (const std::exception& e) {
    spdlog::error("API websocket failed: {}", e.what());
  } catch (...) {
    spdlog::error("API websocket failed with a non-standard exception");
  }
}

}  // namespace slipway::net::ws
