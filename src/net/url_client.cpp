#include "net/url_client.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>

#include "net/client_common.h"

namespace slipway::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using PlainStream = beast::tcp_stream;
using TlsStream = ssl::stream<beast::tcp_stream>;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uintmax_t kMaxCaFile = 1 << 20;

bool SafeHeaderText(const std::string& s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

// A CA file is read whole by OpenSSL: only a regular file of bounded size is (a device such
// as /dev/zero would never end).
Status CheckCaFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return Unavailable("TLS: the CA file is not a readable regular file");
  auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxCaFile) return Unavailable("TLS: the CA file is over 1 MiB");
  return Status::Ok();
}

// One call on a private loop, run by the calling thread. The deadline and a cancel both
// abort: the resolver is cancelled and the socket closed, so every pending step ends and the
// loop runs out of work.
class Call {
 public:
  Call(const UrlRequest& request, HttpUrl url) : request_(request), url_(std::move(url)) {}

  Result<ClientResponse> Run(CallCanceller* canceller) {
    if (url_.tls) {
      if (!request_.ca_file.empty()) {
        if (Status s = CheckCaFile(request_.ca_file); !s.ok()) return s;
      }
      auto ctx = client::MakeTlsContext(request_.ca_file);
      if (!ctx.ok()) return Unavailable("TLS: " + ctx.status().message());
      tls_context_ = std::move(ctx).value();
      tls_.emplace(ioc_, *tls_context_);
    } else {
      plain_.emplace(ioc_);
    }
    if (canceller && !canceller->Attach([this] { asio::post(ioc_, [this] { Cancelled(); }); }))
      return Status(Code::kCancelled, "cancelled");
    deadline_.expires_after(request_.timeout);
    deadline_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || result_) return;
      result_ = Status(Code::kTimeout,
                       "no response within " + std::to_string(request_.timeout.count()) + " ms");
      Abort();
    });
    auto done = [this](std::exception_ptr e) {
      if (e && !result_) result_ = Internal("unexpected failure of the HTTP client");
      deadline_.cancel();
    };
    if (tls_)
      asio::co_spawn(ioc_, Exchange(*tls_), std::move(done));
    else
      asio::co_spawn(ioc_, Exchange(*plain_), std::move(done));
    ioc_.run();
    if (canceller) canceller->Detach();
    if (!result_) return Internal("the HTTP client ended without an outcome");
    return std::move(*result_);
  }

 private:
  void Cancelled() {
    if (result_) return;
    result_ = Status(Code::kCancelled, "cancelled");
    Abort();
  }

  void Abort() {
    resolver_.cancel();
    beast::error_code ignored;
    if (plain_) plain_->socket().close(ignored);
    if (tls_) beast::get_lowest_layer(*tls_).socket().close(ignored);
  }

  // Records the first outcome; a step failing because of an abort keeps the abort's.
  void Fail(const std::string& step, const beast::error_code& ec) {
    if (!result_) result_ = Unavailable(step + ": " + ec.message());
  }

  template <typename Stream>
  asio::awaitable<void> Exchange(Stream& stream) {
    auto [rec, endpoints] =
        co_await resolver_.async_resolve(url_.host, std::to_string(url_.port), kTuple);
    if (rec) co_return Fail("resolve", rec);
    auto& tcp = beast::get_lowest_layer(stream);
    auto [cec, endpoint] = co_await tcp.async_connect(endpoints, kTuple);
    (void)endpoint;
    if (cec || result_) co_return Fail("connect", cec);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      if (Status s = client::ConfigureTls(stream.native_handle(), url_.host); !s.ok()) {
        if (!result_) result_ = Unavailable("TLS: " + s.message());
        co_return;
      }
      auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, kTuple);
      if (hec || result_) {
        if (!result_)
          result_ = Unavailable("TLS: " + client::TlsFailure(hec, stream.native_handle()));
        co_return;
      }
    }
    http::request<http::string_body> req;
    req.method_string(request_.method);
    req.target(url_.target);
    req.version(11);
    req.set(http::field::host, client::UrlTarget{url_.tls, url_.host, url_.port, "/"}.HostHeader());
    req.set(http::field::user_agent, "slipway");
    req.set(http::field::connection, "close");
    for (const auto& [k, v] : request_.headers) req.set(k, v);
    req.body() = request_.body;
    req.prepare_payload();
    auto [wec, written] = co_await http::async_write(stream, req, kTuple);
    (void)written;
    if (wec || result_) co_return Fail("send", wec);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    parser.header_limit(
        static_cast<std::uint32_t>(std::min<std::size_t>(request_.max_head, 1 << 20)));
    // The body is never read, so its announced size is nobody's concern: a 2xx with a large
    // Content-Length is still an answer.
    parser.body_limit((std::numeric_limits<std::uint64_t>::max)());
    auto [rec2, read] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    (void)read;
    if (rec2 || result_) co_return Fail("receive", rec2);
    ClientResponse out;
    out.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) {
      std::string key(f.name_string());
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      out.headers[key] = std::string(f.value());
    }
    result_ = std::move(out);
  }

  const UrlRequest& request_;
  const HttpUrl url_;
  // Declared before what runs on it, so that it is destroyed last.
  asio::io_context ioc_{1};
  asio::ip::tcp::resolver resolver_{ioc_};
  asio::steady_timer deadline_{ioc_};
  std::unique_ptr<ssl::context> tls_context_;
  std::optional<PlainStream> plain_;
  std::optional<TlsStream> tls_;
  std::optional<Result<ClientResponse>> result_;  // set once, on the loop
};

}  // namespace

void CallCanceller::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (abort_) abort_();
}

bool CallCanceller::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

bool CallCanceller::Attach(std::function<void()> abort) {
  std::lock_guard lock(mu_);
  if (cancelled_) return false;
  abort_ = std::move(abort);
  return true;
}

void CallCanceller::Detach() {
  std::lock_guard lock(mu_);
  abort_ = nullptr;
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  if (client::HasSpaceOrControl(url) || std::any_of(url.begin(), url.end(), [](char c) {
        return static_cast<unsigned char>(c) >= 0x80;
      }))
    return Invalid("spaces or control characters");
  client::UrlTarget parsed;
  if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else if (url.starts_with("https://")) {
    parsed.tls = true;
    url.remove_prefix(8);
  } else {
    return Invalid("the scheme must be http:// or https://");
  }
  if (Status s = client::ParseAfterScheme(url, parsed); !s.ok()) return s;
  return HttpUrl{parsed.tls, std::move(parsed.host), parsed.port, std::move(parsed.target)};
}

Result<ClientResponse> CallUrl(const UrlRequest& request, CallCanceller* canceller) {
  try {
    auto url = ParseHttpUrl(request.url);
    if (!url.ok()) return url.status();
    for (const auto& [k, v] : request.headers) {
      if (k.empty() || !SafeHeaderText(k) || !SafeHeaderText(v))
        return Invalid("bad request header (empty name, CR, LF or NUL)");
    }
    Call call(request, std::move(url).value());
    return call.Run(canceller);
  } catch (const std::exception& e) {
    return Internal(std::string("HTTP client: ") + e.what());
  } catch (...) {
    return Internal("HTTP client: unexpected failure");
  }
}

}  // namespace slipway::net
