#include "gateway/http1.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace slipway::gateway::http1 {
namespace {

// Character classes as bits of one 256-entry table: one lookup per byte on the hot path.
enum : std::uint8_t {
  kToken = 1,      // tchar (RFC 9110 §5.6.2): methods, field names, codings, extension names
  kTarget = 2,     // visible ASCII (0x21-0x7E): request-target bytes
  kFieldText = 4,  // field-value, reason-phrase and qdtext bytes: HTAB, SP, VCHAR, obs-text
  kAuthority = 8,  // reg-name, IP-literal and port bytes (RFC 3986 §3.2), without userinfo
};

constexpr bool OneOf(std::string_view set, int c) {
  return set.find(static_cast<char>(c)) != std::string_view::npos;
}

constexpr std::array<std::uint8_t, 256> MakeClasses() {
  std::array<std::uint8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    int bits = 0;
    if (alnum || OneOf("!#$%&'*+-.^_`|~", c)) bits |= kToken;
    if (c > 0x20 && c < 0x7f) bits |= kTarget;
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) bits |= kFieldText;
    if (alnum || OneOf("-._~%!$&'()*+,;=:[]", c)) bits |= kAuthority;
    table[c] = static_cast<std::uint8_t>(bits);
  }
  return table;
}

constexpr std::array<std::int8_t, 256> MakeHexDigits() {
  std::array<std::int8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    int v = -1;
    if (c >= '0' && c <= '9') v = c - '0';
    if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    table[c] = static_cast<std::int8_t>(v);
  }
  return table;
}

constexpr auto kClass = MakeClasses();
constexpr auto kHexDigit = MakeHexDigits();

constexpr int kMaxEmptyLines = 8;             // leading CRLFs skipped before a request line
constexpr std::size_t kMaxLengthDigits = 19;  // below 2^64, so a Content-Length never overflows
constexpr int kMaxSizeDigits = 16;            // likewise for hex chunk sizes
constexpr std::size_t kMaxChunkLine = 4096;   // extension bytes allowed on one chunk-size line

bool Is(char c, std::uint8_t cls) {
  return (kClass[static_cast<unsigned char>(c)] & cls) != 0;
}
bool IsOws(char c) {
  return c == ' ' || c == '\t';
}

// Skips eight bytes at a time while every byte is at least `lowest` (0x20 or 0x21), not
// DEL, and, when `ascii_only`, below 0x80. It stops at the first word that needs a closer
// look, so the byte loop after it decides where the run really ends. Each test is exact as
// a yes/no answer for the whole word, whatever the byte order.
const char* SkipPlain(const char* p, const char* end, std::uint64_t lowest, bool ascii_only) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHigh = kOnes * 0x80;
  const std::uint64_t high_bytes = ascii_only ? kHigh : 0;
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    const std::uint64_t del = w ^ (kOnes * 0x7f);
    const std::uint64_t low = (w - kOnes * lowest) & ~w;  // high bit set: some byte < lowest
    const std::uint64_t is_del = (del - kOnes) & ~del;    // likewise: some byte is DEL
    if ((((low | is_del) & kHigh) | (w & high_bytes)) != 0) break;
    p += 8;
  }
  return p;
}

std::string_view View(const char* begin, const char* end) {
  return {begin, static_cast<std::size_t>(end - begin)};
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && IsOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsOws(s.back())) s.remove_suffix(1);
  return s;
}

bool StartsWithI(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

// True when `match` accepts a non-empty element of the comma-separated list (RFC 9110 §5.6.1).
template <typename Match>
bool AnyListItem(std::string_view list, Match&& match) {
  while (!list.empty()) {
    const std::size_t comma = std::min(list.find(','), list.size());
    const std::string_view item = TrimOws(list.substr(0, comma));
    if (!item.empty() && match(item)) return true;
    list.remove_prefix(std::min(comma + 1, list.size()));
  }
  return false;
}

bool ListHas(std::string_view list, std::string_view token) {
  return AnyListItem(list, [token](std::string_view item) { return IEquals(item, token); });
}

// host [":" port]: a reg-name or IPv4 of authority characters, or a bracketed IP-literal;
// the port 1-5 digits up to 65535 (RFC 3986 §3.2.2-3). Anything else is not a Host anyone
// should route or forward on.
bool IsAuthority(std::string_view s) {
  if (s.empty()) return false;
  if (!std::all_of(s.begin(), s.end(), [](char c) { return Is(c, kAuthority); })) return false;
  std::string_view host = s, port;
  if (s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    host = s.substr(0, close + 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return false;
    port = rest.empty() ? rest : rest.substr(1);
    if (rest.size() == 1) return false;
  } else if (auto colon = s.find(':'); colon != std::string_view::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (host.empty() || (host.front() != '[' && host.find_first_of("[]") != std::string_view::npos))
    return false;
  if (port.empty()) return true;
  if (port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

bool ParseContentLength(std::string_view v, std::uint64_t& n) {
  if (v.empty() || v.size() > kMaxLengthDigits) return false;
  n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

// Why parsing stopped; copied into the head only on error.
struct Failure {
  int status = 0;
  std::string_view detail;
  Parse Set(int s, std::string_view d) {
    status = s;
    detail = d;
    return Parse::kError;
  }
};

struct Cursor {
  const char* p;
  const char* end;
  std::size_t left() const { return static_cast<std::size_t>(end - p); }
};

// Consumes the CRLF at the cursor; anything else there (a bare LF included) is an error.
Parse ExpectCrlf(Cursor& c, Failure& fail, std::string_view what) {
  if (c.p == c.end) return Parse::kIncomplete;
  if (*c.p != '\r') return fail.Set(400, *c.p == '\n' ? "bare LF line ending" : what);
  if (c.p + 1 == c.end) return Parse::kIncomplete;
  if (c.p[1] != '\n') return fail.Set(400, "bare CR");
  c.p += 2;
  return Parse::kDone;
}

// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
// Only a few are skipped so a peer cannot hold a connection with an endless stream of them.
Parse SkipEmptyLines(Cursor& c, Failure& fail) {
  for (int lines = 0;; ++lines) {
    if (c.p == c.end) return Parse::kIncomplete;
    if (*c.p == '\n') return fail.Set(400, "bare LF line ending");
    if (*c.p != '\r') return Parse::kDone;
    if (c.left() < 2) return Parse::kIncomplete;
    if (c.p[1] != '\n') return fail.Set(400, "bare CR");
    if (lines == kMaxEmptyLines) return fail.Set(400, "too many empty lines before the request");
    c.p += 2;
  }
}

Parse ParseMethod(Cursor& c, RequestHead& out, Failure& fail) {
  const char* start = c.p;
  while (c.p != c.end && Is(*c.p, kToken)) ++c.p;
  if (c.p == c.end) return Parse::kIncomplete;
  if (*c.p != ' ' || c.p == start) return fail.Set(400, "malformed request line");
  out.method = View(start, c.p++);
  if (out.method == "CONNECT") return fail.Set(400, "CONNECT is not supported");
  return Parse::kDone;
}

// Decides 414 as soon as the target outgrows the limit, without waiting for the rest.
Parse ParseTarget(Cursor& c, std::size_t max_target, RequestHead& out, Failure& fail) {
  const char* start = c.p;
  const char* stop = c.p + (max_target < c.left() ? max_target + 1 : c.left());
  c.p = SkipPlain(c.p, stop, 0x21, true);
  while (c.p != stop && Is(*c.p, kTarget)) ++c.p;
  if (static_cast<std::size_t>(c.p - start) > max_target) {
    return fail.Set(414, "request target too long");
  }
  if (c.p == c.end) return Parse::kIncomplete;
  if (c.p == start) return fail.Set(400, "malformed request line");
  if (*c.p != ' ') return fail.Set(400, "invalid character in request target");
  out.target = View(start, c.p++);
  return Parse::kDone;
}

// "HTTP/" DIGIT "." DIGIT, checked byte by byte so garbage fails before the line is complete.
Parse ParseVersion(Cursor& c, int& minor, Failure& fail) {
  constexpr std::string_view kShape = "HTTP/#.#";
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    if (i == c.left()) return Parse::kIncomplete;
    const char ch = c.p[i];
    const bool ok = kShape[i] == '#' ? ch >= '0' && ch <= '9' : ch == kShape[i];
    if (!ok) return fail.Set(400, "malformed HTTP version");
  }
  const int major = c.p[5] - '0';
  minor = c.p[7] - '0';
  c.p += kShape.size();
  if (major != 1 || minor > 1) return fail.Set(505, "HTTP version not supported");
  return Parse::kDone;
}

Parse ParseRequestLine(Cursor& c, const Limits& limits, RequestHead& out, Failure& fail) {
  Parse r = ParseMethod(c, out, fail);
  if (r == Parse::kDone) r = ParseTarget(c, limits.max_target, out, fail);
  if (r == Parse::kDone) r = ParseVersion(c, out.minor, fail);
  if (r == Parse::kDone) r = ExpectCrlf(c, fail, "malformed request line");
  return r;
}

// name ":" OWS value OWS CRLF. The name runs up to the colon with no whitespace, so
// "Host : x" fails here, and a line opening with SP/HTAB (obs-fold) has an empty name.
Parse ParseField(Cursor& c, HeaderField& field, Failure& fail) {
  const char* name = c.p;
  while (c.p != c.end && Is(*c.p, kToken)) ++c.p;
  if (c.p == c.end) return Parse::kIncomplete;
  if (c.p == name && IsOws(*c.p)) return fail.Set(400, "obsolete line folding");
  if (*c.p != ':' || c.p == name) return fail.Set(400, "malformed header field name");
  field.name = View(name, c.p++);
  while (c.p != c.end && IsOws(*c.p)) ++c.p;
  const char* value = c.p;
  c.p = SkipPlain(c.p, c.end, 0x20, false);
  while (c.p != c.end && Is(*c.p, kFieldText)) ++c.p;
  const char* value_end = c.p;
  while (value_end != value && IsOws(value_end[-1])) --value_end;
  field.value = View(value, value_end);
  if (c.p != c.end && *c.p != '\r' && *c.p != '\n') {
    return fail.Set(400, "invalid character in header value");
  }
  return ExpectCrlf(c, fail, "malformed header field");
}

// Field lines up to and including the empty line that ends the head.
Parse ParseFields(Cursor& c, std::size_t max_headers, std::vector<HeaderField>& headers,
                  Failure& fail) {
  for (;;) {
    if (c.p != c.end && *c.p == '\r') return ExpectCrlf(c, fail, "malformed header section");
    HeaderField field;
    const Parse r = ParseField(c, field, fail);
    if (r != Parse::kDone) return r;
    if (headers.size() == max_headers) return fail.Set(431, "too many header fields");
    headers.push_back(field);
  }
}

// What the framing-relevant fields say, gathered in one walk over the headers.
struct Facts {
  int hosts = 0;
  std::string_view host;
  int lengths = 0;
  std::string_view length;
  int codings = 0;
  std::string_view coding;
  bool close = false;
  bool keep_alive = false;
  bool connection_upgrade = false;
  bool upgrade = false;
  bool expect_continue = false;
  bool te_trailers = false;
};

void NoteConnection(Facts& f, std::string_view value) {
  AnyListItem(value, [&f](std::string_view item) {
    f.close = f.close || IEquals(item, "close");
    f.keep_alive = f.keep_alive || IEquals(item, "keep-alive");
    f.connection_upgrade = f.connection_upgrade || IEquals(item, "upgrade");
    return false;  // visit every item
  });
}

// Dispatches on the name's length first: most fields are compared with nothing.
void Note(Facts& f, const HeaderField& h) {
  switch (h.name.size()) {
    case 2:
      if (IEquals(h.name, "te")) f.te_trailers = f.te_trailers || ListHas(h.value, "trailers");
      break;
    case 4:
      if (IEquals(h.name, "host")) {
        ++f.hosts;
        f.host = h.value;
      }
      break;
    case 6:
      if (IEquals(h.name, "expect")) {
        f.expect_continue = f.expect_continue || IEquals(h.value, "100-continue");
      }
      break;
    case 7:
      if (IEquals(h.name, "upgrade")) f.upgrade = true;
      break;
    case 10:
      if (IEquals(h.name, "connection")) NoteConnection(f, h.value);
      break;
    case 14:
      if (IEquals(h.name, "content-length")) {
        ++f.lengths;
        f.length = h.value;
      }
      break;
    case 17:
      if (IEquals(h.name, "transfer-encoding")) {
        ++f.codings;
        f.coding = h.value;
      }
      break;
    default:
      break;
  }
}

Facts Collect(const std::vector<HeaderField>& headers) {
  Facts f;
  for (const auto& h : headers) Note(f, h);
  return f;
}

bool KeepAlive(const Facts& f, int minor) {
  return !f.close && (minor == 1 || f.keep_alive);
}

// RFC 9112 §6.1: only "chunked" is decoded here, and HTTP/1.0 messages cannot use it.
Parse ResolveCoding(std::string_view coding, int minor, Framing& framing, Failure& fail) {
  if (minor == 0) return fail.Set(400, "Transfer-Encoding in HTTP/1.0");
  if (coding.empty()) return fail.Set(400, "empty Transfer-Encoding");
  if (!IEquals(coding, "chunked")) return fail.Set(501, "unsupported transfer coding");
  framing = Framing::kChunked;
  return Parse::kDone;
}

// RFC 9112 §6.3, minus every leniency that lets two parsers disagree on where a body ends.
// `absent` is the framing of a message with neither field.
Parse ResolveFraming(const Facts& f, int minor, Framing absent, Framing& framing,
                     std::uint64_t& length, Failure& fail) {
  if (f.codings > 1) return fail.Set(400, "several Transfer-Encoding headers");
  if (f.codings == 1 && f.lengths > 0) {
    return fail.Set(400, "both Transfer-Encoding and Content-Length");
  }
  if (f.lengths > 1) return fail.Set(400, "several Content-Length headers");
  if (f.codings == 1) return ResolveCoding(f.coding, minor, framing, fail);
  framing = absent;
  if (f.lengths == 0) return Parse::kDone;
  if (!ParseContentLength(f.length, length)) return fail.Set(400, "invalid Content-Length");
  framing = length == 0 ? Framing::kNone : Framing::kLength;
  return Parse::kDone;
}

// "http[s]://authority[/path[?query]]": the authority becomes the host. A query with no
// path ("http://h?q") is refused: its origin-form "/?q" is not a view of the buffer.
Parse ResolveAbsoluteForm(RequestHead& out, Failure& fail) {
  std::string_view rest = out.target;
  if (StartsWithI(rest, "http://")) {
    rest.remove_prefix(7);
  } else if (StartsWithI(rest, "https://")) {
    rest.remove_prefix(8);
  } else {
    return fail.Set(400, "unsupported request target");
  }
  const std::string_view authority = rest.substr(0, std::min(rest.find('/'), rest.find('?')));
  if (authority.find('@') != std::string_view::npos) {
    return fail.Set(400, "userinfo in request target");
  }
  if (!IsAuthority(authority)) return fail.Set(400, "invalid authority in request target");
  rest.remove_prefix(authority.size());
  if (!rest.empty() && rest.front() == '?') return fail.Set(400, "query without a path");
  out.host = authority;
  out.path = rest.empty() ? std::string_view("/") : rest;
  return Parse::kDone;
}

Parse ResolveTarget(RequestHead& out, Failure& fail) {
  if (out.target.front() == '/') {
    out.path = out.target;
    return Parse::kDone;
  }
  if (out.target == "*") {
    if (out.method != "OPTIONS") return fail.Set(400, "asterisk-form is only for OPTIONS");
    out.path = out.target;
    return Parse::kDone;
  }
  return ResolveAbsoluteForm(out, fail);
}

// HTTP/1.1 needs exactly one Host (RFC 9112 §3.2); an absolute-form authority overrides it.
Parse ResolveHost(const Facts& f, RequestHead& out, Failure& fail) {
  if (f.hosts > 1) return fail.Set(400, "several Host headers");
  if (f.hosts == 0 && out.minor == 1) return fail.Set(400, "missing Host header");
  if (!f.host.empty() && !IsAuthority(f.host)) return fail.Set(400, "invalid Host header");
  if (!out.host.empty()) return Parse::kDone;
  if (f.hosts == 1 && f.host.empty()) return fail.Set(400, "empty Host header");
  out.host = f.host;
  return Parse::kDone;
}

Parse InterpretRequest(RequestHead& out, Failure& fail) {
  Parse r = ResolveTarget(out, fail);
  if (r != Parse::kDone) return r;
  const Facts f = Collect(out.headers);
  r = ResolveFraming(f, out.minor, Framing::kNone, out.framing, out.content_length, fail);
  if (r == Parse::kDone) r = ResolveHost(f, out, fail);
  if (r != Parse::kDone) return r;
  out.keep_alive = KeepAlive(f, out.minor);
  out.expect_continue = f.expect_continue;
  // An Upgrade in an HTTP/1.0 request is ignored (RFC 9110 §7.8).
  out.upgrade = f.connection_upgrade && f.upgrade && out.minor == 1;
  out.te_trailers = f.te_trailers;
  return Parse::kDone;
}

Parse ParseRequest(Cursor c, const Limits& limits, RequestHead& out, Failure& fail) {
  const char* begin = c.p;
  Parse r = SkipEmptyLines(c, fail);
  if (r == Parse::kDone) r = ParseRequestLine(c, limits, out, fail);
  if (r == Parse::kDone) r = ParseFields(c, limits.max_headers, out.headers, fail);
  if (r != Parse::kDone) return r;
  out.head_size = static_cast<std::size_t>(c.p - begin);
  return InterpretRequest(out, fail);
}

Parse ParseStatusCode(Cursor& c, int& status, Failure& fail) {
  status = 0;
  for (int i = 0; i < 3; ++i, ++c.p) {
    if (c.p == c.end) return Parse::kIncomplete;
    if (*c.p < '0' || *c.p > '9') return fail.Set(400, "malformed status code");
    status = status * 10 + (*c.p - '0');
  }
  if (status < 100 || status > 599) return fail.Set(400, "status code out of range");
  return Parse::kDone;
}

// The reason phrase is optional, and so is the space before it ("HTTP/1.1 200\r\n").
Parse ParseReason(Cursor& c, std::string_view& reason, Failure& fail) {
  if (c.p != c.end && *c.p == ' ') {
    const char* start = ++c.p;
    while (c.p != c.end && Is(*c.p, kFieldText)) ++c.p;
    reason = View(start, c.p);
  }
  return ExpectCrlf(c, fail, "malformed status line");
}

Parse ParseStatusLine(Cursor& c, ResponseHead& out, Failure& fail) {
  const Parse r = ParseVersion(c, out.minor, fail);
  if (r != Parse::kDone) return r;
  if (c.p == c.end) return Parse::kIncomplete;
  if (*c.p++ != ' ') return fail.Set(400, "malformed status line");
  const Parse code = ParseStatusCode(c, out.status, fail);
  return code == Parse::kDone ? ParseReason(c, out.reason, fail) : code;
}

Parse InterpretResponse(std::string_view method, ResponseHead& out, Failure& fail) {
  if (method == "CONNECT" && out.status / 100 == 2) return fail.Set(502, "2xx to CONNECT");
  const Facts f = Collect(out.headers);
  const Parse r =
      ResolveFraming(f, out.minor, Framing::kUntilClose, out.framing, out.content_length, fail);
  if (r != Parse::kDone) return r;
  const int s = out.status;
  if (method == "HEAD" || s < 200 || s == 204 || s == 304) {
    out.framing = Framing::kNone;
    out.content_length = 0;
  }
  out.keep_alive = KeepAlive(f, out.minor) && out.framing != Framing::kUntilClose;
  return Parse::kDone;
}

Parse ParseResponse(Cursor c, const Limits& limits, std::string_view method, ResponseHead& out,
                    Failure& fail) {
  const char* begin = c.p;
  Parse r = ParseStatusLine(c, out, fail);
  if (r == Parse::kDone) r = ParseFields(c, limits.max_headers, out.headers, fail);
  if (r != Parse::kDone) return r;
  out.head_size = static_cast<std::size_t>(c.p - begin);
  return InterpretResponse(method, out, fail);
}

// Resets every field but keeps the header vector's capacity for the next message.
template <typename Head>
void Reset(Head& out) {
  std::vector<HeaderField> headers = std::move(out.headers);
  headers.clear();
  out = Head{};
  out.headers = std::move(headers);
}

// Only the first max_head bytes are parsed; a head not complete within them is too large.
Cursor Bounded(std::string_view buf, const Limits& limits) {
  const std::string_view head = buf.substr(0, limits.max_head);
  return {head.data(), head.data() + head.size()};
}

// Positions on a chunk-size line after the size (RFC 9112 §7.1.1):
//   chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ),
//   ext-val = token / quoted-string.
enum ExtPos : int {
  kAfterItem,    // after the size, a value or a closing quote: ";", CR or BWS
  kBeforeSemi,   // after BWS: more BWS or ";"
  kBeforeName,   // after ";": BWS or the name's first byte
  kInName,       // name bytes, then "=", ";", CR or BWS
  kAfterName,    // after BWS behind a name: BWS, "=" or ";"
  kBeforeValue,  // after "=": BWS, a token byte or an opening quote
  kInValue,      // token value bytes
  kInQuoted,     // qdtext, a backslash or the closing quote
  kQuotedPair,   // the byte after a backslash
  kLineEnd,      // CR: the line is over, LF must follow
  kExtBad,
};

int NextExtPos(int pos, unsigned char c) {
  const bool token = (kClass[c] & kToken) != 0;
  const bool ws = c == ' ' || c == '\t';
  switch (pos) {
    case kAfterItem:
      return c == ';' ? kBeforeName : c == '\r' ? kLineEnd : ws ? kBeforeSemi : kExtBad;
    case kBeforeSemi:
      return c == ';' ? kBeforeName : ws ? kBeforeSemi : kExtBad;
    case kBeforeName:
      return token ? kInName : ws ? kBeforeName : kExtBad;
    case kInName:
      return token ? kInName : c == '\r' ? kLineEnd : NextExtPos(kAfterName, c);
    case kAfterName:
      return c == '=' ? kBeforeValue : c == ';' ? kBeforeName : ws ? kAfterName : kExtBad;
    case kBeforeValue:
      return token ? kInValue : c == '"' ? kInQuoted : ws ? kBeforeValue : kExtBad;
    case kInValue:
      return token ? kInValue : NextExtPos(kAfterItem, c);
    case kInQuoted:
      if (c == '"') return kAfterItem;
      if (c == '\\') return kQuotedPair;
      return (kClass[c] & kFieldText) != 0 ? kInQuoted : kExtBad;
    case kQuotedPair:
      return (kClass[c] & kFieldText) != 0 ? kInQuoted : kExtBad;
    default:
      return kExtBad;
  }
}

// Positions on a trailer field line; its first byte is checked by the caller.
enum FieldPos : int { kFieldName, kFieldValue, kFieldEnd, kFieldBad };

int NextFieldPos(int pos, unsigned char c) {
  if (pos == kFieldName) {
    return (kClass[c] & kToken) != 0 ? kFieldName : c == ':' ? kFieldValue : kFieldBad;
  }
  return (kClass[c] & kFieldText) != 0 ? kFieldValue : c == '\r' ? kFieldEnd : kFieldBad;
}

}  // namespace

Parse ParseRequestHead(std::string_view buf, const Limits& limits, RequestHead& out) {
  Reset(out);
  Failure fail;
  Parse r = ParseRequest(Bounded(buf, limits), limits, out, fail);
  if (r == Parse::kIncomplete && buf.size() >= limits.max_head) {
    r = fail.Set(431, "request head too large");
  }
  if (r == Parse::kError) {
    out.error_status = fail.status;
    out.error_detail = fail.detail;
  }
  return r;
}

Parse ParseResponseHead(std::string_view buf, const Limits& limits, std::string_view request_method,
                        ResponseHead& out) {
  Reset(out);
  Failure fail;
  Parse r = ParseResponse(Bounded(buf, limits), limits, request_method, out, fail);
  if (r == Parse::kIncomplete && buf.size() >= limits.max_head) {
    r = fail.Set(502, "response head too large");
  }
  if (r == Parse::kError) {
    out.error_status = 502;  // whatever the cause: the upstream is at fault
    out.error_detail = fail.detail;
  }
  return r;
}

// One byte at a time except chunk data, which is skipped (or handed out) in whole spans.
// Once a size is complete, `size_digits_` holds the position within the rest of the line
// (ExtPos on chunk-size lines, FieldPos on trailer lines) and `trailer_bytes_` counts the
// extension bytes of each chunk-size line before it counts the trailer section.
ChunkedScanner::Step ChunkedScanner::Feed(std::string_view in, bool decode) {
  Step step;
  if (state_ == State::kDone || state_ == State::kError) {
    step.done = state_ == State::kDone;
    step.error = state_ == State::kError;
    return step;
  }
  std::size_t i = 0;
  while (i < in.size()) {
    if (state_ == State::kData) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
      if (decode) step.data.push_back(in.substr(i, n));
      remaining_ -= n;
      i += n;
      if (remaining_ == 0) state_ = State::kDataCr;
      continue;
    }
    const auto c = static_cast<unsigned char>(in[i]);
    bool ok = true;
    switch (state_) {
      case State::kSize:
        if (kHexDigit[c] >= 0) {
          remaining_ = (remaining_ << 4) | static_cast<std::uint64_t>(kHexDigit[c]);
          ok = ++size_digits_ <= kMaxSizeDigits;
          break;
        }
        ok = size_digits_ > 0;
        state_ = State::kExt;
        size_digits_ = kAfterItem;
        trailer_bytes_ = 0;
        if (!ok) break;
        [[fallthrough]];
      case State::kExt:
        size_digits_ = NextExtPos(size_digits_, c);
        if (size_digits_ == kLineEnd) state_ = State::kSizeLf;
        ok = size_digits_ != kExtBad && ++trailer_bytes_ <= kMaxChunkLine;
        break;
      case State::kSizeLf:
        ok = c == '\n';
        state_ = remaining_ > 0 ? State::kData : State::kTrailerStart;
        trailer_bytes_ = 0;
        break;
      case State::kDataCr:
        ok = c == '\r';
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        ok = c == '\n';
        state_ = State::kSize;  // remaining_ is 0 again
        size_digits_ = 0;
        break;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kFinalLf;
          break;
        }
        ok = (kClass[c] & kToken) != 0 && ++trailer_bytes_ <= max_trailer_;
        state_ = State::kTrailerLine;
        size_digits_ = kFieldName;
        break;
      case State::kTrailerLine:
        size_digits_ = NextFieldPos(size_digits_, c);
        if (size_digits_ == kFieldEnd) state_ = State::kTrailerLf;
        ok = size_digits_ != kFieldBad && ++trailer_bytes_ <= max_trailer_;
        break;
      case State::kTrailerLf:
        ok = c == '\n' && ++trailer_bytes_ <= max_trailer_;
        state_ = State::kTrailerStart;
        break;
      case State::kFinalLf:
        ok = c == '\n';
        state_ = State::kDone;
        break;
      default:  // kData is handled above; kDone and kError return before the loop
        break;
    }
    if (!ok) {
      state_ = State::kError;
      step.error = true;
      step.consumed = i;
      return step;
    }
    ++i;
    if (state_ == State::kDone) {
      step.done = true;
      step.consumed = i;
      return step;
    }
  }
  step.consumed = i;
  return step;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    // Equal bytes, or the same letter in two cases: they differ only in bit 0x20.
    const auto diff = static_cast<unsigned char>(a[i] ^ b[i]);
    if (diff != 0 && (diff != 0x20 || static_cast<unsigned char>((a[i] | 0x20) - 'a') >= 26)) {
      return false;
    }
  }
  return true;
}

std::string_view Find(const std::vector<HeaderField>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (IEquals(h.name, name)) return h.value;
  }
  return {};
}

bool IsHopByHop(std::string_view name, const std::vector<HeaderField>& headers) {
  static constexpr std::array<std::string_view, 8> kFixed = {
      "connection",        "keep-alive", "proxy-connection",   "te",
      "transfer-encoding", "upgrade",    "proxy-authenticate", "proxy-authorization"};
  for (std::string_view fixed : kFixed) {
    if (IEquals(name, fixed)) return true;
  }
  for (const auto& h : headers) {
    if (IEquals(h.name, "connection") && ListHas(h.value, name)) return true;
  }
  return false;
}

bool ListContains(std::string_view list, std::string_view token) {
  return ListHas(list, token);
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace slipway::gateway::http1
