#pragma once
// Pieces shared by the clients that dial a URL: the WebSocket client (net/ws_client.cpp) and
// the one-shot URL client (net/url_client.cpp). Internal to net/: nothing for other modules.
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace slipway::net::client {

// Where a URL points, once its scheme is known.
struct UrlTarget {
  bool tls = false;
  std::string host;  // without the brackets of an IPv6 literal
  int port = 0;
  std::string target = "/";  // path and query; never empty

  bool default_port() const { return port == (tls ? 443 : 80); }
  std::string BracketedHost() const {
    return host.find(':') != std::string::npos ? "[" + host + "]" : host;
  }
  // "host:port", for messages.
  std::string Authority() const { return BracketedHost() + ":" + std::to_string(port); }
  // The Host header: the port only when it is not the scheme's.
  std::string HostHeader() const { return default_port() ? BracketedHost() : Authority(); }
};

// Whether `text` holds a space, a control character or DEL.
bool HasSpaceOrControl(std::string_view text);

// Parses what follows "scheme://" into `out` (whose `tls` picks the default port): an
// authority "host", "host:port", "[v6]" or "[v6]:port" without user info, then the path and
// query (a fragment is dropped). REQUIRES: `rest` has no space or control character. The
// message of an error is a short reason ("no host", "bad port") that repeats no part of the
// URL, which may hold credentials: callers add what they may show.
Status ParseAfterScheme(std::string_view rest, UrlTarget& out);

// A TLS client context that verifies peers against the PEM bundle `ca_file` ("" = the
// system's default paths), TLS 1.2 at least. kUnavailable when the CAs cannot be loaded; the
// message names the file.
Result<std::unique_ptr<boost::asio::ssl::context>> MakeTlsContext(const std::string& ca_file);

// Sets up `ssl` to verify the peer's certificate for `host` (a name or an IP address), with
// SNI for a name.
Status ConfigureTls(SSL* ssl, const std::string& host);

// The handshake error, with OpenSSL's reason for refusing the certificate when it did.
std::string TlsFailure(const boost::system::error_code& ec, SSL* ssl);

}  // namespace slipway::net::client
