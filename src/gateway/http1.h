#pragma once
// Strict HTTP/1.1 message-head parsing and body framing for the gateway (RFC 9112), pure:
// no I/O, no allocation beyond the header vector. Views point into the caller's buffer and
// stay valid while it is unchanged.
//
// Strictness is deliberate (request smuggling, RFC 9112 §6.3 and §11.2): anything two
// parsers could read differently is refused rather than guessed at.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::gateway::http1 {

struct HeaderField {
  std::string_view name;   // as received (token characters only)
  std::string_view value;  // leading/trailing spaces and tabs removed
};

// How the message body is delimited.
enum class Framing {
  kNone,        // no body (requests without CL/TE; HEAD/1xx/204/304 responses; CL: 0)
  kLength,      // exactly content_length bytes
  kChunked,     // chunked coding, ends after the last chunk and trailer section
  kUntilClose,  // responses only: the body runs until the upstream closes
};

struct Limits {
  std::size_t max_head = 64 * 1024;   // whole head, request line included → 431
  std::size_t max_headers = 100;      // header field count → 431
  std::size_t max_target = 8 * 1024;  // request-target length → 414
};

enum class Parse {
  kIncomplete,  // the head is not complete in the buffer yet (and within limits)
  kDone,        // parsed; head_size says how many bytes it took
  kError,       // malformed; `error_status` and `error_detail` say why
};

struct RequestHead {
  std::string_view method;
  std::string_view target;  // as received
  int minor = 1;            // HTTP/1.<minor>; 0 or 1
  std::vector<HeaderField> headers;

  // Derived by the parser:
  std::string_view host;  // the absolute-form authority when present, else the Host header
  std::string_view path;  // origin-form path + query ("/" for absolute-form without a path;
                          // "*" for OPTIONS *)
  Framing framing = Framing::kNone;
  std::uint64_t content_length = 0;
  bool keep_alive = true;  // HTTP/1.1 default unless "Connection: close"; 1.0 needs keep-alive
  bool expect_continue = false;  // "Expect: 100-continue"
  bool upgrade = false;          // "Connection: upgrade" + an Upgrade header
  bool te_trailers = false;      // "TE: trailers"
  std::size_t head_size = 0;     // bytes of the head including the empty line

  // Status and reason when Parse::kError: 400 (malformed, smuggling shapes, several Host),
  // 414 (target too long), 431 (head or header count too large), 501 (unknown transfer
  // coding), 505 (not HTTP/1.x).
  int error_status = 0;
  std::string_view error_detail;  // static text, safe to show (never echoes input)
};

// Parses a request head from the start of `buf`. Refuses: obs-fold, bare CR or LF inside a
// line, control or non-token characters in names, NUL/CR/LF in values, both Content-Length
// and Transfer-Encoding, a Content-Length that is not one plain decimal (comma lists,
// repeats with any value, signs, overflow), Transfer-Encoding other than exactly "chunked"
// (case-insensitive) as the only coding, zero or several Host headers in HTTP/1.1, a
// request line with extra spaces, CONNECT. Leading empty lines are skipped (RFC 9112 §2.2).
Parse ParseRequestHead(std::string_view buf, const Limits& limits, RequestHead& out);

struct ResponseHead {
  int minor = 1;
  int status = 0;
  std::string_view reason;
  std::vector<HeaderField> headers;

  Framing framing = Framing::kNone;
  std::uint64_t content_length = 0;
  bool keep_alive = true;  // false: "Connection: close", HTTP/1.0 without keep-alive, or
                           // a close-delimited body
  std::size_t head_size = 0;
  int error_status = 0;  // 502 when malformed
  std::string_view error_detail;
};

// Parses a response head. `request_method` decides framing: HEAD, and 1xx/204/304 statuses,
// never have a body whatever the headers say; 2xx to CONNECT is refused. Same strictness as
// requests (both CL and TE, bad CL, unknown coding → error).
Parse ParseResponseHead(std::string_view buf, const Limits& limits, std::string_view request_method,
                        ResponseHead& out);

// Follows chunked framing across reads without buffering: feed it the bytes of the body as
// they arrive; it says how many belong to the message (the rest is the next message) and,
// when `decode` is set, which spans are chunk data. Strict: hex sizes only (no sign, at most
// 16 digits), chunk extensions of token/quoted-string form, CRLF line ends only, trailer
// fields well-formed and within `max_trailer` bytes.
class ChunkedScanner {
 public:
  explicit ChunkedScanner(std::size_t max_trailer = 16 * 1024) : max_trailer_(max_trailer) {}

  struct Step {
    std::size_t consumed = 0;  // bytes of `in` that belong to this message
    bool done = false;         // the message ended inside `in` at `consumed`
    bool error = false;        // malformed; stop and close
    // When decoding, the data bytes found in this step, as spans of `in`.
    std::vector<std::string_view> data;
  };

  // Processes `in`, the next bytes of the body. Stops at the end of the message.
  Step Feed(std::string_view in, bool decode = false);
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State {
    kSize,
    kExt,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerStart,
    kTrailerLine,
    kTrailerLf,
    kFinalLf,
    kDone,
    kError,
  };
  State state_ = State::kSize;
  std::uint64_t remaining_ = 0;  // data bytes left in the current chunk
  int size_digits_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::size_t max_trailer_;
  bool ext_quoted_ = false;
  bool line_nonempty_ = false;
};

// Case-insensitive ASCII comparison of header names and tokens.
bool IEquals(std::string_view a, std::string_view b);

// The value of the first header named `name` (case-insensitive), or "" when absent.
std::string_view Find(const std::vector<HeaderField>& headers, std::string_view name);

// True when `name` is hop-by-hop (RFC 9110 §7.6.1): Connection, Keep-Alive,
// Proxy-Connection, TE, Transfer-Encoding, Upgrade, Proxy-Authenticate,
// Proxy-Authorization — or one listed in the message's Connection header(s).
bool IsHopByHop(std::string_view name, const std::vector<HeaderField>& headers);

// True when the comma-separated `list` has the element `token` (case-insensitive, spaces
// around elements ignored).
bool ListContains(std::string_view list, std::string_view token);

// Escapes &, <, >, " and ' for HTML.
std::string HtmlEscape(std::string_view s);

}  // namespace slipway::gateway::http1
