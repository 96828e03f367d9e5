#include "gateway/heads.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <random>

namespace slipway::gateway {
namespace {

using http1::HeaderField;
using http1::IEquals;

void Field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A client's Slipway API token or session token is for the control plane, never an app:
// any letter case of the scheme and any run of spaces or tabs before the token.
bool IsSlipwayBearer(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  if (value.size() < 7 || !IEquals(value.substr(0, 6), "bearer")) return false;
  value.remove_prefix(6);
  if (value.front() != ' ' && value.front() != '\t') return false;
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  return StartsWith(value, "slw_") || StartsWith(value, "sls_");
}

bool IsSessionCookie(std::string_view pair) {
  while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
  std::string_view name = pair.substr(0, pair.find('='));
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  return name == "slipway_session";
}

// The Cookie value without Slipway's session cookie (a browser sends it to every port of
// the host). Pairs are split on ';' and, as some servers also read it, on ','. Returns ""
// when nothing is left.
std::string WithoutSessionCookie(std::string_view cookies) {
  std::string kept;
  while (!cookies.empty()) {
    auto end = cookies.find_first_of(";,");
    std::string_view part = cookies.substr(0, end);
    char sep = end == std::string_view::npos ? ';' : cookies[end];
    cookies = end == std::string_view::npos ? std::string_view{} : cookies.substr(end + 1);
    if (IsSessionCookie(part)) continue;
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    if (part.empty()) continue;
    if (!kept.empty()) kept.append(sep == ',' ? ", " : "; ");
    kept.append(part);
  }
  return kept;
}

// What the head rewriting needs to know about a field name, found with one switch on its
// length instead of a list of comparisons (this runs for every field of every message).
enum class Kind {
  kOther,
  kHopByHop,
  kHost,
  kContentLength,
  kTransferEncoding,
  kExpect,
  kForwardedFor,
  kForwardedProto,
  kForwardedHost,
  kRequestId,
  kTrailer,
  kAuthorization,
  kCookie,
};

Kind Classify(std::string_view n) {
  auto is = [n](std::string_view lower) { return IEquals(n, lower); };
  switch (n.size()) {
    case 2:
      return is("te") ? Kind::kHopByHop : Kind::kOther;
    case 4:
      return is("host") ? Kind::kHost : Kind::kOther;
    case 6:
      return is("expect") ? Kind::kExpect : is("cookie") ? Kind::kCookie : Kind::kOther;
    case 7:
      return is("upgrade") ? Kind::kHopByHop : is("trailer") ? Kind::kTrailer : Kind::kOther;
    case 10:
      return is("connection") || is("keep-alive") ? Kind::kHopByHop : Kind::kOther;
    case 12:
      return is("x-request-id") ? Kind::kRequestId : Kind::kOther;
    case 13:
      return is("authorization") ? Kind::kAuthorization : Kind::kOther;
    case 14:
      return is("content-length") ? Kind::kContentLength : Kind::kOther;
    case 15:
      return is("x-forwarded-for") ? Kind::kForwardedFor : Kind::kOther;
    case 16:
      return is("proxy-connection")   ? Kind::kHopByHop
             : is("x-forwarded-host") ? Kind::kForwardedHost
                                      : Kind::kOther;
    case 17:
      return is("transfer-encoding")   ? Kind::kTransferEncoding
             : is("x-forwarded-proto") ? Kind::kForwardedProto
                                       : Kind::kOther;
    case 18:
      return is("proxy-authenticate") ? Kind::kHopByHop : Kind::kOther;
    case 19:
      return is("proxy-authorization") ? Kind::kHopByHop : Kind::kOther;
    default:
      return Kind::kOther;
  }
}

// The names a message's Connection header(s) list beyond close/keep-alive/upgrade: those
// fields are hop-by-hop too (RFC 9110 §7.6.1). Collected once per message.
class ConnectionListed {
 public:
  explicit ConnectionListed(const std::vector<HeaderField>& headers) : headers_(headers) {
    for (const auto& h : headers)
      if (h.name.size() == 10 && IEquals(h.name, "connection") && !Trivial(h.value)) {
        if (n_ < values_.size()) values_[n_] = h.value;
        ++n_;
      }
  }
  bool Has(std::string_view name) const {
    for (std::size_t i = 0; i < std::min(n_, values_.size()); ++i)
      if (http1::ListContains(values_[i], name)) return true;
    return n_ > values_.size() && FindSlow(name);
  }

 private:
  static bool Trivial(std::string_view v) {
    return IEquals(v, "close") || IEquals(v, "keep-alive") || IEquals(v, "upgrade");
  }
  bool FindSlow(std::string_view name) const { return http1::IsHopByHop(name, headers_); }
  const std::vector<HeaderField>& headers_;
  std::array<std::string_view, 4> values_{};
  std::size_t n_ = 0;
};

void CopyRequestField(const HeaderField& h, Kind k, std::string& out) {
  if (k == Kind::kAuthorization && IsSlipwayBearer(h.value)) return;
  if (k == Kind::kCookie && h.value.find("slipway_session") != std::string_view::npos) {
    std::string kept = WithoutSessionCookie(h.value);
    if (!kept.empty()) Field(out, h.name, kept);
    return;
  }
  Field(out, h.name, h.value);
}

void WriteForwardedFor(const http1::RequestHead& req, const ForwardContext& ctx, std::string& out) {
  out.append("X-Forwarded-For: ");
  for (const auto& h : req.headers) {
    if (h.value.empty() || Classify(h.name) != Kind::kForwardedFor) continue;
    out.append(h.value);
    out.append(", ");
  }
  out.append(ctx.client_ip);
  out.append("\r\n");
}

void WriteRequestFraming(const http1::RequestHead& req, std::string& out) {
  if (req.framing == http1::Framing::kChunked) {
    out.append("Transfer-Encoding: chunked\r\n");  // re-chunked without trailers
  } else if (req.framing == http1::Framing::kLength) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof(digits), req.content_length).ptr;
    out.append("Content-Length: ");
    out.append(digits, end);
    out.append("\r\n");
  } else if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    out.append("Content-Length: 0\r\n");  // an empty body stated, as RFC 9110 §8.6 suggests
  }
  if (req.te_trailers) out.append("TE: trailers\r\n");
}

}  // namespace

void WriteUpstreamRequest(const http1::RequestHead& req, const ForwardContext& ctx,
                          std::string& out) {
  out.append(req.method);
  out.push_back(' ');
  out.append(req.path);
  out.append(" HTTP/1.1\r\nHost: ");
  out.append(req.host);
  out.append("\r\n");
  ConnectionListed listed(req.headers);
  for (const auto& h : req.headers) {
    Kind k = Classify(h.name);
    if (k != Kind::kOther && k != Kind::kAuthorization && k != Kind::kCookie) continue;
    if (listed.Has(h.name)) continue;
    CopyRequestField(h, k, out);
  }
  WriteForwardedFor(req, ctx, out);
  Field(out, "X-Forwarded-Proto", ctx.proto);
  Field(out, "X-Forwarded-Host", req.host);
  Field(out, "X-Request-Id", ctx.request_id);
  WriteRequestFraming(req, out);
  if (req.upgrade) {
    out.append("Connection: upgrade\r\n");
    Field(out, "Upgrade", http1::Find(req.headers, "upgrade"));
  }
  out.append("\r\n");
}

void ReplaceHost(std::string& head, std::string_view host) {
  constexpr std::string_view kField = "\r\nHost: ";
  auto at = head.find(kField);
  if (at == std::string::npos) return;
  at += kField.size();
  auto end = head.find("\r\n", at);
  if (end == std::string::npos) return;
  head.replace(at, end - at, host);
}

namespace {

// Transfer-Encoding is re-stated for the client's framing; Trailer only announces trailers
// that follow when the body stays chunked; a 101's Connection/Upgrade are re-stated too.
bool DropFromResponse(Kind k, const ResponseContext& ctx) {
  if (k == Kind::kTrailer) return ctx.body != BodyOut::kChunked;
  return k == Kind::kHopByHop || k == Kind::kTransferEncoding;
}

void WriteConnection(const http1::ResponseHead& res, const ResponseContext& ctx, std::string& out) {
  if (ctx.upgrade) {
    out.append("Connection: upgrade\r\n");
    Field(out, "Upgrade", http1::Find(res.headers, "upgrade"));
  } else if (!ctx.keep_alive) {
    out.append("Connection: close\r\n");
  } else if (ctx.client_minor == 0) {
    out.append("Connection: keep-alive\r\n");
  }
}

}  // namespace

void WriteClientResponse(const http1::ResponseHead& res, const ResponseContext& ctx,
                         std::string& out) {
  char line[] = "HTTP/1.1 000 ";
  line[7] = ctx.client_minor == 0 ? '0' : '1';
  line[9] = static_cast<char>('0' + res.status / 100 % 10);
  line[10] = static_cast<char>('0' + res.status / 10 % 10);
  line[11] = static_cast<char>('0' + res.status % 10);
  out.append(line, sizeof(line) - 1);
  out.append(res.reason);
  out.append("\r\n");
  bool has_id = false;
  ConnectionListed listed(res.headers);
  for (const auto& h : res.headers) {
    Kind k = Classify(h.name);
    if (DropFromResponse(k, ctx) || listed.Has(h.name)) continue;
    has_id = has_id || k == Kind::kRequestId;
    Field(out, h.name, h.value);
  }
  if (!has_id && !ctx.request_id.empty()) Field(out, "X-Request-Id", ctx.request_id);
  if (!ctx.set_cookie.empty()) Field(out, "Set-Cookie", ctx.set_cookie);
  if (ctx.body == BodyOut::kChunked) out.append("Transfer-Encoding: chunked\r\n");
  WriteConnection(res, ctx, out);
  out.append("\r\n");
}

void WriteInterim(const http1::ResponseHead& res, std::string& out) {
  fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} ", res.status);
  out.append(res.reason);
  out.append("\r\n");
  ConnectionListed listed(res.headers);
  for (const auto& h : res.headers) {
    Kind k = Classify(h.name);
    if (k != Kind::kHopByHop && k != Kind::kTransferEncoding && !listed.Has(h.name))
      Field(out, h.name, h.value);
  }
  out.append("\r\n");
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '+' || c == '/' || c == '=' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void NewRequestId(std::string& out) {
  // splitmix64 over a per-thread counter seeded once from the OS: cheap, unique enough for
  // correlating logs, and not meant to be unguessable.
  thread_local std::uint64_t state = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  out.resize(32);
  for (int half = 0; half < 2; ++half) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (int i = 0; i < 16; ++i) out[half * 16 + i] = kHex[(z >> (60 - 4 * i)) & 0xF];
  }
}

std::string NewRequestId() {
  std::string id;
  NewRequestId(id);
  return id;
}

std::string Page(int status, std::string_view title, std::string_view detail, int client_minor,
                 bool close, std::string_view request_id, bool head_only) {
  std::string body = fmt::format(
      "<!doctype html><html><head><title>{0} {1}</title></head><body><h1>{0} {1}</h1>"
      "<p>{2}</p><hr><p>slipway gateway</p></body></html>\n",
      status, title, http1::HtmlEscape(detail));
  std::string out = fmt::format(
      "HTTP/1.{} {} {}\r\nServer: slipway\r\nContent-Type: text/html; charset=utf-8\r\n"
      "Cache-Control: no-store\r\nContent-Length: {}\r\n",
      client_minor, status, title, body.size());
  if (!request_id.empty()) Field(out, "X-Request-Id", request_id);
  if (close)
    out.append("Connection: close\r\n");
  else if (client_minor == 0)
    out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
  if (!head_only) out.append(body);
  return out;
}

}  // namespace slipway::gateway
