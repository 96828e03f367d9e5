#pragma once
// Pure message-head rewriting for the proxy: what the upstream sees of a client's request,
// what the client sees of the upstream's response, and the gateway's own pages. No I/O.
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/http1.h"

namespace slipway::gateway {

// How the body that follows a rewritten head is delimited towards its receiver.
enum class BodyOut {
  kNone,     // no body (or one whose length the head already states, e.g. HEAD)
  kLength,   // Content-Length kept from the original message
  kChunked,  // Transfer-Encoding: chunked (passed through, or re-chunked)
  kClose,    // close-delimited: no length; the connection closes after the body
};

struct ForwardContext {
  std::string_view client_ip;
  std::string_view request_id;  // already validated or generated
  std::string_view proto = "http";
};

// Appends the upstream request head: origin-form target, HTTP/1.1, Host from the request's
// authority, hop-by-hop and Connection-listed fields dropped, Expect dropped (the gateway
// answers 100-continue itself), Slipway's own credentials stripped (Bearer slw_/sls_ and
// the slipway_session cookie), X-Forwarded-For appended, X-Forwarded-Proto/Host set (a
// client's own values are replaced: the gateway is the edge that knows), X-Request-Id set, framing
// re-stated, and for an upgrade "Connection: upgrade" with the client's Upgrade value.
void WriteUpstreamRequest(const http1::RequestHead& req, const ForwardContext& ctx,
                          std::string& out);

// Replaces the Host value of a head written by WriteUpstreamRequest (always its first
// field), for a target that expects its own authority. X-Forwarded-Host keeps the client's.
void ReplaceHost(std::string& head, std::string_view host);

struct ResponseContext {
  int client_minor = 1;
  BodyOut body = BodyOut::kNone;
  bool keep_alive = true;  // false → "Connection: close"
  bool upgrade = false;    // a 101 being relayed: Connection/Upgrade kept
  std::string_view request_id;
  std::string_view set_cookie;  // a full Set-Cookie value to add, or ""
};

// Appends the client's response head: the client's HTTP version, the upstream's status and
// fields minus hop-by-hop ones, Transfer-Encoding re-stated for `body`, Trailer dropped when
// the body is not passed as chunked, X-Request-Id added when the app did not set one.
void WriteClientResponse(const http1::ResponseHead& res, const ResponseContext& ctx,
                         std::string& out);

// An interim (1xx) response to relay as is (103 Early Hints): status line and fields.
void WriteInterim(const http1::ResponseHead& res, std::string& out);

// True for 1–128 characters of [A-Za-z0-9._:+/=-] (uuids, trace ids, base64).
bool ValidRequestId(std::string_view id);
// A fresh 32-hex-digit id from a per-thread generator (unique, not a secret); the second
// form reuses `out`'s storage.
std::string NewRequestId();
void NewRequestId(std::string& out);

// A complete gateway page (HTML, every echoed value escaped by the caller's `detail` being
// plain text that this escapes). `close` adds "Connection: close".
std::string Page(int status, std::string_view title, std::string_view detail, int client_minor,
                 bool close, std::string_view request_id, bool head_only = false);

}  // namespace slipway::gateway
