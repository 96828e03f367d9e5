#include "gateway/resolve.h"

#include <memory>

namespace slipway::gateway {
namespace {

namespace asio = io::asio;
using io::tcp;

// One lookup. Shared with the resolver's completion handler, which may run after the caller
// gave up and left: the handler's copy keeps the resolver and timer alive until then.
struct Lookup {
  explicit Lookup(asio::io_context& ctx) : resolver(ctx), timer(ctx) {}
  tcp::resolver resolver;
  asio::steady_timer timer;
  boost::system::error_code ec;
  tcp::resolver::results_type results;
  bool done = false;
};

}  // namespace

bool IsLocalhostName(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  constexpr std::string_view kName = "localhost";
  if (host.size() < kName.size()) return false;
  std::string_view tail = host.substr(host.size() - kName.size());
  for (std::size_t i = 0; i < kName.size(); ++i) {
    char c = tail[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) != kName[i]) return false;
  }
  return host.size() == kName.size() || host[host.size() - kName.size() - 1] == '.';
}

asio::awaitable<Resolved> Resolve(asio::io_context& ctx, const std::string& host, int port,
                                  std::chrono::milliseconds timeout) {
  Resolved out;
  const auto port16 = static_cast<unsigned short>(port);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) {
    out.endpoints.emplace_back(address, port16);
    co_return out;
  }
  if (IsLocalhostName(host)) {
    out.endpoints.emplace_back(asio::ip::address_v4::loopback(), port16);
    co_return out;
  }
  auto lookup = std::make_shared<Lookup>(ctx);
  lookup->timer.expires_after(timeout);
  lookup->resolver.async_resolve(
      host, std::to_string(port), tcp::resolver::numeric_service,
      [lookup](const boost::system::error_code& rec, tcp::resolver::results_type results) {
        lookup->ec = rec;
        lookup->results = std::move(results);
        lookup->done = true;
        lookup->timer.cancel();
      });
  co_await lookup->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!lookup->done) {
    lookup->resolver.cancel();
    out.timed_out = true;
    co_return out;
  }
  if (!lookup->ec)
    for (const auto& entry : lookup->results) out.endpoints.push_back(entry.endpoint());
  co_return out;
}

}  // namespace slipway::gateway
