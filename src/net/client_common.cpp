#include "net/client_common.h"

#include <openssl/x509_vfy.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>

namespace slipway::net::client {

bool HasSpaceOrControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

Status ParseAfterScheme(std::string_view rest, UrlTarget& out) {
  auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) return Invalid("user info not allowed");
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return Invalid("unterminated [");
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') return Invalid("junk after ]");
    if (!after.empty()) port = after.substr(1);
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Invalid("no host");
  out.host = std::string(host);
  out.port = out.tls ? 443 : 80;
  if (!port.empty()) {
    bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
    int value = digits ? std::stoi(std::string(port)) : 0;
    if (value < 1 || value > 65535) return Invalid("bad port");
    out.port = value;
  }
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  target = target.substr(0, target.find('#'));
  out.target = target.starts_with('/') ? std::string(target) : "/" + std::string(target);
  return Status::Ok();
}

Result<std::unique_ptr<boost::asio::ssl::context>> MakeTlsContext(const std::string& ca_file) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(ca_file, ec);
  }
  if (ec) {
    std::string from = ca_file.empty() ? "the system's default paths" : "'" + ca_file + "'";
    return Unavailable("cannot load CA certificates from " + from + ": " + ec.message());
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

Status ConfigureTls(SSL* ssl, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  bool ok = true;
  if (ec) {
    ok = SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 && SSL_set1_host(ssl, host.c_str()) == 1;
  } else {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  }
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  return ok ? Status::Ok() : Unavailable("cannot set up TLS verification for '" + host + "'");
}

std::string TlsFailure(const boost::system::error_code& ec, SSL* ssl) {
  std::string what = ec.message();
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) what += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
  return what;
}

}  // namespace slipway::net::client
