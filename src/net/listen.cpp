#include "net/listen.h"

namespace slipway::net {

Status Listen(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address, int port,
              const std::string& what) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) return Invalid("bad " + what + " address '" + address + "'");
  asio::ip::tcp::endpoint ep(ip, static_cast<unsigned short>(port));
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable(what + " cannot listen on " + address + ":" + std::to_string(port) + ": " +
                       ec.message());
  }
  return Status::Ok();
}

}  // namespace slipway::net
