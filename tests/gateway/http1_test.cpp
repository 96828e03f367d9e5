#include "gateway/http1.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace slipway::gateway::http1 {
namespace {

using namespace std::string_literals;

// 0 when accepted, -1 when incomplete, else the error status.
int RequestOutcome(const std::string& text, const Limits& limits = {}) {
  RequestHead head;
  const Parse r = ParseRequestHead(text, limits, head);
  if (r == Parse::kDone) return 0;
  if (r == Parse::kIncomplete) return -1;
  EXPECT_FALSE(head.error_detail.empty());
  return head.error_status;
}

int ResponseOutcome(const std::string& text, std::string_view method = "GET",
                    const Limits& limits = {}) {
  ResponseHead head;
  const Parse r = ParseResponseHead(text, limits, method, head);
  if (r == Parse::kDone) return 0;
  if (r == Parse::kIncomplete) return -1;
  EXPECT_FALSE(head.error_detail.empty());
  return head.error_status;
}

std::string Get(const std::string& fields) {
  return "GET / HTTP/1.1\r\nHost: example.com\r\n" + fields + "\r\n";
}

std::string Post(const std::string& fields) {
  return "POST /upload HTTP/1.1\r\nHost: example.com\r\n" + fields + "\r\n";
}

// ---- Requests: accepted shapes -------------------------------------------------------

TEST(RequestHead, ParsesOriginForm) {
  const std::string text =
      "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t \r\nAccept:*/*\r\n\r\n";
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/a/b?c=d");
  EXPECT_EQ(h.path, "/a/b?c=d");
  EXPECT_EQ(h.host, "example.com:8080");
  EXPECT_EQ(h.minor, 1);
  ASSERT_EQ(h.headers.size(), 3u);
  EXPECT_EQ(h.headers[1].name, "User-Agent");
  EXPECT_EQ(h.headers[1].value, "t") << "trailing OWS is trimmed";
  EXPECT_EQ(h.headers[2].value, "*/*") << "no space after the colon is fine";
  EXPECT_EQ(h.framing, Framing::kNone);
  EXPECT_EQ(h.content_length, 0u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_FALSE(h.upgrade);
  EXPECT_FALSE(h.te_trailers);
  EXPECT_EQ(h.head_size, text.size());
  EXPECT_EQ(h.error_status, 0);
}

TEST(RequestHead, ValuesKeepInnerWhitespaceAndObsText) {
  const std::string text = Get("X-A: \t a \t b \t\r\nX-B: caf\xC3\xA9\r\nX-C:\r\nX-D:   \r\n");
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(Find(h.headers, "x-a"), "a \t b");
  EXPECT_EQ(Find(h.headers, "X-B"), "caf\xC3\xA9");
  EXPECT_EQ(Find(h.headers, "x-c"), "");
  EXPECT_EQ(Find(h.headers, "x-d"), "");
  EXPECT_EQ(h.headers.size(), 5u);
}

TEST(RequestHead, AbsoluteFormAuthorityOverridesHost) {
  const std::string text =
      "GET HTTPS://api.example.com:8443/v1/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n";
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(h.host, "api.example.com:8443");
  EXPECT_EQ(h.path, "/v1/x?y=1");
  EXPECT_EQ(h.target, "HTTPS://api.example.com:8443/v1/x?y=1");
}

TEST(RequestHead, AbsoluteFormWithoutPathGetsSlash) {
  const std::string text = "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n";
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.path, "/");
}

TEST(RequestHead, AbsoluteFormAcceptsEmptyHostHeaderAndIpLiteral) {
  const std::string text = "GET http://[::1]:8080/x HTTP/1.1\r\nHost:\r\n\r\n";
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(h.host, "[::1]:8080");
  EXPECT_EQ(h.path, "/x");
}

TEST(RequestHead, AbsoluteFormErrors) {
  EXPECT_EQ(RequestOutcome("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "userinfo";
  EXPECT_EQ(RequestOutcome("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "no authority";
  EXPECT_EQ(RequestOutcome("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "scheme";
  EXPECT_EQ(RequestOutcome("GET http:/h/x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(RequestOutcome("GET h/x HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "not a target form";
  EXPECT_EQ(RequestOutcome("GET http://h#f HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(RequestOutcome("GET http://h/x HTTP/1.1\r\n\r\n"), 400)
      << "HTTP/1.1 still needs a Host header";
  EXPECT_EQ(RequestOutcome("GET http://h/x HTTP/1.0\r\n\r\n"), 0);
  // "http://h?q" would need the path "/?q", which is not a view of the buffer: refused.
  EXPECT_EQ(RequestOutcome("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(RequestHead, AsteriskFormOnlyForOptions) {
  const std::string text = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(h.path, "*");
  EXPECT_EQ(RequestOutcome("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(RequestOutcome("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

TEST(RequestHead, ConnectIsRefusedWith400) {
  EXPECT_EQ(RequestOutcome("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"), 400);
  EXPECT_EQ(RequestOutcome("CONNECT "), 400) << "decided as soon as the method is read";
}

TEST(RequestHead, Http10DefaultsAndOptionalHost) {
  const std::string text = "GET / HTTP/1.0\r\n\r\n";
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(h.minor, 0);
  EXPECT_EQ(h.host, "");
  EXPECT_FALSE(h.keep_alive);
  EXPECT_EQ(RequestOutcome("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

TEST(RequestHead, SkipsAFewLeadingEmptyLines) {
  const std::string text = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.head_size, text.size()) << "the skipped lines count in head_size";
  std::string eight, nine;
  for (int i = 0; i < 8; ++i) eight += "\r\n";
  nine = eight + "\r\n";
  EXPECT_EQ(RequestOutcome(eight + "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
  EXPECT_EQ(RequestOutcome(nine + "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(RequestOutcome("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "bare LF";
  EXPECT_EQ(RequestOutcome("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400) << "bare CR";
}

TEST(RequestHead, FramingFromContentLengthAndChunked) {
  RequestHead h;
  std::string text = Post("Content-Length: 42\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_EQ(h.framing, Framing::kLength);
  EXPECT_EQ(h.content_length, 42u);

  text = Post("Content-Length: 0\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_EQ(h.framing, Framing::kNone) << "CL: 0 means no body";
  EXPECT_EQ(h.content_length, 0u);

  text = Post("content-length: 9999999999999999999\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << "19 digits fit";
  EXPECT_EQ(h.content_length, 9999999999999999999u);

  text = Post("Content-Length:  007 \r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_EQ(h.content_length, 7u);

  for (const char* te : {"chunked", "CHUNKED", "\tchunked", "Chunked  "}) {
    text = Post("Transfer-Encoding:"s + te + "\r\n");
    ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << te << ": " << h.error_detail;
    EXPECT_EQ(h.framing, Framing::kChunked) << te;
  }
}

TEST(RequestHead, ConnectionOptions) {
  RequestHead h;
  const auto keep_alive = [&h](const std::string& text) {
    EXPECT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << text;
    return h.keep_alive;
  };
  EXPECT_FALSE(keep_alive(Get("Connection: close\r\n")));
  EXPECT_FALSE(keep_alive(Get("Connection: keep-alive, CLOSE\r\n")));
  EXPECT_FALSE(keep_alive(Get("Connection: x-foo\r\nConnection: ,close ,\r\n")));
  EXPECT_TRUE(keep_alive(Get("Connection: closed, x-close\r\n"))) << "whole tokens only";
  EXPECT_TRUE(keep_alive(Get("Connection: keep-alive\r\n")));
  EXPECT_FALSE(keep_alive("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_FALSE(keep_alive("GET / HTTP/1.0\r\nConnection: x-foo\r\n\r\n"));
  EXPECT_TRUE(keep_alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
  EXPECT_FALSE(keep_alive("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
}

TEST(RequestHead, ExpectUpgradeAndTe) {
  RequestHead h;
  std::string text = Post("Expect: 100-Continue\r\nContent-Length: 5\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_TRUE(h.expect_continue);
  text = Post("Expect: something-else\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone) << "unknown expectations are ignored";
  EXPECT_FALSE(h.expect_continue);

  text = Get("Connection: Upgrade\r\nUpgrade: websocket\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_TRUE(h.upgrade);
  text = Get("Upgrade: websocket\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_FALSE(h.upgrade) << "Upgrade not named in Connection";
  text = Get("Connection: upgrade\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_FALSE(h.upgrade) << "no Upgrade header";

  text = Get("TE: deflate;q=0.5, Trailers\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_TRUE(h.te_trailers);
  text = Get("TE: gzip\r\n");
  ASSERT_EQ(ParseRequestHead(text, {}, h), Parse::kDone);
  EXPECT_FALSE(h.te_trailers);
}

TEST(RequestHead, ReusedHeadIsResetAndKeepsCapacity) {
  RequestHead h;
  const std::string first = Post("Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n");
  ASSERT_EQ(ParseRequestHead(first, {}, h), Parse::kDone);
  const auto capacity = h.headers.capacity();
  const std::string bad = Get("Host: again\r\n");
  ASSERT_EQ(ParseRequestHead(bad, {}, h), Parse::kError);
  EXPECT_EQ(h.error_status, 400);
  const std::string second = "GET /x HTTP/1.0\r\n\r\n";
  ASSERT_EQ(ParseRequestHead(second, {}, h), Parse::kDone);
  EXPECT_EQ(h.headers.size(), 0u);
  EXPECT_GE(h.headers.capacity(), capacity);
  EXPECT_EQ(h.framing, Framing::kNone);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_EQ(h.host, "");
  EXPECT_EQ(h.error_status, 0);
  EXPECT_TRUE(h.error_detail.empty());
}

TEST(RequestHead, PipelinedRequestsParseOneAfterAnother) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "\r\nPOST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  const std::string buf = first + second;
  RequestHead h;
  ASSERT_EQ(ParseRequestHead(buf, {}, h), Parse::kDone);
  EXPECT_EQ(h.path, "/one");
  ASSERT_EQ(h.head_size, first.size());
  ASSERT_EQ(ParseRequestHead(std::string_view(buf).substr(h.head_size), {}, h), Parse::kDone);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.content_length, 3u);
  EXPECT_EQ(h.head_size, second.size() - 3);
}

TEST(RequestHead, EveryPrefixIsIncomplete) {
  const std::vector<std::string> messages = {
      "GET /a?b HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
      "\r\n\r\nPOST http://h:1/p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
      "OPTIONS * HTTP/1.0\r\n\r\n",
  };
  for (const auto& m : messages) {
    RequestHead h;
    for (std::size_t n = 0; n < m.size(); ++n) {
      ASSERT_EQ(ParseRequestHead(std::string_view(m).substr(0, n), {}, h), Parse::kIncomplete)
          << "prefix " << n << " of " << m << ": " << h.error_detail;
    }
    ASSERT_EQ(ParseRequestHead(m, {}, h), Parse::kDone) << h.error_detail;
    EXPECT_EQ(h.head_size, m.size());
  }
}

TEST(RequestHead, GarbageFailsBeforeTheLineEnds) {
  EXPECT_EQ(RequestOutcome("GET / XTTP"), 400);
  EXPECT_EQ(RequestOutcome("G\x01"), 400);
  EXPECT_EQ(RequestOutcome("GET / HTTP/1.1\r\nHo st"), 400);
}

// ---- Requests: refused shapes ------------------------------------------------------------

struct Refusal {
  const char* name;
  std::string text;
  int status;
};

TEST(RequestHead, RefusesMalformedRequestLines) {
  const std::vector<Refusal> cases = {
      {"two spaces after method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"two spaces after target", "GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
      {"no version", "GET /\r\nHost: h\r\n\r\n", 400},
      {"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
      {"version garbage", "GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400},
      {"long version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
      {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
      {"bare LF after request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
      {"bare CR after request line", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
      {"method not a token", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"control in target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"NUL in target", "GET /a\0 HTTP/1.1\r\nHost: h\r\n\r\n"s, 400},
      {"obs-text in target", "GET /caf\xC3\xA9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
  };
  for (const auto& c : cases) EXPECT_EQ(RequestOutcome(c.text), c.status) << c.name;
}

TEST(RequestHead, RefusesSmugglingShapes) {
  const std::vector<Refusal> cases = {
      {"CL and TE", Post("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"), 400},
      {"TE and CL", Post("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"), 400},
      {"CL repeated, same value", Post("Content-Length: 4\r\nContent-Length: 4\r\n"), 400},
      {"CL repeated, other value", Post("Content-Length: 4\r\ncontent-length: 5\r\n"), 400},
      {"CL list", Post("Content-Length: 4, 4\r\n"), 400},
      {"CL plus sign", Post("Content-Length: +4\r\n"), 400},
      {"CL minus sign", Post("Content-Length: -1\r\n"), 400},
      {"CL hex", Post("Content-Length: 0x10\r\n"), 400},
      {"CL inner space", Post("Content-Length: 4 4\r\n"), 400},
      {"CL empty", Post("Content-Length:\r\n"), 400},
      {"CL 20 digits", Post("Content-Length: 18446744073709551616\r\n"), 400},
      {"CL huge", Post("Content-Length: 99999999999999999999999999\r\n"), 400},
      {"CL decimal", Post("Content-Length: 4.0\r\n"), 400},
      {"TE xchunked", Post("Transfer-Encoding: xchunked\r\n"), 501},
      {"TE chunked, identity", Post("Transfer-Encoding: chunked, identity\r\n"), 501},
      {"TE gzip, chunked", Post("Transfer-Encoding: gzip, chunked\r\n"), 501},
      {"TE chunked, chunked", Post("Transfer-Encoding: chunked, chunked\r\n"), 501},
      {"TE identity", Post("Transfer-Encoding: identity\r\n"), 501},
      {"TE quoted", Post("Transfer-Encoding: \"chunked\"\r\n"), 501},
      {"TE empty", Post("Transfer-Encoding:\r\n"), 400},
      {"two TE headers", Post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400},
      {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"space before colon", Post("Transfer-Encoding : chunked\r\n"), 400},
      {"tab before colon", Post("Content-Length\t: 4\r\n"), 400},
      {"obs-fold with space", Get("X-A: a\r\n b\r\n"), 400},
      {"obs-fold with tab", Get("X-A: a\r\n\tb\r\n"), 400},
      {"folded first field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
      {"NUL in value", Get("X-A: a\0b\r\n"s), 400},
      {"bare CR in value", Get("X-A: a\rb\r\n"), 400},
      {"bare LF in value", Get("X-A: a\nb\r\n"), 400},
      {"bare LF line end", Get("X-A: a\n"), 400},
      {"bare LF ends head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
      {"control char in value",
       Get("X-A: a\x01"
           "b\r\n"),
       400},
      {"escape in value", Get("X-A: a\x1b[0m\r\n"), 400},
      {"DEL in value", Get("X-A: a\x7f\r\n"), 400},
      {"empty field name", Get(": x\r\n"), 400},
      {"separator in name", Get("X(A): x\r\n"), 400},
      {"obs-text in name", Get("X-\xC3\xA9: x\r\n"), 400},
      {"line without colon", Get("X-A\r\n"), 400},
      {"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"missing Host", "GET / HTTP/1.1\r\nX-A: a\r\n\r\n", 400},
      {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
      {"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
      {"Host with obs-text", "GET / HTTP/1.1\r\nHost: caf\xC3\xA9\r\n\r\n", 400},
  };
  for (const auto& c : cases) EXPECT_EQ(RequestOutcome(c.text), c.status) << c.name;
}

TEST(RequestHead, AcceptsWhatLooksOddButIsValid) {
  EXPECT_EQ(RequestOutcome(Post("Transfer-Encoding:\tchunked\r\n")), 0);
  EXPECT_EQ(RequestOutcome("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0);
  EXPECT_EQ(RequestOutcome("GET / HTTP/1.1\r\nhOsT: a.b-c_d~e\r\n\r\n"), 0);
  EXPECT_EQ(RequestOutcome("M-S.E_A!R#C$H% //x?a=b&c='d' HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
  EXPECT_EQ(RequestOutcome(Get("X-A: \xff\x80\r\n")), 0) << "obs-text in values";
}

// Long values and targets are scanned a word at a time: every offset must still be checked.
TEST(RequestHead, EveryByteOfLongValuesIsChecked) {
  const std::string plain(40, 'v');
  for (std::size_t at = 0; at < plain.size(); ++at) {
    for (char bad : {'\0', '\x01', '\x08', '\n', '\x0b', '\r', '\x1f', '\x7f'}) {
      std::string value = plain;
      value[at] = bad;
      ASSERT_EQ(RequestOutcome(Get("X-Long: " + value + "\r\n")), 400)
          << "byte " << int(bad) << " at " << at;
    }
    for (char good : {'\t', ' ', '\x80', '\xff', '~', '"'}) {
      std::string value = plain;
      value[at] = good;
      ASSERT_EQ(RequestOutcome(Get("X-Long: " + value + "\r\n")), 0)
          << "byte " << int(good) << " at " << at;
    }
  }
}

TEST(RequestHead, EveryByteOfLongTargetsIsChecked) {
  const std::string plain = "/" + std::string(40, 't');
  for (std::size_t at = 1; at < plain.size(); ++at) {
    for (char bad : {'\0', '\t', '\x1f', '\x7f', '\x80', '\xc3', '\xff'}) {
      std::string target = plain;
      target[at] = bad;
      ASSERT_EQ(RequestOutcome("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n"), 400)
          << "byte " << int(bad) << " at " << at;
    }
    for (char good : {'!', '~', '%', '"', '#'}) {
      std::string target = plain;
      target[at] = good;
      ASSERT_EQ(RequestOutcome("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n"), 0)
          << "byte " << int(good) << " at " << at;
    }
  }
}

// ---- Requests: limits --------------------------------------------------------------------

TEST(RequestHead, TargetLimitGives414EvenBeforeTheLineEnds) {
  Limits limits;
  limits.max_target = 16;
  const std::string ok(16, 'a'), long_target = "/" + std::string(16, 'a');
  EXPECT_EQ(RequestOutcome("GET /" + ok.substr(1) + " HTTP/1.1\r\nHost: h\r\n\r\n", limits), 0);
  EXPECT_EQ(RequestOutcome("GET " + long_target + " HTTP/1.1\r\nHost: h\r\n\r\n", limits), 414);
  EXPECT_EQ(RequestOutcome("GET " + long_target, limits), 414) << "incomplete, already too long";
  EXPECT_EQ(RequestOutcome("GET /" + ok.substr(1), limits), -1) << "at the limit: wait";
}

TEST(RequestHead, HeaderCountLimitGives431) {
  Limits limits;
  limits.max_headers = 3;
  EXPECT_EQ(RequestOutcome(Get("A: 1\r\nB: 2\r\n"), limits), 0) << "Host + 2 = 3 fields";
  EXPECT_EQ(RequestOutcome(Get("A: 1\r\nB: 2\r\nC: 3\r\n"), limits), 431);
  EXPECT_EQ(RequestOutcome("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n", limits), 431)
      << "decided before the head ends";
}

TEST(RequestHead, HeadSizeLimitGives431) {
  const std::string text = Get("X-Pad: " + std::string(100, 'p') + "\r\n");
  Limits limits;
  limits.max_head = text.size();
  EXPECT_EQ(RequestOutcome(text, limits), 0) << "exactly at the limit";
  EXPECT_EQ(RequestOutcome(text + "GET / HTTP/1.1\r\n", limits), 0)
      << "the next request is not counted";
  limits.max_head = text.size() - 1;
  EXPECT_EQ(RequestOutcome(text, limits), 431);
  EXPECT_EQ(RequestOutcome(text.substr(0, text.size() - 1), limits), 431)
      << "incomplete and already at the limit";
  EXPECT_EQ(RequestOutcome(text.substr(0, text.size() - 2), limits), -1);
  EXPECT_EQ(RequestOutcome("GET / HTTP/1.1\r\nX: " + std::string(70 * 1024, 'x')), 431)
      << "default limit";
}

// ---- Responses ---------------------------------------------------------------------------

TEST(ResponseHead, ParsesStatusLineAndFields) {
  const std::string text = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nX-A:  b \r\n\r\n";
  ResponseHead h;
  ASSERT_EQ(ParseResponseHead(text, {}, "GET", h), Parse::kDone) << h.error_detail;
  EXPECT_EQ(h.minor, 1);
  EXPECT_EQ(h.status, 404);
  EXPECT_EQ(h.reason, "Not Found");
  EXPECT_EQ(Find(h.headers, "x-a"), "b");
  EXPECT_EQ(h.framing, Framing::kLength);
  EXPECT_EQ(h.content_length, 9u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.head_size, text.size());
}

TEST(ResponseHead, ToleratesMissingReason) {
  ResponseHead h;
  for (const std::string text : {"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
                                 "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"}) {
    ASSERT_EQ(ParseResponseHead(text, {}, "GET", h), Parse::kDone) << text;
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.reason, "");
    EXPECT_EQ(h.head_size, text.size());
  }
}

TEST(ResponseHead, FramingByMethodAndStatus) {
  struct Case {
    const char* method;
    std::string text;
    Framing framing;
    bool keep_alive;
  };
  const std::vector<Case> cases = {
      {"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", Framing::kNone, true},
      {"HEAD", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Framing::kNone, true},
      {"HEAD", "HTTP/1.1 200 OK\r\n\r\n", Framing::kNone, true},
      {"GET", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", Framing::kNone, true},
      {"GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", Framing::kNone, true},
      {"GET", "HTTP/1.1 100 Continue\r\n\r\n", Framing::kNone, true},
      {"GET", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", Framing::kNone,
       true},
      {"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", Framing::kChunked, true},
      {"POST", "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\n", Framing::kLength, true},
      {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Framing::kNone, true},
      {"GET", "HTTP/1.1 200 OK\r\n\r\n", Framing::kUntilClose, false},
      {"GET", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n", Framing::kUntilClose, false},
      {"GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", Framing::kLength,
       false},
      {"GET", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", Framing::kLength, false},
      {"GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
       Framing::kLength, true},
      {"GET", "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n", Framing::kNone, true},
  };
  for (const auto& c : cases) {
    ResponseHead h;
    ASSERT_EQ(ParseResponseHead(c.text, {}, c.method, h), Parse::kDone)
        << c.method << " " << c.text << h.error_detail;
    EXPECT_EQ(h.framing, c.framing) << c.method << " " << c.text;
    EXPECT_EQ(h.keep_alive, c.keep_alive) << c.method << " " << c.text;
    if (h.framing != Framing::kLength) {
      EXPECT_EQ(h.content_length, 0u) << c.text;
    }
  }
}

TEST(ResponseHead, RefusesWith502) {
  const std::vector<Refusal> cases = {
      {"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       502},
      {"CL twice", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 502},
      {"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n", 502},
      {"CL sign", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", 502},
      {"unknown coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 502},
      {"coding list", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 502},
      {"TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 502},
      {"status 99", "HTTP/1.1 099 X\r\n\r\n", 502},
      {"status 600", "HTTP/1.1 600 X\r\n\r\n", 502},
      {"four digits", "HTTP/1.1 2000 X\r\n\r\n", 502},
      {"two digits", "HTTP/1.1 20 X\r\n\r\n", 502},
      {"letters", "HTTP/1.1 2xx X\r\n\r\n", 502},
      {"HTTP/2", "HTTP/2.0 200 OK\r\n\r\n", 502},
      {"no space", "HTTP/1.1200 OK\r\n\r\n", 502},
      {"not HTTP", "ICY 200 OK\r\n\r\n", 502},
      {"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 502},
      {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", 502},
      {"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 502},
      {"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", 502},
      {"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", 502},
  };
  for (const auto& c : cases) EXPECT_EQ(ResponseOutcome(c.text), c.status) << c.name;
  EXPECT_EQ(ResponseOutcome("HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT"), 502);
  EXPECT_EQ(ResponseOutcome("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "HEAD"), 502)
      << "validated even when the framing is ignored";
}

TEST(ResponseHead, LimitsGive502) {
  Limits limits;
  limits.max_headers = 1;
  EXPECT_EQ(ResponseOutcome("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", "GET", limits), 502);
  limits = {};
  limits.max_head = 32;
  EXPECT_EQ(ResponseOutcome("HTTP/1.1 200 OK\r\nX: " + std::string(40, 'x'), "GET", limits), 502);
}

TEST(ResponseHead, EveryPrefixIsIncomplete) {
  const std::string m = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX:\r\n\r\n";
  ResponseHead h;
  for (std::size_t n = 0; n < m.size(); ++n) {
    ASSERT_EQ(ParseResponseHead(std::string_view(m).substr(0, n), {}, "GET", h), Parse::kIncomplete)
        << "prefix " << n << ": " << h.error_detail;
  }
  const std::string next = m + "5\r\nhello\r\n";
  ASSERT_EQ(ParseResponseHead(next, {}, "GET", h), Parse::kDone);
  EXPECT_EQ(h.head_size, m.size());
}

// ---- ChunkedScanner ----------------------------------------------------------------------

struct ScanResult {
  std::size_t consumed = 0;
  bool done = false;
  bool error = false;
  std::string data;
};

// Feeds `msg` in pieces cut at `cuts` (ascending offsets), stopping at done or error.
ScanResult ScanPieces(std::string_view msg, const std::vector<std::size_t>& cuts,
                      std::size_t max_trailer = 16 * 1024) {
  ChunkedScanner scanner(max_trailer);
  ScanResult r;
  std::size_t from = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(msg.size());
  for (std::size_t to : ends) {
    const auto step = scanner.Feed(msg.substr(from, to - from), true);
    for (std::string_view span : step.data) r.data.append(span);
    r.consumed += step.consumed;
    if (step.error || step.done) {
      r.done = step.done;
      r.error = step.error;
      EXPECT_EQ(scanner.done(), step.done);
      return r;
    }
    EXPECT_EQ(step.consumed, to - from) << "an unfinished message takes every byte";
    from = to;
  }
  return r;
}

ScanResult Scan(std::string_view msg, std::size_t max_trailer = 16 * 1024) {
  return ScanPieces(msg, {}, max_trailer);
}

struct ChunkedCase {
  std::string message;
  std::string payload;
};

const std::vector<ChunkedCase>& ValidMessages() {
  static const std::vector<ChunkedCase> cases = {
      {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
      {"0\r\n\r\n", ""},
      {"A\r\n0123456789\r\n1;x=y\r\n!\r\n000\r\n\r\n", "0123456789!"},
      {"3 ; a = b ;c;d=\"q \\\" ;\"\t;e\r\nabc\r\n0;last\r\nX-Sum: 1 2\r\nY:\r\n\r\n", "abc"},
      {"0000000000000004\r\nwxyz\r\n0\r\nTrailer-A: \xC3\xA9\r\n\r\n", "wxyz"},
      {"1\r\n\r\r\n2\r\n\r\n\r\n0\r\n\r\n", "\r\r\n"},
  };
  return cases;
}

TEST(ChunkedScanner, DecodesWholeMessages) {
  for (const auto& c : ValidMessages()) {
    const auto r = Scan(c.message);
    EXPECT_TRUE(r.done) << c.message;
    EXPECT_FALSE(r.error) << c.message;
    EXPECT_EQ(r.consumed, c.message.size()) << c.message;
    EXPECT_EQ(r.data, c.payload) << c.message;
  }
}

TEST(ChunkedScanner, EverySplitPointGivesTheSameResult) {
  for (const auto& c : ValidMessages()) {
    for (std::size_t cut = 0; cut <= c.message.size(); ++cut) {
      const auto r = ScanPieces(c.message, {cut});
      ASSERT_TRUE(r.done) << c.message << " cut at " << cut;
      EXPECT_EQ(r.consumed, c.message.size()) << cut;
      EXPECT_EQ(r.data, c.payload) << c.message << " cut at " << cut;
    }
  }
}

TEST(ChunkedScanner, ByteByByte) {
  for (const auto& c : ValidMessages()) {
    ChunkedScanner scanner;
    std::string data;
    for (std::size_t i = 0; i < c.message.size(); ++i) {
      const auto step = scanner.Feed(std::string_view(c.message).substr(i, 1), true);
      ASSERT_FALSE(step.error) << c.message << " at " << i;
      ASSERT_EQ(step.consumed, 1u);
      ASSERT_EQ(step.done, i + 1 == c.message.size()) << c.message << " at " << i;
      for (std::string_view span : step.data) data.append(span);
    }
    EXPECT_TRUE(scanner.done());
    EXPECT_EQ(data, c.payload);
  }
}

TEST(ChunkedScanner, SeveralChunksInOneFeedGiveSeveralSpans) {
  const std::string msg = "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n";
  ChunkedScanner scanner;
  const auto step = scanner.Feed(msg, true);
  ASSERT_TRUE(step.done);
  ASSERT_EQ(step.data.size(), 2u);
  EXPECT_EQ(step.data[0], "ab");
  EXPECT_EQ(step.data[1], "cde");
  EXPECT_EQ(step.data[0].data(), msg.data() + 3) << "spans point into the input";
  ChunkedScanner plain;
  EXPECT_TRUE(plain.Feed(msg).data.empty()) << "no spans without decode";
}

TEST(ChunkedScanner, StopsAtTheEndOfTheMessage) {
  for (const auto& c : ValidMessages()) {
    const std::string buf = c.message + "GET /next HTTP/1.1\r\n\r\n";
    for (std::size_t cut = 0; cut <= buf.size(); ++cut) {
      const auto r = ScanPieces(buf, {cut});
      ASSERT_TRUE(r.done) << cut;
      EXPECT_EQ(r.consumed, c.message.size()) << c.message << " cut at " << cut;
      EXPECT_EQ(r.data, c.payload);
    }
  }
}

TEST(ChunkedScanner, FeedAfterTheEndTakesNothing) {
  ChunkedScanner scanner;
  const auto first = scanner.Feed("0\r\n\r\nXYZ");
  EXPECT_TRUE(first.done);
  EXPECT_EQ(first.consumed, 5u);
  const auto again = scanner.Feed("0\r\n\r\n");
  EXPECT_EQ(again.consumed, 0u);
  EXPECT_TRUE(again.done);
  EXPECT_FALSE(again.error);

  ChunkedScanner broken;
  const auto bad = broken.Feed("g\r\n");
  EXPECT_TRUE(bad.error);
  EXPECT_EQ(bad.consumed, 0u);
  const auto after = broken.Feed("0\r\n\r\n");
  EXPECT_TRUE(after.error);
  EXPECT_EQ(after.consumed, 0u);
  EXPECT_FALSE(broken.done());
}

TEST(ChunkedScanner, IncompleteMessagesWait) {
  const std::string huge = "ffffffffffffffff\r\nabc";
  const auto r = Scan(huge);
  EXPECT_FALSE(r.done);
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.consumed, huge.size());
  EXPECT_EQ(r.data, "abc");
  EXPECT_FALSE(Scan("5\r\nhello\r\n0\r\nX: 1\r\n").done) << "trailer section not ended";
}

TEST(ChunkedScanner, RefusesMalformedFraming) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"no size", "\r\nhello\r\n0\r\n\r\n"},
      {"bad hex", "g\r\nhello\r\n0\r\n\r\n"},
      {"sign", "+5\r\nhello\r\n0\r\n\r\n"},
      {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"},
      {"17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n"},
      {"overflow", "10000000000000000\r\n"},
      {"space in size", "5 5\r\nhello\r\n0\r\n\r\n"},
      {"trailing space", "5 \r\nhello\r\n0\r\n\r\n"},
      {"leading space", " 5\r\nhello\r\n0\r\n\r\n"},
      {"bare LF after size", "5\nhello\r\n0\r\n\r\n"},
      {"bare CR after size", "5\rhello\r\n0\r\n\r\n"},
      {"data too long", "5\r\nhelloX\r\n0\r\n\r\n"},
      {"data too short", "5\r\nhell\r\n0\r\n\r\n"},
      {"bare LF after data", "5\r\nhello\n0\r\n\r\n"},
      {"CR CR after data", "5\r\nhello\r\r0\r\n\r\n"},
      {"no CR after data", "5\r\nhelloX\n0\r\n\r\n"},
      {"bare LF after last chunk", "0\n\r\n"},
      {"bare LF as final line", "0\r\n\n"},
      {"empty extension name", "5;\r\nhello\r\n0\r\n\r\n"},
      {"extension without value", "5;a=\r\nhello\r\n0\r\n\r\n"},
      {"extension name not token", "5;a(b)\r\nhello\r\n0\r\n\r\n"},
      {"extension value not token", "5;a=b/c\r\nhello\r\n0\r\n\r\n"},
      {"space inside name", "5;a b\r\nhello\r\n0\r\n\r\n"},
      {"whitespace before CRLF", "5;a=b \r\nhello\r\n0\r\n\r\n"},
      {"bare LF in extension", "5;a\nhello\r\n0\r\n\r\n"},
      {"CR in quoted extension", "5;a=\"x\ry\"\r\nhello\r\n0\r\n\r\n"},
      {"LF in quoted extension", "5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n"},
      {"unterminated quote", "5;a=\"x\r\nhello\r\n0\r\n\r\n"},
      {"text after quote", "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"},
      {"NUL in extension", "5;a\0\r\nhello\r\n0\r\n\r\n"s},
      {"trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n"},
      {"trailer without colon", "0\r\nX-A\r\n\r\n"},
      {"trailer space before colon", "0\r\nX-A : b\r\n\r\n"},
      {"trailer empty name", "0\r\n: b\r\n\r\n"},
      {"trailer control char", "0\r\nX: a\x01\r\n\r\n"},
      {"trailer bare LF", "0\r\nX: a\n\r\n"},
      {"trailer bare CR", "0\r\nX: a\rb\r\n\r\n"},
      {"final line not empty", "0\r\n\rX\r\n"},
  };
  for (const auto& [name, msg] : cases) {
    const auto whole = Scan(msg);
    EXPECT_TRUE(whole.error) << name;
    EXPECT_FALSE(whole.done) << name;
    for (std::size_t cut = 0; cut <= msg.size(); ++cut) {
      EXPECT_TRUE(ScanPieces(msg, {cut}).error) << name << " cut at " << cut;
    }
  }
}

TEST(ChunkedScanner, ErrorStopsAtTheOffendingByte) {
  const auto r = Scan("5\r\nhello\r\nz");
  EXPECT_TRUE(r.error);
  EXPECT_EQ(r.consumed, 10u);
}

TEST(ChunkedScanner, TrailerSectionIsBounded) {
  const std::string field = "X-Long: " + std::string(90, 'v') + "\r\n";  // 100 bytes
  ASSERT_EQ(field.size(), 100u);
  EXPECT_TRUE(Scan("0\r\n" + field + "\r\n", 100).done) << "exactly at the limit";
  EXPECT_TRUE(Scan("0\r\n" + field + "\r\n", 99).error);
  EXPECT_TRUE(Scan("0\r\n" + field + field + "\r\n", 150).error) << "the whole section counts";
  EXPECT_TRUE(Scan("0\r\n" + std::string(1000, 'X'), 100).error) << "unended line";
}

TEST(ChunkedScanner, ExtensionLineIsBounded) {
  const std::string ext = ";" + std::string(4094, 'e');  // with the CR: 4096 bytes
  EXPECT_TRUE(Scan("1" + ext + "\r\nx\r\n0\r\n\r\n").done);
  EXPECT_TRUE(Scan("1" + ext + "e\r\nx\r\n0\r\n\r\n").error);
  const std::string quoted = ";a=\"" + std::string(10000, 'q');
  EXPECT_TRUE(Scan("1" + quoted).error) << "an unterminated quote cannot run forever";
  EXPECT_TRUE(Scan("1" + ext + "\r\nx\r\n1" + ext + "\r\ny\r\n0" + ext + "\r\n\r\n").done)
      << "the bound is per line";
}

// ---- Helpers -----------------------------------------------------------------------------

TEST(Helpers, IEquals) {
  EXPECT_TRUE(IEquals("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(IEquals("", ""));
  EXPECT_FALSE(IEquals("Host", "Hosts"));
  EXPECT_FALSE(IEquals("[", "{")) << "only letters fold";
  EXPECT_FALSE(IEquals("\xC3", "\xE3"));
}

TEST(Helpers, FindReturnsFirstMatch) {
  const std::vector<HeaderField> headers = {{"X-A", "1"}, {"x-a", "2"}, {"Host", "h"}};
  EXPECT_EQ(Find(headers, "X-a"), "1");
  EXPECT_EQ(Find(headers, "host"), "h");
  EXPECT_EQ(Find(headers, "missing"), "");
}

TEST(Helpers, IsHopByHop) {
  const std::vector<HeaderField> headers = {
      {"Connection", "keep-alive, X-Secret"}, {"connection", " x-other ,"}, {"X-Public", "1"}};
  for (const char* name :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "transfer-encoding", "Upgrade",
        "Proxy-Authenticate", "PROXY-AUTHORIZATION", "x-secret", "X-Other"}) {
    EXPECT_TRUE(IsHopByHop(name, headers)) << name;
  }
  for (const char* name : {"X-Public", "Host", "Trailer", "Content-Length", "X-Secre", ""}) {
    EXPECT_FALSE(IsHopByHop(name, headers)) << name;
  }
  EXPECT_FALSE(IsHopByHop("X-Secret", {})) << "only when this message lists it";
}

TEST(Helpers, HtmlEscape) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape("plain"), "plain");
  EXPECT_EQ(HtmlEscape(""), "");
}

}  // namespace
}  // namespace slipway::gateway::http1
