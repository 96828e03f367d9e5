// TargetFromUrl: the upstream URLs of sandbox services (`{upstream: URL}`).
#include <arpa/inet.h>

#include <charconv>

#include "gateway/target.h"

namespace slipway::gateway {
namespace {

constexpr auto npos = std::string_view::npos;
constexpr std::string_view kScheme = "http://";

bool IEqualsAscii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 1123 labels (letters, digits, inner hyphens; underscores too, as container networks
// use them), 1..63 bytes each, 253 in all, an optional final dot. All-numeric dotted names
// must be IPv4 addresses (checked by the caller).
bool ValidName(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return false;
  for (;;) {
    auto dot = host.find('.');
    std::string_view label = host.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!IsAlnum(c) && c != '-' && c != '_') return false;
    if (dot == npos) return true;
    host.remove_prefix(dot + 1);
  }
}

bool LooksNumeric(std::string_view host) {
  return host.find_first_not_of("0123456789.") == npos;
}

// The host as the resolver takes it (IPv6 without brackets), or a reason.
Result<std::string> ParseHost(std::string_view host) {
  if (host.empty()) return Invalid("upstream URL: the host is empty");
  if (host.front() == '[') {
    if (host.back() != ']') return Invalid("upstream URL: an IPv6 address needs a closing ']'");
    std::string inner(host.substr(1, host.size() - 2));
    in6_addr addr{};
    if (inet_pton(AF_INET6, inner.c_str(), &addr) != 1)
      return Invalid("upstream URL: the host is not a valid IPv6 address");
    return inner;
  }
  if (LooksNumeric(host)) {
    in_addr addr{};
    if (inet_pton(AF_INET, std::string(host).c_str(), &addr) != 1)
      return Invalid("upstream URL: the host is not a valid IPv4 address");
    return std::string(host);
  }
  if (!ValidName(host)) return Invalid("upstream URL: the host is not a valid DNS name");
  return std::string(host);
}

Result<int> ParsePort(std::string_view digits) {
  if (digits.empty()) return Invalid("upstream URL: the port is empty");
  int port = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.size() > 5 || port < 1 ||
      port > 65535)
    return Invalid("upstream URL: the port must be a number from 1 to 65535");
  return port;
}

// Splits "host[:port]" (the host possibly "[v6]").
Status SplitAuthority(std::string_view authority, std::string_view& host, std::string_view& port) {
  std::size_t colon = npos;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == npos) return Invalid("upstream URL: an IPv6 address needs a closing ']'");
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        return Invalid("upstream URL: unexpected characters after the IPv6 address");
      colon = close + 1;
    }
  } else {
    colon = authority.find(':');
  }
  host = authority.substr(0, colon);
  port = colon == npos ? std::string_view{} : authority.substr(colon + 1);
  if (colon != npos && port.empty()) return Invalid("upstream URL: the port is empty");
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<Target>> TargetFromUrl(const std::string& id, const std::string& url) {
  std::string_view rest = url;
  if (rest.size() < kScheme.size() || !IEqualsAscii(rest.substr(0, kScheme.size()), kScheme)) {
    auto sep = rest.find("://");
    if (sep != npos && IEqualsAscii(rest.substr(0, sep), "https"))
      return Invalid("upstream URL: only http:// is supported (https is not)");
    return Invalid("upstream URL: it must start with http://");
  }
  rest.remove_prefix(kScheme.size());
  for (unsigned char c : rest)
    if (c <= 0x20 || c >= 0x7f) return Invalid("upstream URL: spaces or control characters");
  auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == npos ? std::string_view{} : rest.substr(end);
  if (authority.find('@') != npos) return Invalid("upstream URL: user info is not allowed");
  if (!tail.empty() && tail.front() != '/')
    return Invalid("upstream URL: a query or fragment is not allowed");
  if (tail.size() > 1) return Invalid("upstream URL: a path other than \"/\" is not allowed");
  std::string_view host_part, port_part;
  if (Status s = SplitAuthority(authority, host_part, port_part); !s.ok()) return s;
  auto host = ParseHost(host_part);
  if (!host.ok()) return host.status();
  int port = 80;
  if (!port_part.empty()) {
    auto parsed = ParsePort(port_part);
    if (!parsed.ok()) return parsed.status();
    port = *parsed;
  }
  return std::make_shared<Target>(id, std::move(*host), port, std::string(authority));
}

}  // namespace slipway::gateway
