#include "net/ws_client.h"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <type_traits>

#include "net/client_common.h"
#include "net/ws_common.h"

namespace slipway::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using ws::CloseRequest;
using PlainWs = websocket::stream<beast::tcp_stream, /*deflateSupported=*/false>;
using TlsWs = websocket::stream<ssl::stream<beast::tcp_stream>, /*deflateSupported=*/false>;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr milliseconds kNever = std::chrono::hours(24 * 365);
// The destructor's wait for the close handshake, before it cuts the connection.
constexpr milliseconds kCloseGrace{3000};
// While the reader is paused (the inbox is full), how often it looks whether the connection
// died meanwhile (an idle timeout, say).
constexpr milliseconds kPausePoll{1000};
// Messages are read in pieces of at most this size, so that max_message is enforced here
// (Beast's own limit would end the connection without draining it) and a huge frame costs no
// memory.
constexpr std::size_t kReadPiece = 64 << 10;

// ---------------------------------------------------------------------------------------------
// URLs

using WsUrl = client::UrlTarget;

Status BadUrl(const std::string& url, const std::string& why) {
  return Invalid("bad WebSocket URL '" + url + "': " + why);
}

Result<WsUrl> ParseWsUrl(const std::string& url) {
  WsUrl out;
  std::string_view rest(url);
  if (client::HasSpaceOrControl(rest)) return BadUrl(url, "spaces or control characters");
  if (rest.starts_with("ws://")) {
    rest.remove_prefix(5);
  } else if (rest.starts_with("wss://")) {
    out.tls = true;
    rest.remove_prefix(6);
  } else {
    return BadUrl(url, "the scheme must be ws:// or wss://");
  }
  if (Status s = client::ParseAfterScheme(rest, out); !s.ok()) return BadUrl(url, s.message());
  return out;
}

// ---------------------------------------------------------------------------------------------
// What the application's threads and the I/O thread share.

// The outgoing and incoming queues and the connection's state. Thread-safe (mu_). The I/O
// side is told of new work through `wake` (called under the lock, once per burst).
class Mailbox {
 public:
  explicit Mailbox(std::size_t max_queued) : max_queued_(max_queued) {}

  // --- the application's side

  bool Send(std::string text) {
    std::lock_guard lock(mu_);
    if (state_ != State::kOpen || close_ || text.size() > max_queued_ - out_bytes_) return false;
    out_bytes_ += text.size();
    outbox_.push_back(std::move(text));
    WakeLocked();
    return true;
  }

  Result<std::string> Receive(milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::clamp(timeout, milliseconds(0), kNever),
                 [this] { return !inbox_.empty() || state_ == State::kEnded; });
    if (inbox_.empty() && state_ == State::kEnded) return end_;
    if (inbox_.empty())
      return Status(Code::kTimeout, "no message within " + std::to_string(timeout.count()) + " ms");
    std::string message = std::move(inbox_.front());
    inbox_.pop_front();
    in_bytes_ -= message.size();
    if (paused_ && in_bytes_ < max_queued_) {
      paused_ = false;
      WakeLocked();
    }
    return message;
  }

  // The first request wins; what is queued before it is sent first.
  void RequestClose(CloseRequest request) {
    std::lock_guard lock(mu_);
    if (close_) return;
    close_ = std::move(request);
    WakeLocked();
  }

  bool open() const {
    std::lock_guard lock(mu_);
    return state_ == State::kOpen && !close_;
  }

  // OK once the connection is open; the reason when it could not be opened.
  Status WaitOpen(milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return state_ != State::kConnecting; });
    if (was_open_) return Status::Ok();
    if (state_ == State::kEnded) return end_;
    return Unavailable("no WebSocket connection within " + std::to_string(timeout.count()) + " ms");
  }

  bool WaitEnded(milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return state_ == State::kEnded; });
  }

  // --- the I/O side

  void SetWake(std::function<void()> wake) {
    std::lock_guard lock(mu_);
    wake_ = std::move(wake);
    wake_posted_ = false;
  }
  // The I/O side got the wake: the next change wakes it again.
  void WakeSeen() {
    std::lock_guard lock(mu_);
    wake_posted_ = false;
  }

  void Opened() {
    std::lock_guard lock(mu_);
    if (state_ != State::kConnecting) return;
    state_ = State::kOpen;
    was_open_ = true;
    cv_.notify_all();
  }

  // The connection is over (or never opened) because of `why`. The first call wins.
  void Ended(Status why) {
    std::lock_guard lock(mu_);
    if (state_ == State::kEnded) return;
    state_ = State::kEnded;
    end_ = std::move(why);
    outbox_.clear();
    cv_.notify_all();
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
  void Sent(std::size_t bytes) {
    std::lock_guard lock(mu_);
    out_bytes_ -= std::min(bytes, out_bytes_);
  }
  bool closing() const {
    std::lock_guard lock(mu_);
    return close_.has_value();
  }

  void Deliver(std::string message) {
    std::lock_guard lock(mu_);
    in_bytes_ += message.size();
    inbox_.push_back(std::move(message));
    cv_.notify_all();
  }
  // Whether the reader may read another message; when not, Receive wakes it once there is.
  // One message always fits, whatever max_queued_bytes says.
  bool HasRoom() {
    std::lock_guard lock(mu_);
    paused_ = !inbox_.empty() && in_bytes_ >= max_queued_;
    return !paused_;
  }

 private:
  enum class State { kConnecting, kOpen, kEnded };

  void WakeLocked() {
    if (wake_posted_ || !wake_) return;
    wake_posted_ = true;
    wake_();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  const std::size_t max_queued_;
  State state_ = State::kConnecting;
  bool was_open_ = false;
  Status end_;
  std::deque<std::string> outbox_;
  std::size_t out_bytes_ = 0;  // queued, or taken and not written yet
  std::optional<CloseRequest> close_;
  bool close_taken_ = false;
  std::deque<std::string> inbox_;
  std::size_t in_bytes_ = 0;
  bool paused_ = false;  // the reader waits for Receive to make room
  std::function<void()> wake_;
  bool wake_posted_ = false;
};

// ---------------------------------------------------------------------------------------------
// The connection on the I/O thread

// The "detail" of an API error body, or "".
std::string ErrorDetail(const std::string& body) {
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("detail") || !json["detail"].is_string()) return "";
  return json["detail"].get<std::string>();
}

websocket::stream_base::duration IdleTimeout(milliseconds idle) {
  if (idle.count() <= 0) return websocket::stream_base::none();
  return idle;
}

class Link {
 public:
  virtual ~Link() = default;
  // Connects, then runs the connection until it ends; reports both to the mailbox.
  virtual asio::awaitable<void> Run() = 0;
  // Cuts the connection (or the attempt) at once. I/O thread.
  virtual void Abort() = 0;
};

// One connection over `Ws` (plain or TLS). Every member is touched on the I/O thread only
// (one thread: the implicit strand that serializes the reader, the writer and the wakes).
template <typename Ws>
class LinkOver final : public Link {
 public:
  static constexpr bool kTls = !std::is_same_v<Ws, PlainWs>;

  template <typename... StreamArgs>
  LinkOver(Mailbox& box, const WsClientOptions& options, WsUrl url, StreamArgs&&... args)
      : ws_(std::forward<StreamArgs>(args)...),
        box_(box),
        options_(options),
        url_(std::move(url)),
        resolver_(ws_.get_executor()),
        deadline_(ws_.get_executor()),
        signal_(ws_.get_executor()),
        room_(ws_.get_executor()) {
    auto ex = ws_.get_executor();
    box_.SetWake([this, ex] { asio::post(ex, [this] { OnWake(); }); });
  }
  ~LinkOver() override { box_.SetWake(nullptr); }

  asio::awaitable<void> Run() override {
    Status opened = co_await Open();
    if (!opened.ok()) {
      box_.Ended(std::move(opened));
      co_return;
    }
    websocket::stream_base::timeout timeouts{options_.connect_timeout,
                                             IdleTimeout(options_.idle_timeout), true};
    ws_.set_option(timeouts);
    box_.Opened();
    co_await RunLoops();
    box_.Ended(Unavailable(end_));
  }

  void Abort() override {
    aborted_ = true;
    resolver_.cancel();
    signal_.cancel();
    room_.cancel();
    CloseSocket();
  }

 private:
  void OnWake() {
    box_.WakeSeen();
    writer_woken_ = true;
    signal_.cancel();
    room_.cancel();
  }

  void CloseSocket() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  // Resolve, connect, TLS, upgrade: all within connect_timeout.
  asio::awaitable<Status> Open() {
    const auto deadline = SteadyClock::now() + options_.connect_timeout;
    deadline_.expires_at(deadline);
    auto on_deadline = [this](beast::error_code ec) {
      if (ec || !connecting_) return;
      timed_out_ = true;
      Abort();
    };
    deadline_.async_wait(std::move(on_deadline));
    Status s = co_await Handshake(deadline);
    connecting_ = false;
    deadline_.cancel();
    co_return !s.ok() && timed_out_ ? TimedOut() : s;
  }

  Status TimedOut() const {
    return Unavailable("no WebSocket connection to " + url_.Authority() + " within " +
                       std::to_string(options_.connect_timeout.count()) + " ms");
  }

  asio::awaitable<Status> Handshake(SteadyClock::time_point deadline) {
    std::string port = std::to_string(url_.port);
    auto [rec, endpoints] = co_await resolver_.async_resolve(url_.host, port, kTuple);
    if (rec) co_return Unavailable("cannot resolve '" + url_.host + "': " + rec.message());
    auto& tcp = beast::get_lowest_layer(ws_);
    tcp.expires_at(deadline);
    auto [cec, endpoint] = co_await tcp.async_connect(endpoints, kTuple);
    (void)endpoint;
    if (cec) co_return Unavailable("cannot connect to " + url_.Authority() + ": " + cec.message());
    if constexpr (kTls) {
      Status s = co_await TlsHandshake();
      if (!s.ok()) co_return s;
    }
    tcp.expires_never();  // from now on the WebSocket's own timeouts apply
    co_return co_await Upgrade(deadline);
  }

  asio::awaitable<Status> TlsHandshake() {
    auto& tls = ws_.next_layer();
    if (Status s = client::ConfigureTls(tls.native_handle(), url_.host); !s.ok()) co_return s;
    auto [ec] = co_await tls.async_handshake(ssl::stream_base::client, kTuple);
    if (!ec) co_return Status::Ok();
    co_return Unavailable("TLS handshake with " + url_.Authority() +
                          " failed: " + client::TlsFailure(ec, tls.native_handle()));
  }

  asio::awaitable<Status> Upgrade(SteadyClock::time_point deadline) {
    auto left = std::max<SteadyClock::duration>(deadline - SteadyClock::now(), milliseconds(1));
    websocket::stream_base::timeout timeouts{left, websocket::stream_base::none(), false};
    ws_.set_option(timeouts);
    ws_.read_message_max(0);  // the reader enforces max_message
    ws_.auto_fragment(false);
    ws_.text(true);
    auto decorate = [headers = options_.headers](websocket::request_type& req) {
      req.set(http::field::user_agent, "slipway");
      for (const auto& [k, v] : headers) req.set(k, v);
    };
    ws_.set_option(websocket::stream_base::decorator(std::move(decorate)));
    websocket::response_type res;
    std::string host = url_.HostHeader();
    auto [ec] = co_await ws_.async_handshake(res, host, url_.target, kTuple);
    if (!ec) co_return Status::Ok();
    if (res.result_int() != 0 && res.result_int() != 101) co_return Declined(res);
    if (ec == beast::error::timeout) co_return TimedOut();
    co_return Unavailable("WebSocket handshake with " + url_.Authority() +
                          " failed: " + ec.message());
  }

  Status Declined(const websocket::response_type& res) const {
    int status = static_cast<int>(res.result_int());
    std::string line = std::to_string(status) + " " + std::string(res.reason());
    std::string detail = ErrorDetail(res.body());
    if (status == 401 || status == 403)
      return Status(Code::kUnauthorized, detail.empty() ? line : detail);
    return Unavailable(url_.Authority() + " answered the WebSocket upgrade with " + line +
                       (detail.empty() ? "" : ": " + detail));
  }

  asio::awaitable<void> RunLoops() {
    auto ex = ws_.get_executor();
    auto group = asio::experimental::make_parallel_group(
        asio::co_spawn(ex, Reader(), asio::deferred), asio::co_spawn(ex, Writer(), asio::deferred));
    auto all = group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    auto [order, reader, writer] = co_await std::move(all);
    (void)order;
    for (const auto& e : {reader, writer}) {
      if (!e) continue;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("WebSocket client for {} failed: {}", url_.Authority(), ex.what());
      } catch (...) {
        spdlog::error("WebSocket client for {} failed", url_.Authority());
      }
    }
  }

  // Whatever way the reader leaves, the connection is over: the writer stops too.
  class EndOnExit {
   public:
    explicit EndOnExit(LinkOver& l) : l_(l) {}
    ~EndOnExit() {
      l_.ended_ = true;
      if (l_.end_.empty()) l_.end_ = "connection to " + l_.url_.Authority() + " ended";
      l_.signal_.cancel();
      l_.room_.cancel();
      l_.CloseSocket();
    }
    EndOnExit(const EndOnExit&) = delete;
    EndOnExit& operator=(const EndOnExit&) = delete;

   private:
    LinkOver& l_;
  };

  // Collects each message in `buffer`, piece by piece, into the mailbox; before a message
  // it waits while the mailbox is full.
  asio::awaitable<void> Reader() {
    EndOnExit end(*this);
    beast::flat_buffer buffer;
    for (bool boundary = true;;) {
      if (boundary && !co_await WaitForRoom()) continue;
      auto [ec, n] = co_await ws_.async_read_some(buffer, kReadPiece, kTuple);
      (void)n;
      if (ec) {
        end_ = Describe(ec);
        co_return;
      }
      boundary = ws_.is_message_done();
      if (Acceptable(buffer) && boundary) {
        box_.Deliver(beast::buffers_to_string(buffer.data()));
        buffer.consume(buffer.size());
      }
      if (boundary) discarding_ = false;
    }
  }

  // False (with `buffer` emptied) while the message being read is dropped: a binary or too
  // large one, which requests a close (1003, 1009).
  bool Acceptable(beast::flat_buffer& buffer) {
    if (!discarding_ && !ws_.got_text()) {
      box_.RequestClose(CloseRequest{1003, "binary messages are not accepted"});
      discarding_ = true;
    } else if (!discarding_ && buffer.size() > options_.max_message) {
      auto reason = "message over " + std::to_string(options_.max_message) + " bytes";
      box_.RequestClose(CloseRequest{1009, std::move(reason)});
      discarding_ = true;
    }
    if (!discarding_) return true;
    buffer.consume(buffer.size());
    return false;
  }

  // True when the reader may read on: there is room in the inbox, or the connection is going
  // away anyway (reading then finishes it). Else it waits until a wake (posted, so it cannot
  // come between the check and the wait) or kPausePoll, and returns false.
  asio::awaitable<bool> WaitForRoom() {
    if (aborted_ || !ws_.is_open() || box_.HasRoom()) co_return true;
    room_.expires_after(kPausePoll);
    co_await room_.async_wait(kTuple);
    co_return false;
  }

  // Why the connection ended, for Receive.
  std::string Describe(const beast::error_code& ec) const {
    const auto& reason = ws_.reason();
    if (reason.code != websocket::close_code::none) {
      std::string text = ws::DescribeCloseCode(static_cast<int>(reason.code));
      if (!reason.reason.empty())
        text += ": " + std::string(reason.reason.data(), reason.reason.size());
      return (box_.closing() ? "connection closed with " : "the server closed the connection: ") +
             text;
    }
    if (ec == websocket::error::closed) return "the server closed the connection (no code)";
    if (ec == beast::error::timeout && !aborted_) {
      return "no traffic from " + url_.Authority() + " within idle_timeout or the close timeout";
    }
    if (aborted_) return "connection to " + url_.Authority() + " cut (close not answered in time)";
    return "connection to " + url_.Authority() + " lost: " + ec.message();
  }

  asio::awaitable<void> Writer() {
    while (!ended_) {
      writer_woken_ = false;
      auto batch = box_.Take();
      if (!co_await WriteAll(batch.messages)) co_return;
      if (batch.close && !ended_) {
        co_await SendClose(*batch.close);
        co_return;
      }
      if (!writer_woken_ && !ended_) {
        signal_.expires_after(kNever);
        co_await signal_.async_wait(kTuple);
      }
    }
  }

  // False when the connection failed. A write that fails because Beast is already closing
  // leaves the socket to the reader, which is finishing that close.
  asio::awaitable<bool> WriteAll(const std::deque<std::string>& messages) {
    for (const auto& m : messages) {
      if (ended_) co_return true;
      auto [ec, n] = co_await ws_.async_write(asio::buffer(m), kTuple);
      (void)n;
      box_.Sent(m.size());
      if (ec) {
        if (ec != asio::error::operation_aborted) CloseSocket();
        co_return false;
      }
    }
    co_return true;
  }

  // The reader may be paused (inbox full): it is woken before and after, so that it reads
  // again once the stream is no longer open, which ends it.
  asio::awaitable<void> SendClose(const CloseRequest& close) {
    websocket::close_reason reason(static_cast<websocket::close_code>(close.code), close.reason);
    room_.cancel();
    auto [ec] = co_await ws_.async_close(reason, kTuple);
    (void)ec;  // the reader tells how the connection ended
    room_.cancel();
  }

  Ws ws_;
  Mailbox& box_;
  const WsClientOptions& options_;
  const WsUrl url_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer deadline_;  // of Open()
  asio::steady_timer signal_;    // the writer sleeps on it
  asio::steady_timer room_;      // a paused reader sleeps on it
  bool connecting_ = true;
  bool timed_out_ = false;
  bool aborted_ = false;
  bool writer_woken_ = false;  // a wake came since the writer last took the queue
  bool discarding_ = false;    // the rest of the message being read is dropped
  bool ended_ = false;
  std::string end_;  // why the connection ended
};

// Runs the loop until it is stopped (at the end of the connection) or out of work; what
// escapes a handler is logged.
void RunIo(asio::io_context& ioc) {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("WebSocket client thread: unexpected exception: {}", e.what());
    } catch (...) {
      spdlog::error("WebSocket client thread: unexpected non-standard exception");
    }
  }
}

class WsClientImpl final : public WsClient {
 public:
  WsClientImpl(const WsClientOptions& options, WsUrl url)
      : options_(options), url_(std::move(url)), box_(options.max_queued_bytes) {}

  // Ends the connection as the header says, then joins the I/O thread (which returns once
  // the connection's coroutines are done) before anything they use is destroyed. The
  // abort is posted in vain when the loop has stopped already, but then nothing is left to
  // abort.
  ~WsClientImpl() override {
    box_.RequestClose(CloseRequest{1000, ""});
    if (!box_.WaitEnded(kCloseGrace) && link_)
      asio::post(ioc_, [link = link_.get()] { link->Abort(); });
    if (thread_.joinable()) thread_.join();
  }

  // Starts the I/O thread and waits until the connection is open or could not be.
  Status Start() {
    if (Status s = MakeLink(); !s.ok()) return s;
    // Once the connection is over the loop stops, though Beast may still have a timer
    // pending on it (those handlers are dropped with the loop).
    auto done = [this](std::exception_ptr e) {
      if (e) box_.Ended(Unavailable("WebSocket client failed unexpectedly"));
      ioc_.stop();
    };
    asio::co_spawn(ioc_, link_->Run(), std::move(done));
    thread_ = std::thread([this] { RunIo(ioc_); });
    // The connection enforces connect_timeout itself; this is only a backstop.
    return box_.WaitOpen(options_.connect_timeout + std::chrono::seconds(5));
  }

  bool SendText(std::string text) override { return box_.Send(std::move(text)); }
  Result<std::string> Receive(milliseconds timeout) override { return box_.Receive(timeout); }
  void Close(int code, std::string reason) override {
    CloseRequest request{ws::SendableCloseCode(code), ws::TruncateCloseReason(std::move(reason))};
    box_.RequestClose(std::move(request));
  }
  bool open() const override { return box_.open(); }

 private:
  Status MakeLink() {
    if (!url_.tls) {
      link_ = std::make_unique<LinkOver<PlainWs>>(box_, options_, url_, ioc_);
      return Status::Ok();
    }
    auto ctx = client::MakeTlsContext(options_.ca_file);
    if (!ctx.ok()) return ctx.status();
    tls_ = std::move(ctx).value();
    link_ = std::make_unique<LinkOver<TlsWs>>(box_, options_, url_, ioc_, *tls_);
    return Status::Ok();
  }

  // Declared in the order they may be destroyed in reverse: the link (streams, timers) uses
  // the TLS context, the mailbox and the loop.
  const WsClientOptions options_;
  const WsUrl url_;
  asio::io_context ioc_{1};
  Mailbox box_;
  std::unique_ptr<ssl::context> tls_;
  std::unique_ptr<Link> link_;
  std::thread thread_;
};

// CR or LF in a header would split the request.
bool SafeHeaders(const WsClientOptions& options) {
  return std::none_of(options.headers.begin(), options.headers.end(), [](const auto& h) {
    auto bad = [](const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; };
    return h.first.empty() || bad(h.first) || bad(h.second);
  });
}

}  // namespace

Result<std::unique_ptr<WsClient>> WsClient::Connect(const WsClientOptions& options) {
  try {
    auto url = ParseWsUrl(options.url);
    if (!url.ok()) return url.status();
    if (!SafeHeaders(options))
      return Invalid("bad WebSocket request header (empty name, CR or LF)");
    auto client = std::make_unique<WsClientImpl>(options, std::move(url).value());
    if (Status s = client->Start(); !s.ok()) return s;
    return std::unique_ptr<WsClient>(std::move(client));
  } catch (const std::exception& e) {
    return Unavailable(std::string("WebSocket client: ") + e.what());
  } catch (...) {
    return Unavailable("WebSocket client: unexpected failure");
  }
}

}  // namespace slipway::net
