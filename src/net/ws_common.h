#pragma once
// Small pieces shared by the WebSocket server (net/ws_server.cpp) and client
// (net/ws_client.cpp). Internal to net/: no Beast here, and nothing for other modules.
#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

namespace slipway::net::ws {

// A close the application or the connection asked for: what to send and how long the peer
// then gets to answer before the socket is closed anyway.
struct CloseRequest {
  int code = 1000;
  std::string reason;
  std::chrono::milliseconds grace{5000};
};

// `code` when a close frame may carry it (RFC 6455 7.4.1/7.4.2), else 1000.
inline int SendableCloseCode(int code) {
  bool defined = code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
  return defined || (code >= 3000 && code <= 4999) ? code : 1000;
}

// At most 123 bytes (what fits in a close frame beside the code), cut at a UTF-8 character
// boundary so that the peer's UTF-8 check passes.
inline std::string TruncateCloseReason(std::string reason) {
  constexpr std::size_t kMax = 123;
  if (reason.size() <= kMax) return reason;
  std::size_t end = kMax;
  while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
  reason.resize(end);
  return reason;
}

// "1009 (message too big)" for the codes RFC 6455 names, else just the number.
inline std::string DescribeCloseCode(int code) {
  static constexpr std::pair<int, const char*> kNames[] = {
      {1000, "normal closure"},   {1001, "going away"},       {1002, "protocol error"},
      {1003, "unsupported data"}, {1005, "no status code"},   {1006, "abnormal closure"},
      {1007, "invalid payload"},  {1008, "policy violation"}, {1009, "message too big"},
      {1011, "internal error"}};
  for (const auto& [number, name] : kNames)
    if (number == code) return std::to_string(code) + " (" + name + ")";
  return std::to_string(code);
}

}  // namespace slipway::net::ws
