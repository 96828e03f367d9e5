#pragma once
// A one-shot HTTP/1.1 call to an http:// or https:// URL on another machine, for the control
// plane's outbound calls (deployment notifications). Unlike HttpCall (net/http_client.h) the
// host may be a name, https is spoken (the peer's certificate and host name verified), a
// call can be ended from another thread, and only the response's head is read: a peer can
// make it neither read nor keep a body. Redirects are not followed (a 3xx is returned).
//
// A URL may itself be a credential (a Slack or Teams incoming-webhook URL is one): no message
// of this file repeats the URL, its path, query or user info.
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "core/status.h"
#include "net/http.h"

namespace slipway::net {

// An http(s) URL, split.
struct HttpUrl {
  bool tls = false;
  std::string host;          // a name or an IP address (without the brackets of an IPv6 literal)
  int port = 0;              // 80 or 443 when the URL names none
  std::string target = "/";  // path and query, as written; never empty
};

// kInvalid with a short reason that repeats no part of `url` ("the scheme must be http:// or
// https://", "no host", "bad port", "user info not allowed", "spaces or control
// characters"). Bytes outside printable ASCII are refused as control characters are.
Result<HttpUrl> ParseHttpUrl(std::string_view url);

struct UrlRequest {
  std::string method = "POST";
  std::string url;
  // Sent as given, besides Host, User-Agent, Content-Length and `Connection: close`, which the
  // call sets. A name or value with CR, LF or NUL fails the call (kInvalid).
  Headers headers;
  std::string body;
  // https only: a PEM bundle (a regular file of at most 1 MiB) to verify the server with;
  // "" = the system's CAs.
  std::string ca_file;
  // Bounds the whole call, from the name lookup to the response's head (but see CallUrl).
  std::chrono::milliseconds timeout{5000};
  std::size_t max_head = 8 << 10;  // a larger response head fails the call
};

// Lets another thread end a call in progress. Thread-safe; serves one call at a time.
class CallCanceller {
 public:
  // Ends the call in progress promptly (it returns kCancelled) and makes every later call
  // with this canceller return kCancelled at once. Idempotent.
  void Cancel();
  bool cancelled() const;

  // For CallUrl: while a call runs, `abort` (thread-safe, returns at once) ends it. False
  // when the canceller has been cancelled already (the call must not start).
  bool Attach(std::function<void()> abort);
  void Detach();

 private:
  mutable std::mutex mu_;
  bool cancelled_ = false;
  std::function<void()> abort_;
};

// Sends the request and reads the response's head. Returns the status and the headers
// (lower-cased names; the body is left empty, never read) whatever the status. Errors:
// kInvalid (bad URL or header), kCancelled, kTimeout (no response head within `timeout`),
// kUnavailable (the message says which step failed: "resolve: …", "connect: …", "TLS: …",
// "send: …", "receive: …", or the CA file). Never throws.
//
// A name lookup in progress cannot be interrupted: when the DNS hangs, the call (and a
// Cancel) waits for the system resolver's own timeout (resolv.conf) before returning.
Result<ClientResponse> CallUrl(const UrlRequest& request, CallCanceller* canceller = nullptr);

}  // namespace slipway::net
