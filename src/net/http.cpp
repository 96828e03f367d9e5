#include "net/http.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace slipway::net {

std::string HttpRequest::Header(std::string_view name) const {
  std::string key(name);
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto it = headers.find(key);
  return it == headers.end() ? "" : it->second;
}

std::string HttpRequest::Query(const std::string& name, const std::string& fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::strtol(std::string(s.substr(i + 1, 2)).c_str(), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

namespace {
// %XX for every byte outside RFC 3986's unreserved set (and '/' when `keep_slash`).
std::string Encode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}
}  // namespace

std::string PercentEncode(std::string_view s) {
  return Encode(s, true);
}

std::string PercentEncodeComponent(std::string_view s) {
  return Encode(s, false);
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    auto eq = part.find('=');
    if (!part.empty()) {
      out[PercentDecode(part.substr(0, eq))] =
          eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

bool ParseUrl(const std::string& url, Endpoint& endpoint, std::string& base_path) {
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    endpoint.tls = true;
  } else if (url.rfind("unix://", 0) == 0) {
    endpoint.unix_path = url.substr(7);
    base_path.clear();
    return !endpoint.unix_path.empty();
  } else {
    return false;
  }
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!base_path.empty() && base_path.back() == '/') base_path.pop_back();
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos || hostport.back() == ']') {
    endpoint.host = hostport;
    endpoint.port = endpoint.tls ? 443 : 80;
  } else {
    endpoint.host = hostport.substr(0, colon);
    endpoint.port = std::atoi(hostport.substr(colon + 1).c_str());
  }
  if (endpoint.host.size() > 1 && endpoint.host.front() == '[') {
    endpoint.host = endpoint.host.substr(1, endpoint.host.size() - 2);
  }
  return !endpoint.host.empty() && endpoint.port > 0 && endpoint.port < 65536;
}

}  // namespace slipway::net
