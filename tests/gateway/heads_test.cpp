#include "gateway/heads.h"

#include <gtest/gtest.h>

#include <set>

namespace slipway::gateway {
namespace {

http1::RequestHead Req(const std::string& text) {
  static std::vector<std::string> keep;  // views must outlive the test's use
  keep.push_back(text);
  http1::RequestHead req;
  EXPECT_EQ(http1::ParseRequestHead(keep.back(), {}, req), http1::Parse::kDone) << text;
  return req;
}

http1::ResponseHead Res(const std::string& text, std::string_view method = "GET") {
  static std::vector<std::string> keep;
  keep.push_back(text);
  http1::ResponseHead res;
  EXPECT_EQ(http1::ParseResponseHead(keep.back(), {}, method, res), http1::Parse::kDone) << text;
  return res;
}

bool Has(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

TEST(UpstreamRequest, DropsHopByHopAndConnectionListedFields) {
  auto req =
      Req("GET /x?y=1 HTTP/1.1\r\nHost: web.test\r\nConnection: keep-alive, X-Secret\r\n"
          "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Secret: s\r\nTE: trailers\r\n"
          "Upgrade: h2c\r\nProxy-Authorization: Basic eA==\r\nExpect: 100-continue\r\n"
          "Accept: */*\r\n\r\n");
  std::string out;
  WriteUpstreamRequest(req, {"10.0.0.1", "rid-1"}, out);
  EXPECT_EQ(out.rfind("GET /x?y=1 HTTP/1.1\r\nHost: web.test\r\n", 0), 0u) << out;
  for (std::string gone : {"Keep-Alive", "Proxy-Connection", "X-Secret",
                           "Upgrade:", "Proxy-Authorization", "Expect", "Connection:"})
    EXPECT_EQ(out.find(gone), std::string::npos) << gone << " in\n" << out;
  EXPECT_TRUE(Has(out, "Accept: */*"));
  EXPECT_TRUE(Has(out, "TE: trailers")) << "trailers are passed, so TE: trailers may be";
  EXPECT_TRUE(Has(out, "X-Forwarded-For: 10.0.0.1"));
  EXPECT_TRUE(Has(out, "X-Forwarded-Proto: http"));
  EXPECT_TRUE(Has(out, "X-Forwarded-Host: web.test"));
  EXPECT_TRUE(Has(out, "X-Request-Id: rid-1"));
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
}

TEST(UpstreamRequest, AbsoluteFormBecomesOriginFormWithItsAuthority) {
  auto req = Req("GET http://web.test/a/b?q HTTP/1.1\r\nHost: other.test\r\n\r\n");
  std::string out;
  WriteUpstreamRequest(req, {"1.2.3.4", "r"}, out);
  EXPECT_EQ(out.rfind("GET /a/b?q HTTP/1.1\r\nHost: web.test\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("other.test"), std::string::npos);
}

TEST(UpstreamRequest, ReplaceHostChangesOnlyTheHostField) {
  auto req = Req("GET /x HTTP/1.1\r\nHost: web.test\r\nX-Host: keep\r\n\r\n");
  std::string out;
  WriteUpstreamRequest(req, {"10.0.0.1", "r"}, out);
  ReplaceHost(out, "api.qa.localhost:8081");
  EXPECT_EQ(out.rfind("GET /x HTTP/1.1\r\nHost: api.qa.localhost:8081\r\n", 0), 0u) << out;
  EXPECT_TRUE(Has(out, "X-Forwarded-Host: web.test")) << "the client's Host stays here";
  EXPECT_TRUE(Has(out, "X-Host: keep"));
  ReplaceHost(out, "web.test");  // back, for a target without an authority
  std::string plain;
  WriteUpstreamRequest(req, {"10.0.0.1", "r"}, plain);
  EXPECT_EQ(out, plain);
}

TEST(UpstreamRequest, AppendsToForwardedForAndReplacesProto) {
  auto req = Req(
      "GET / HTTP/1.1\r\nHost: h.test\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n"
      "X-Forwarded-Proto: https\r\nX-Request-Id: theirs\r\n\r\n");
  std::string out;
  WriteUpstreamRequest(req, {"3.3.3.3", "mine"}, out);
  EXPECT_TRUE(Has(out, "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3")) << out;
  EXPECT_TRUE(Has(out, "X-Forwarded-Proto: http")) << "a client cannot claim https";
  EXPECT_EQ(out.find("https"), std::string::npos);
  EXPECT_TRUE(Has(out, "X-Request-Id: mine"));
  EXPECT_EQ(out.find("theirs"), std::string::npos) << "one X-Request-Id, the gateway's";
}

TEST(UpstreamRequest, StripsSlipwayCredentialsOnly) {
  auto req =
      Req("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer slw_abc\r\n"
          "Cookie: a=1; slipway_session=sls_x; b=2\r\n\r\n");
  std::string out;
  WriteUpstreamRequest(req, {"1.1.1.1", "r"}, out);
  EXPECT_EQ(out.find("slw_abc"), std::string::npos);
  EXPECT_EQ(out.find("sls_x"), std::string::npos);
  EXPECT_TRUE(Has(out, "Cookie: a=1; b=2")) << out;
  auto app = Req("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer app-token\r\n\r\n");
  out.clear();
  WriteUpstreamRequest(app, {"1.1.1.1", "r"}, out);
  EXPECT_TRUE(Has(out, "Authorization: Bearer app-token")) << "the app's own credentials pass";
}

TEST(UpstreamRequest, RestatesFramingAndUpgrade) {
  auto chunked =
      Req("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n");
  std::string out;
  WriteUpstreamRequest(chunked, {"1.1.1.1", "r"}, out);
  EXPECT_TRUE(Has(out, "Transfer-Encoding: chunked"));
  EXPECT_EQ(out.find("Trailer"), std::string::npos) << "request trailers are not passed";
  auto sized = Req("PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n");
  out.clear();
  WriteUpstreamRequest(sized, {"1.1.1.1", "r"}, out);
  EXPECT_TRUE(Has(out, "Content-Length: 42"));
  auto ws =
      Req("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
          "Sec-WebSocket-Key: k\r\n\r\n");
  out.clear();
  WriteUpstreamRequest(ws, {"1.1.1.1", "r"}, out);
  EXPECT_TRUE(Has(out, "Connection: upgrade"));
  EXPECT_TRUE(Has(out, "Upgrade: websocket"));
  EXPECT_TRUE(Has(out, "Sec-WebSocket-Key: k"));
}

TEST(ClientResponse, RestatesFramingForTheClient) {
  auto res =
      Res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nKeep-Alive: x\r\n"
          "Content-Type: text/plain\r\n\r\n");
  std::string out;
  WriteClientResponse(res, {1, BodyOut::kChunked, true, false, "rid", ""}, out);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_TRUE(Has(out, "Transfer-Encoding: chunked"));
  EXPECT_TRUE(Has(out, "Trailer: X-Sum"));
  EXPECT_TRUE(Has(out, "X-Request-Id: rid"));
  EXPECT_EQ(out.find("Keep-Alive"), std::string::npos);
  out.clear();
  WriteClientResponse(res, {0, BodyOut::kClose, false, false, "rid", ""}, out);
  EXPECT_EQ(out.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << "an HTTP/1.0 client never gets chunks";
  EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(out.find("Trailer"), std::string::npos);
  EXPECT_TRUE(Has(out, "Connection: close"));
}

TEST(ClientResponse, KeepsAppRequestIdAndAddsStickyCookie) {
  auto res = Res("HTTP/1.1 204 No Content\r\nX-Request-Id: app-id\r\n\r\n");
  std::string out;
  WriteClientResponse(res, {1, BodyOut::kNone, true, false, "gw-id", "side=canary; Path=/"}, out);
  EXPECT_TRUE(Has(out, "X-Request-Id: app-id"));
  EXPECT_EQ(out.find("gw-id"), std::string::npos);
  EXPECT_TRUE(Has(out, "Set-Cookie: side=canary; Path=/"));
}

TEST(ClientResponse, SwitchingProtocolsKeepsUpgrade) {
  auto res =
      Res("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
          "Sec-WebSocket-Accept: a\r\n\r\n");
  std::string out;
  WriteClientResponse(res, {1, BodyOut::kNone, true, true, "r", ""}, out);
  EXPECT_TRUE(Has(out, "Connection: upgrade"));
  EXPECT_TRUE(Has(out, "Upgrade: websocket"));
  EXPECT_TRUE(Has(out, "Sec-WebSocket-Accept: a"));
}

TEST(RequestId, ValidatesAndGeneratesUniqueIds) {
  EXPECT_TRUE(ValidRequestId("3f2c1d9e-8a7b-4c6d-9e0f-1a2b3c4d5e6f"));
  EXPECT_FALSE(ValidRequestId(""));
  EXPECT_FALSE(ValidRequestId("has space"));
  EXPECT_FALSE(ValidRequestId(std::string(129, 'a')));
  EXPECT_FALSE(ValidRequestId("x\r\ny"));
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    auto id = NewRequestId();
    EXPECT_TRUE(ValidRequestId(id));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(Page, EscapesWhatItEchoes) {
  std::string page = Page(404, "Not Found", "host '<script>alert(1)</script>'", 1, false, "r");
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;"), std::string::npos);
  auto body = page.substr(page.find("\r\n\r\n") + 4);
  EXPECT_NE(page.find("Content-Length: " + std::to_string(body.size())), std::string::npos);
  std::string head = Page(404, "Not Found", "x", 1, true, "r", true);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD gets no body";
  EXPECT_NE(head.find("Connection: close"), std::string::npos);
}

}  // namespace
}  // namespace slipway::gateway
