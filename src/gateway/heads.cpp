#include "gateway/heads.h"

#include <fmt/format.h>

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

// A client's Slipway API token or session token is for the control plane, never an app.
bool IsSlipwayBearer(std::string_view value) {
  return StartsWith(value, "Bearer slw_") || StartsWith(value, "Bearer sls_");
}

// The Cookie value without Slipway's session cookie (a browser sends it to every port of
// the host). Returns "" when nothing is left.
std::string WithoutSessionCookie(std::string_view cookies) {
  std::string kept;
  while (!cookies.empty()) {
    auto end = cookies.find(';');
    std::string_view part = cookies.substr(0, end);
    cookies = end == std::string_view::npos ? std::string_view{} : cookies.substr(end + 1);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    if (part.empty() || StartsWith(part, "slipway_session=")) continue;
    if (!kept.empty()) kept.append("; ");
    kept.append(part);
  }
  return kept;
}

// Fields the gateway re-states or must never forward as received.
bool DropFromRequest(std::string_view name) {
  static constexpr std::string_view kDrop[] = {
      "host",
      "content-length",
      "expect",
      "x-forwarded-for",
      "x-request-id",
      "x-forwarded-proto",
      "x-forwarded-host",
      "trailer"};  // re-stated only when the body stays chunked (see below)
  for (auto d : kDrop)
    if (IEquals(name, d)) return true;
  return false;
}

void CopyRequestField(const HeaderField& h, std::string& out) {
  if (IEquals(h.name, "authorization") && IsSlipwayBearer(h.value)) return;
  if (IEquals(h.name, "cookie") && h.value.find("slipway_session=") != std::string_view::npos) {
    std::string kept = WithoutSessionCookie(h.value);
    if (!kept.empty()) Field(out, h.name, kept);
    return;
  }
  Field(out, h.name, h.value);
}

void WriteForwardedFor(const http1::RequestHead& req, const ForwardContext& ctx, std::string& out) {
  out.append("X-Forwarded-For: ");
  for (const auto& h : req.headers) {
    if (!IEquals(h.name, "x-forwarded-for") || h.value.empty()) continue;
    out.append(h.value);
    out.append(", ");
  }
  out.append(ctx.client_ip);
  out.append("\r\n");
}

void WriteRequestFraming(const http1::RequestHead& req, std::string& out) {
  if (req.framing == http1::Framing::kChunked) {
    out.append("Transfer-Encoding: chunked\r\n");
    std::string_view trailer = http1::Find(req.headers, "trailer");
    if (!trailer.empty()) Field(out, "Trailer", trailer);
  } else if (req.framing == http1::Framing::kLength) {
    fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", req.content_length);
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
  for (const auto& h : req.headers) {
    if (DropFromRequest(h.name) || http1::IsHopByHop(h.name, req.headers)) continue;
    CopyRequestField(h, out);
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

namespace {

bool DropFromResponse(std::string_view name, const ResponseContext& ctx,
                      const http1::ResponseHead& res) {
  if (IEquals(name, "transfer-encoding")) return true;
  if (IEquals(name, "trailer")) return ctx.body != BodyOut::kChunked;
  return http1::IsHopByHop(name, res.headers);  // a 101's Connection/Upgrade are re-stated
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
  fmt::format_to(std::back_inserter(out), "HTTP/1.{} {} ", ctx.client_minor, res.status);
  out.append(res.reason);
  out.append("\r\n");
  bool has_id = false;
  for (const auto& h : res.headers) {
    if (DropFromResponse(h.name, ctx, res)) continue;
    has_id = has_id || IEquals(h.name, "x-request-id");
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
  for (const auto& h : res.headers)
    if (!http1::IsHopByHop(h.name, res.headers)) Field(out, h.name, h.value);
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

std::string NewRequestId() {
  // splitmix64 over a per-thread counter seeded once from the OS: cheap, unique enough for
  // correlating logs, and not meant to be unguessable.
  thread_local std::uint64_t state = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  auto next = [] {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::uint64_t a = next(), b = next();
  return fmt::format("{:016x}{:016x}", a, b);
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
