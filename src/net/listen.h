#pragma once
// Opening a listening TCP socket, shared by the API server and the gateway. Includes Asio:
// only for .cpp files that already use it.
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "core/status.h"

namespace slipway::net {

// Opens, binds (SO_REUSEADDR) and listens. kInvalid for an address that does not parse,
// kUnavailable when the port cannot be had ("what" names the listener in the message).
Status Listen(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address, int port,
              const std::string& what);

}  // namespace slipway::net
