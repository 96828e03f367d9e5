#pragma once
// An optional JSON-lines access log: one object per request the gateway answered. Paths are
// logged without their query string (queries carry tokens often enough); no header values.
// Thread-safe: lines are appended under a mutex into a stdio buffer and flushed by Flush()
// (the proxy calls it from its sweep) and on close.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/status.h"

namespace slipway::gateway {

struct AccessEntry {
  std::string_view request_id;
  std::string_view client;
  std::string_view method;
  std::string_view host;
  std::string_view path;  // the query is cut off here
  int status = 0;
  std::uint64_t bytes_in = 0;   // request body bytes forwarded
  std::uint64_t bytes_out = 0;  // response body bytes sent
  double seconds = 0;
  std::string_view route;   // "" when no route matched
  std::string_view target;  // "" when none was tried
  std::string_view side;
};

class AccessLog {
 public:
  // Opens (appends to, creating 0640) `path`; kInvalid with the reason when it cannot.
  static Result<std::unique_ptr<AccessLog>> Open(const std::string& path);
  ~AccessLog();
  void Write(const AccessEntry& entry);
  void Flush();

 private:
  explicit AccessLog(std::FILE* file) : file_(file) {}
  std::mutex mu_;
  std::FILE* file_;
};

// JSON string escaping for the log (quotes, backslash, control and non-ASCII bytes).
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace slipway::gateway
