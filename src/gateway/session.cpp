#include "gateway/session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <charconv>

#include "gateway/heads.h"
#include "gateway/resolve.h"

namespace slipway::gateway {
namespace {

namespace asio = io::asio;
using io::SteadyClock;
using io::tcp;
using Mode = AppGate::Mode;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kBodyChunk = 64 * 1024;
constexpr std::string_view kUpPath = "/_slipway/up";
constexpr int kMaxInterim = 16;   // 1xx responses before the final one
constexpr int kMalformed = 1502;  // ReadResponseHead: a 502 for a malformed response

std::string_view Title(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

std::string_view PathOnly(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// What the session keeps of a request once its head bytes are reused for the body.
struct Facts {
  std::string method, host, path;
  std::string upgrade_offer;   // the request's Upgrade value, when it asked to upgrade
  std::string sandbox, trace;  // for the request tap, copied only while one is set
  int minor = 1;
  bool head = false, idempotent = false, expect = false, upgrade = false, keep_alive = true;
  http1::Framing framing = http1::Framing::kNone;
  std::uint64_t length = 0;
};

// Progress of a body through the proxy.
struct BodyState {
  http1::Framing framing = http1::Framing::kNone;
  std::uint64_t remaining = 0;  // kLength
  http1::ChunkedScanner chunks;
  std::uint64_t bytes = 0;       // framing included
  std::uint64_t data_bytes = 0;  // the body itself (what max_body limits)
  bool done = false, error = false;
  void Reset(http1::Framing f, std::uint64_t length) {
    framing = f;
    remaining = length;
    chunks = http1::ChunkedScanner();
    bytes = 0;
    data_bytes = 0;
    done = f == http1::Framing::kNone || (f == http1::Framing::kLength && length == 0);
    error = false;
  }
  // How many bytes at the front of `data` belong to the body (all of them until close);
  // with `spans`, the chunk payloads inside them.
  std::size_t Take(std::string_view data, std::vector<std::string_view>* spans = nullptr);
};

std::size_t BodyState::Take(std::string_view data, std::vector<std::string_view>* spans) {
  if (done) return 0;
  std::size_t n = 0;
  switch (framing) {
    case http1::Framing::kNone:
      done = true;
      return 0;
    case http1::Framing::kLength:
      n = static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), remaining));
      remaining -= n;
      done = remaining == 0;
      break;
    case http1::Framing::kChunked: {
      auto step = chunks.Feed(data, spans != nullptr);
      if (step.error) {
        error = true;
        return 0;
      }
      for (auto span : step.data) data_bytes += span.size();
      if (spans) *spans = std::move(step.data);
      n = step.consumed;
      done = step.done;
      bytes += n;
      return n;
    }
    case http1::Framing::kUntilClose:
      n = data.size();
      break;
  }
  bytes += n;
  data_bytes += n;
  return n;
}

// The result of one exchange with one upstream connection.
struct Outcome {
  int status = 502;         // sent to the client, or the page to send when !started
  bool started = false;     // the response head reached (or began to reach) the client
  bool repeatable = false;  // closed before any response byte; the request is safe to resend
  bool close = false;       // the client connection must close afterwards
  std::string_view detail;  // for a gateway page
  std::uint64_t bytes_out = 0;
};

enum class Sent { kOk, kUpstream, kClient, kTooLarge, kBadBody };

class ClientSession {
 public:
  ClientSession(ProxyShared& shared, io::Loop& loop, tcp::socket socket,
                std::shared_ptr<ListenerState> listener)
      : shared_(shared),
        opt_(shared.options),
        loop_(loop),
        client_(std::move(socket)),
        upstream_(loop.ctx),
        client_dl_(loop, &client_),
        up_dl_(loop, &upstream_),
        listener_(std::move(listener)) {
    boost::system::error_code ec;
    auto peer = client_.remote_endpoint(ec);
    if (!ec) client_ip_ = peer.address().to_string();
  }

  asio::awaitable<void> Run();

 private:
  enum class HeadRead { kOk, kClosed, kAnswered };
  asio::awaitable<HeadRead> ReadHead();
  asio::awaitable<bool> Handle();
  asio::awaitable<bool> Dispatch(const RouteTable& table);
  asio::awaitable<bool> Answer(int status, std::string_view detail, bool force_close = false,
                               const Route* route = nullptr);
  asio::awaitable<bool> AnswerUp();
  asio::awaitable<Mode> Hold(const AppGate& gate);
  asio::awaitable<bool> Forward(const Route& route, const Choice& choice);
  asio::awaitable<bool> TryTarget(const Route& route, const Choice& choice, Target& t, bool last,
                                  bool& answered);
  asio::awaitable<Outcome> Exchange(const Route& route);
  asio::awaitable<Sent> SendRequest(const Route& route);
  std::string_view NextBodyBytes(std::size_t& take);
  asio::awaitable<int> ReadResponseHead(bool& got_any);
  asio::awaitable<void> Relay(Outcome& o, bool decode);
  asio::awaitable<void> Tunnel();
  asio::awaitable<bool> Finish(const Route& route, const Target* t, const Choice& choice,
                               Outcome& o);
  asio::awaitable<bool> WriteClient(std::string_view head, std::string_view body);
  asio::awaitable<void> Linger();
  asio::awaitable<bool> Connect(Target& t, bool& timed_out);
  void UpstreamHost(const Target& t);
  bool TakeIdle(const Target& t);
  void ReleaseUpstream(const Target& t, bool reusable);
  void CopyFacts();
  // A 101 is relayed only to a request that asked to upgrade, to a protocol it offered.
  bool UpgradeOffered() const;
  void Log(int status, std::uint64_t bytes_out, const Route* route, const Target* t,
           const Choice* choice);
  void Tap(int status, double seconds, const Route* route, const Target* t);
  bool Closing() const { return listener_->closed.load(std::memory_order_relaxed); }

  ProxyShared& shared_;
  const ProxyOptions& opt_;
  io::Loop& loop_;
  tcp::socket client_;
  tcp::socket upstream_;
  io::Deadline client_dl_;
  io::Deadline up_dl_;
  const std::shared_ptr<ListenerState> listener_;
  std::string client_ip_;
  io::Buffer in_;
  io::Buffer up_in_;
  http1::RequestHead req_;
  http1::ResponseHead res_;
  std::string out_;
  std::string request_id_;
  std::string cookie_;
  Facts facts_;
  BodyState body_;  // the request body
  BodyState resp_;  // the response body
  std::vector<std::string_view> spans_;
  std::string chunk_out_;  // a re-chunked piece of a request body
  bool head_consumed_ = false;
  bool continued_ = false;
  bool linger_ = false;
  bool keep_upstream_ = false;   // the last exchange ended cleanly at a message boundary
  bool first_ = true;            // no request read yet on this connection
  bool host_rewritten_ = false;  // out_'s Host is a target's authority, not the client's
  bool connect_timed_out_ = false;
  bool tapped_ = false;  // a tap was set when this request began: it is recorded
  SteadyClock::time_point started_;
};

asio::awaitable<void> ClientSession::Run() {
  for (;;) {
    HeadRead r = co_await ReadHead();
    if (r != HeadRead::kOk) break;
    if (!co_await Handle()) break;
    if (Closing()) break;  // the listener was removed while this request ran
  }
  up_dl_.Disarm();
  boost::system::error_code ec;
  upstream_.close(ec);
  if (linger_) co_await Linger();
  client_.close(ec);
}

asio::awaitable<ClientSession::HeadRead> ClientSession::ReadHead() {
  // A new connection owes its first request head within the header timeout (a client that
  // connects and sends nothing is a slow sender too); between requests the idle timeout
  // applies until the next head starts.
  bool started = !in_.empty() || first_;
  first_ = false;
  // Waiting idle between requests: a removed listener closes the connection at once.
  if (started)
    client_dl_.Arm(opt_.header_timeout);
  else
    client_dl_.Arm(opt_.idle_timeout, &listener_->closed);
  for (;;) {
    if (!in_.empty()) {
      auto parsed = http1::ParseRequestHead(in_.data(), opt_.limits, req_);
      if (parsed == http1::Parse::kDone) {
        client_dl_.Disarm();
        co_return HeadRead::kOk;
      }
      if (parsed == http1::Parse::kError) {
        client_dl_.Disarm();
        facts_ = Facts{};
        facts_.keep_alive = false;
        head_consumed_ = true;  // nothing of it is trusted; the connection closes
        started_ = SteadyClock::now();
        listener_->Count(loop_.index);
        tapped_ = shared_.router.tapping();
        NewRequestId(request_id_);
        co_await Answer(req_.error_status, req_.error_detail, true);
        co_return HeadRead::kAnswered;
      }
      if (!started) {
        started = true;
        client_dl_.Arm(opt_.header_timeout);
      }
    }
    auto space = in_.Prepare(opt_.limits.max_head + 4096);
    if (space.size() == 0) co_return HeadRead::kClosed;  // the parser reports 431 before this
    auto [ec, n] = co_await client_.async_read_some(space, kTuple);
    if (ec) co_return HeadRead::kClosed;
    in_.Commit(n);
  }
}

void ClientSession::CopyFacts() {
  facts_.method.assign(req_.method);
  facts_.host.assign(req_.host);
  facts_.path.assign(req_.path);
  facts_.minor = req_.minor;
  facts_.head = req_.method == "HEAD";
  facts_.idempotent = facts_.head || req_.method == "GET" || req_.method == "OPTIONS" ||
                      req_.method == "PUT" || req_.method == "DELETE" || req_.method == "TRACE";
  facts_.expect = req_.expect_continue && req_.minor == 1;
  facts_.upgrade = req_.upgrade;
  facts_.upgrade_offer.assign(req_.upgrade ? http1::Find(req_.headers, "upgrade") : "");
  facts_.keep_alive = req_.keep_alive;
  facts_.framing = req_.framing;
  facts_.length = req_.content_length;
  if (Closing()) facts_.keep_alive = false;  // answered with "Connection: close"
  tapped_ = shared_.router.tapping();        // the request path's one look at the tap
  if (tapped_) {
    facts_.sandbox = SandboxOf(req_.headers);
    facts_.trace.assign(http1::Find(req_.headers, "x-slipway-trace"));
  } else if (!facts_.sandbox.empty() || !facts_.trace.empty()) {
    facts_.sandbox.clear();
    facts_.trace.clear();
  }
  std::string_view id = http1::Find(req_.headers, "x-request-id");
  if (ValidRequestId(id))
    request_id_.assign(id);
  else
    NewRequestId(request_id_);
}

bool ClientSession::UpgradeOffered() const {
  if (!facts_.upgrade) return false;
  std::string_view chosen = http1::Find(res_.headers, "upgrade");
  if (chosen.empty() || chosen.find(',') != std::string_view::npos) return false;
  // Protocol names may carry a version ("websocket", "h2c", "foo/2"): compared whole.
  return http1::ListContains(facts_.upgrade_offer, chosen);
}

asio::awaitable<bool> ClientSession::Handle() {
  started_ = SteadyClock::now();
  listener_->Count(loop_.index);
  head_consumed_ = false;
  continued_ = false;
  CopyFacts();
  body_.Reset(facts_.framing, facts_.length);
  if (PathOnly(facts_.path) == kUpPath) co_return co_await AnswerUp();
  std::uint64_t version = shared_.router.version();
  if (version != loop_.table_version || !loop_.table) {
    loop_.table =
        std::make_shared<const std::shared_ptr<const RouteTable>>(shared_.router.Snapshot());
    loop_.table_version = version;
  }
  auto table = loop_.table;  // this request's snapshot, kept until it ends
  co_return co_await Dispatch(**table);
}

asio::awaitable<bool> ClientSession::Dispatch(const RouteTable& table) {
  RequestInfo info{req_.host, req_.path, &req_.headers};
  const Route* route = table.Match(listener_->set, info);
  if (!route) {
    std::string detail = "No app is routed for host '" + facts_.host + "'.";
    co_return co_await Answer(404, detail);
  }
  Mode mode = route->gate->mode();
  if (mode != Mode::kOpen) {
    if (!route->health_path.empty() && PathOnly(facts_.path) == route->health_path)
      co_return co_await AnswerUp();
    if (mode == Mode::kPaused) mode = co_await Hold(*route->gate);
    if (mode == Mode::kMaintenance) {
      std::string message = route->gate->message();
      co_return co_await Answer(503, message, false, route);
    }
    if (mode == Mode::kPaused)
      co_return co_await Answer(503, "The app is paused; try again shortly.", false, route);
  }
  if (route->max_body && facts_.framing == http1::Framing::kLength &&
      facts_.length > route->max_body)
    co_return co_await Answer(413, "The request body is larger than this route accepts.", true,
                              route);
  Choice choice = Choose(*route, info);
  if (choice.count == 0) {
    std::string detail = "App '" + route->app + "' has no running release.";
    co_return co_await Answer(503, detail, false, route);
  }
  co_return co_await Forward(*route, choice);
}

// Holds a request while its app is paused: until resumed, switched to maintenance, or the
// pause's hold time passed. Polls the gate (cheap) instead of a wake-up list so a resume
// needs no reference to the waiting sessions.
asio::awaitable<Mode> ClientSession::Hold(const AppGate& gate) {
  auto until = SteadyClock::now() + gate.max_hold();
  asio::steady_timer timer(loop_.ctx);
  while (gate.mode() == Mode::kPaused && SteadyClock::now() < until) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(kTuple);
  }
  co_return gate.mode();
}

asio::awaitable<bool> ClientSession::AnswerUp() {
  if (!head_consumed_) in_.Consume(req_.head_size);
  head_consumed_ = true;
  bool close = !facts_.keep_alive || facts_.framing != http1::Framing::kNone;
  std::string head = fmt::format(
      "HTTP/1.{} 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n"
      "Content-Length: 3\r\nX-Request-Id: {}\r\n{}\r\n",
      facts_.minor, request_id_, close ? "Connection: close\r\n" : "");
  std::string_view body = facts_.head ? "" : "ok\n";
  bool ok = co_await WriteClient(head, body);
  Log(200, body.size(), nullptr, nullptr, nullptr);
  linger_ = linger_ || close;
  co_return ok && !close;
}

// A gateway page. The connection closes when asked, when the client asked, or when a
// request body was not read (it cannot be told apart from the next request).
asio::awaitable<bool> ClientSession::Answer(int status, std::string_view detail, bool force_close,
                                            const Route* route) {
  if (!head_consumed_) in_.Consume(req_.head_size);
  head_consumed_ = true;
  bool close = force_close || !facts_.keep_alive || !body_.done;
  std::string page =
      Page(status, Title(status), detail, facts_.minor, close, request_id_, facts_.head);
  bool ok = co_await WriteClient(page, {});
  if (route) route->stats->Record(status);
  Log(status, page.size() - page.find("\r\n\r\n") - 4, route, nullptr, nullptr);
  linger_ = linger_ || close;
  co_return ok && !close;
}

asio::awaitable<bool> ClientSession::WriteClient(std::string_view head, std::string_view body) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
  client_dl_.Arm(opt_.upstream_timeout);
  auto [ec, n] = co_await asio::async_write(client_, bufs, kTuple);
  client_dl_.Disarm();
  co_return !ec;
}

// After an answer that leaves request bytes unread: stop sending, then read and drop what
// the client still sends for a moment, so closing does not reset the connection before the
// client has read the answer.
asio::awaitable<void> ClientSession::Linger() {
  boost::system::error_code ec;
  client_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  client_dl_.Arm(std::chrono::milliseconds(1000));
  std::size_t drained = 0;
  while (drained < (1u << 20)) {
    in_.Consume(in_.size());
    auto space = in_.Prepare(kBodyChunk);
    auto [rec, n] = co_await client_.async_read_some(space, kTuple);
    if (rec) break;
    drained += n;
  }
  client_dl_.Disarm();
}

asio::awaitable<bool> ClientSession::Forward(const Route& route, const Choice& choice) {
  out_.clear();
  ForwardContext ctx{client_ip_, request_id_};
  WriteUpstreamRequest(req_, ctx, out_);
  host_rewritten_ = false;
  connect_timed_out_ = false;
  if (choice.set_cookie && choice.side)
    cookie_ =
        fmt::format("{}={}; Path=/; HttpOnly; SameSite=Lax", route.sticky_name, choice.side->name);
  else
    cookie_.clear();
  in_.Consume(req_.head_size);  // from here on only facts_ describe the request
  head_consumed_ = true;
  bool timed_out = false;
  for (std::size_t i = 0; i < choice.count; ++i) {
    Target& t = *choice.targets[i];
    bool answered = false;
    bool keep = co_await TryTarget(route, choice, t, i + 1 == choice.count, answered);
    if (answered) co_return keep;
    timed_out = timed_out || up_dl_.fired() || connect_timed_out_;
  }
  // Nothing reached any app: safe for every method, and the client still waits for an answer.
  if (timed_out)
    co_return co_await Answer(504, "The app did not accept the connection in time.", false, &route);
  co_return co_await Answer(502, "The app's instance is not accepting connections.", false, &route);
}

// One target: a pooled connection (retried once on a fresh one when it had gone stale and
// the request is safe to repeat) or a new one. `answered` is false when no connection could
// be made, or when a fresh one closed before any response byte and the request is safe to
// repeat (an instance being stopped, or a port proxy whose app is gone): the next target is
// tried then, as a proxy_next_upstream would. The last target answers whatever happened.
asio::awaitable<bool> ClientSession::TryTarget(const Route& route, const Choice& choice, Target& t,
                                               bool last, bool& answered) {
  UpstreamHost(t);
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool pooled = attempt == 0 && TakeIdle(t);
    if (!pooled) {
      bool timed_out = false;
      if (!co_await Connect(t, timed_out)) {
        t.BeginRequest();
        t.EndRequest(timed_out ? 504 : 502, 0);
        co_return false;
      }
    }
    t.BeginRequest();
    auto t0 = SteadyClock::now();
    Outcome o = co_await Exchange(route);
    t.EndRequest(o.status, std::chrono::duration<double>(SteadyClock::now() - t0).count());
    if (o.repeatable && pooled) continue;
    if (o.repeatable && !last) {
      boost::system::error_code ec;
      upstream_.close(ec);
      co_return false;
    }
    answered = true;
    co_return co_await Finish(route, &t, choice, o);
  }
  co_return false;
}

// Resolution and connection share the connect timeout; each address found is tried in turn
// with what is left of it.
asio::awaitable<bool> ClientSession::Connect(Target& t, bool& timed_out) {
  const auto until = SteadyClock::now() + opt_.connect_timeout;
  Resolved where = co_await Resolve(loop_.ctx, t.host(), t.port(), opt_.connect_timeout);
  timed_out = where.timed_out;
  boost::system::error_code ec;
  for (const auto& endpoint : where.endpoints) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(until - SteadyClock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    upstream_ = tcp::socket(loop_.ctx);
    up_dl_.Arm(left);
    auto [cec] = co_await upstream_.async_connect(endpoint, kTuple);
    up_dl_.Disarm();
    if (!cec) {
      upstream_.set_option(tcp::no_delay(true), ec);
      co_return true;
    }
    upstream_.close(ec);
    if (up_dl_.fired()) {
      timed_out = true;
      break;
    }
  }
  connect_timed_out_ = connect_timed_out_ || timed_out;
  co_return false;
}

// The Host sent to `t`: its authority when it has one, else the client's. Rewritten in out_
// only when it changes between targets, so a plain target costs one test.
void ClientSession::UpstreamHost(const Target& t) {
  if (t.authority().empty() && !host_rewritten_) return;
  ReplaceHost(out_, t.authority().empty() ? std::string_view(facts_.host) : t.authority());
  host_rewritten_ = !t.authority().empty();
}

bool ClientSession::TakeIdle(const Target& t) {
  auto it = loop_.idle.find(t.endpoint());
  if (it == loop_.idle.end()) return false;
  auto& conns = it->second;
  while (!conns.empty()) {
    io::IdleConn c = std::move(conns.back());
    conns.pop_back();
    // Closed by the upstream while idle, or it sent something nobody asked for (a response
    // to bytes it took for a request): either way it must not carry another client's request.
    if (!io::LooksReusable(c.socket)) continue;
    upstream_ = std::move(c.socket);
    return true;
  }
  return false;
}

void ClientSession::ReleaseUpstream(const Target& t, bool reusable) {
  up_dl_.Disarm();
  boost::system::error_code ec;
  if (!reusable || !up_in_.empty()) {
    upstream_.close(ec);
    up_in_.Consume(up_in_.size());
    return;
  }
  auto& conns = loop_.idle[t.endpoint()];
  if (conns.size() >= opt_.max_idle_per_target) {
    upstream_.close(ec);
    return;
  }
  conns.push_back({std::move(upstream_), loop_.now});
  upstream_ = tcp::socket(loop_.ctx);
}

asio::awaitable<Outcome> ClientSession::Exchange(const Route& route) {
  Outcome o;
  keep_upstream_ = false;
  up_in_.Consume(up_in_.size());
  if (facts_.expect && !body_.done && !continued_) {
    continued_ = true;
    co_await WriteClient("HTTP/1.1 100 Continue\r\n\r\n", {});
  }
  Sent sent = co_await SendRequest(route);
  if (sent == Sent::kClient) {
    o.status = 499;  // the client went away mid-body; nothing to answer
    o.started = true;
    o.close = true;
    co_return o;
  }
  if (sent == Sent::kTooLarge || sent == Sent::kBadBody) {
    o.status = sent == Sent::kTooLarge ? 413 : 400;
    o.detail = sent == Sent::kTooLarge ? "The request body is larger than this route accepts."
                                       : "The chunked request body is malformed.";
    o.close = true;
    co_return o;
  }
  bool got_any = false;
  int status = co_await ReadResponseHead(got_any);
  if (status != 0) {
    o.repeatable =
        !got_any && facts_.idempotent && facts_.framing == http1::Framing::kNone && status == 502;
    o.status = status == kMalformed ? 502 : status;
    o.detail = status == 504          ? "The app did not answer in time."
               : status == kMalformed ? "The app sent a malformed response."
                                      : "The app closed the connection.";
    o.close = !body_.done;
    co_return o;
  }
  o.close = sent != Sent::kOk;  // the app answered before taking the whole body
  co_await Relay(o, res_.framing == http1::Framing::kChunked && facts_.minor == 0);
  co_return o;
}

// The request body bytes at the front of in_ as they go upstream: as received for a
// Content-Length body; a chunked body is re-chunked from its data, which drops chunk
// extensions and trailers (a client's trailers could carry fields the gateway strips from
// heads, such as Slipway credentials). Sets `take` to the bytes of in_ used.
std::string_view ClientSession::NextBodyBytes(std::size_t& take) {
  if (body_.framing != http1::Framing::kChunked) {
    take = body_.Take(in_.data());
    return in_.data().substr(0, take);
  }
  take = body_.Take(in_.data(), &spans_);
  chunk_out_.clear();
  for (auto span : spans_) {
    if (span.empty()) continue;
    char size[20];
    auto end = std::to_chars(size, size + sizeof(size), span.size(), 16).ptr;
    chunk_out_.append(size, end);
    chunk_out_.append("\r\n");
    chunk_out_.append(span);
    chunk_out_.append("\r\n");
  }
  if (body_.done) chunk_out_.append("0\r\n\r\n");
  return chunk_out_;
}

asio::awaitable<Sent> ClientSession::SendRequest(const Route& route) {
  std::size_t take = 0;
  std::string_view bytes = NextBodyBytes(take);
  if (body_.error) co_return Sent::kBadBody;
  if (route.max_body && body_.data_bytes > route.max_body) co_return Sent::kTooLarge;
  std::array<asio::const_buffer, 2> first{asio::buffer(out_), asio::buffer(bytes)};
  up_dl_.Arm(opt_.upstream_timeout);
  auto [ec, n] = co_await asio::async_write(upstream_, first, kTuple);
  if (ec) co_return Sent::kUpstream;
  in_.Consume(take);
  while (!body_.done) {
    client_dl_.Arm(opt_.upstream_timeout);
    auto space = in_.Prepare(kBodyChunk);
    auto [rec, rn] = co_await client_.async_read_some(space, kTuple);
    client_dl_.Disarm();
    if (rec) co_return Sent::kClient;
    in_.Commit(rn);
    bytes = NextBodyBytes(take);
    if (body_.error) co_return Sent::kBadBody;
    if (route.max_body && body_.data_bytes > route.max_body) co_return Sent::kTooLarge;
    up_dl_.Arm(opt_.upstream_timeout);
    auto [wec, wn] = co_await asio::async_write(upstream_, asio::buffer(bytes), kTuple);
    if (wec) co_return Sent::kUpstream;
    in_.Consume(take);
  }
  co_return Sent::kOk;
}

// Reads up to the final response head, relaying 103 Early Hints and dropping other interim
// responses (the gateway already answered 100-continue itself). Returns 0 on success, else
// the status to answer (502, or 504 on a timeout).
asio::awaitable<int> ClientSession::ReadResponseHead(bool& got_any) {
  up_dl_.Arm(opt_.upstream_timeout);
  int interims = 0;
  for (;;) {
    if (!up_in_.empty()) {
      auto parsed = http1::ParseResponseHead(up_in_.data(), opt_.limits, facts_.method, res_);
      if (parsed == http1::Parse::kError) co_return kMalformed;
      if (parsed == http1::Parse::kDone) {
        bool interim = res_.status < 200 && res_.status != 101;
        if (!interim) co_return res_.status == 101 && !UpgradeOffered() ? kMalformed : 0;
        if (++interims > kMaxInterim) co_return kMalformed;
        if (res_.status == 103 && facts_.minor == 1) {
          std::string hints;
          WriteInterim(res_, hints);
          co_await WriteClient(hints, {});
        }
        up_in_.Consume(res_.head_size);
        continue;
      }
    }
    auto space = up_in_.Prepare(opt_.limits.max_head + 4096);
    if (space.size() == 0) co_return 502;
    auto [ec, n] = co_await upstream_.async_read_some(space, kTuple);
    if (ec) co_return up_dl_.fired() ? 504 : 502;
    got_any = true;
    up_in_.Commit(n);
  }
}

BodyOut ClientFraming(http1::Framing f, int client_minor) {
  switch (f) {
    case http1::Framing::kNone:
      return BodyOut::kNone;
    case http1::Framing::kLength:
      return BodyOut::kLength;
    case http1::Framing::kChunked:
      return client_minor == 1 ? BodyOut::kChunked : BodyOut::kClose;
    case http1::Framing::kUntilClose:
      return BodyOut::kClose;
  }
  return BodyOut::kClose;
}

// Writes the response head and streams the body to the client as it arrives. `decode`
// turns a chunked body into a close-delimited one (for HTTP/1.0 clients).
asio::awaitable<void> ClientSession::Relay(Outcome& o, bool decode) {
  bool upgrade = res_.status == 101;
  BodyOut out = ClientFraming(res_.framing, facts_.minor);
  o.close = o.close || out == BodyOut::kClose || !facts_.keep_alive || !body_.done ||
            (facts_.upgrade && !upgrade);
  ResponseContext rc{facts_.minor, out, !o.close, upgrade, request_id_, cookie_};
  out_.clear();
  WriteClientResponse(res_, rc, out_);
  o.status = res_.status;
  bool upstream_keep = res_.keep_alive;
  up_in_.Consume(res_.head_size);
  resp_.Reset(res_.framing, res_.content_length);
  o.started = true;
  if (upgrade) {
    bool ok = co_await WriteClient(out_, up_in_.data());
    up_in_.Consume(up_in_.size());
    if (ok) co_await Tunnel();
    o.close = true;
    co_return;
  }
  std::vector<std::string_view>* spans = decode ? &spans_ : nullptr;
  std::size_t take = resp_.Take(up_in_.data(), spans);
  std::string_view first = up_in_.data().substr(0, take);
  bool ok = co_await WriteClient(out_, decode ? std::string_view{} : first);
  for (std::size_t i = 0; ok && decode && i < spans_.size(); ++i)
    ok = co_await WriteClient(spans_[i], {});
  up_in_.Consume(take);
  o.bytes_out += take;
  while (ok && !resp_.done && !resp_.error) {
    up_dl_.Arm(opt_.upstream_timeout);
    auto space = up_in_.Prepare(kBodyChunk);
    auto [ec, n] = co_await upstream_.async_read_some(space, kTuple);
    if (ec) {
      if (resp_.framing == http1::Framing::kUntilClose && ec == asio::error::eof) resp_.done = true;
      break;
    }
    up_in_.Commit(n);
    take = resp_.Take(up_in_.data(), spans);
    if (decode) {
      for (std::size_t i = 0; ok && i < spans_.size(); ++i)
        ok = co_await WriteClient(spans_[i], {});
    } else {
      ok = co_await WriteClient(up_in_.data().substr(0, take), {});
    }
    up_in_.Consume(take);
    o.bytes_out += take;
  }
  if (!ok || !resp_.done) o.close = true;  // a truncated response cannot be delimited
  // An app that refuses a request with a body often answers without reading the body, then
  // reads it as a next request and answers that too: such a connection is not reused.
  bool refused_body = o.status >= 400 && facts_.framing != http1::Framing::kNone;
  upstream_keep = upstream_keep && resp_.done && body_.done && ok && !refused_body &&
                  resp_.framing != http1::Framing::kUntilClose;
  keep_upstream_ = upstream_keep;
}

// Copies one direction of an upgraded connection until its source ends. A clean end is
// passed on as a half-close; a failure closes both sides so the other direction ends too.
asio::awaitable<void> Pipe(tcp::socket& from, tcp::socket& to, io::Buffer& buf) {
  boost::system::error_code ec;
  for (;;) {
    auto space = buf.Prepare(kBodyChunk);
    auto [rec, n] = co_await from.async_read_some(space, kTuple);
    if (rec) {
      if (rec == asio::error::eof) {
        to.shutdown(tcp::socket::shutdown_send, ec);
      } else {
        from.close(ec);
        to.close(ec);
      }
      co_return;
    }
    buf.Commit(n);
    auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data()), kTuple);
    buf.Consume(wn);
    if (wec) {
      from.close(ec);
      to.close(ec);
      co_return;
    }
  }
}

asio::awaitable<void> ClientSession::Tunnel() {
  client_dl_.Disarm();
  up_dl_.Disarm();
  // Bytes the client sent after its upgrade request already belong to the new protocol.
  if (!in_.empty()) {
    auto [ec, n] = co_await asio::async_write(upstream_, asio::buffer(in_.data()), kTuple);
    if (ec) co_return;
    in_.Consume(n);
  }
  using namespace asio::experimental::awaitable_operators;
  auto both = Pipe(client_, upstream_, in_) && Pipe(upstream_, client_, up_in_);
  co_await std::move(both);
}

asio::awaitable<bool> ClientSession::Finish(const Route& route, const Target* t,
                                            const Choice& choice, Outcome& o) {
  ReleaseUpstream(*t, o.started && keep_upstream_);
  if (!o.started) co_return co_await Answer(o.status, o.detail, o.close, &route);
  route.stats->Record(o.status);
  Log(o.status, o.bytes_out, &route, t, &choice);
  linger_ = linger_ || (o.close && !body_.done);
  co_return !o.close;
}

void ClientSession::Log(int status, std::uint64_t bytes_out, const Route* route, const Target* t,
                        const Choice* choice) {
  if (!shared_.log && !tapped_) return;
  double seconds = std::chrono::duration<double>(SteadyClock::now() - started_).count();
  if (tapped_) Tap(status, seconds, route, t);
  if (!shared_.log) return;
  AccessEntry e;
  e.request_id = request_id_;
  e.client = client_ip_;
  e.method = facts_.method;
  e.host = facts_.host;
  e.path = facts_.path;
  e.status = status;
  e.bytes_in = body_.data_bytes;
  e.bytes_out = bytes_out;
  e.seconds = seconds;
  if (route) e.route = route->label();
  if (t) e.target = t->id();
  if (choice && choice->side) e.side = choice->side->name;
  shared_.log->Write(e);
}

// The tap is loaded once per request (a copy of the pointer, taken under no lock of ours) and
// called on this loop's thread.
void ClientSession::Tap(int status, double seconds, const Route* route, const Target* t) {
  std::shared_ptr<RequestTap> tap = shared_.router.tap();
  if (!tap) return;
  TapEntry e;
  e.listener = listener_->set;
  if (route) e.route = route->label();
  if (t) e.target = t->id();
  e.sandbox = facts_.sandbox;
  e.trace = facts_.trace;
  e.status = status;
  e.seconds = seconds;
  e.ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  tap->Record(e);
}

}  // namespace

asio::awaitable<void> ServeClient(ProxyShared& shared, io::Loop& loop, tcp::socket socket,
                                  std::shared_ptr<ListenerState> listener) {
  try {
    auto session =
        std::make_unique<ClientSession>(shared, loop, std::move(socket), std::move(listener));
    co_await session->Run();
  } catch (const std::exception& e) {
    spdlog::warn("gateway: connection ended by an error: {}", e.what());
  }
  shared.connections.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace slipway::gateway
