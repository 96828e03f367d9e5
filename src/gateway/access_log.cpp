#include "gateway/access_log.h"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace slipway::gateway {

Result<std::unique_ptr<AccessLog>> AccessLog::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return Invalid("access log " + path + ": " + std::string(std::strerror(errno)));
  std::FILE* file = ::fdopen(fd, "a");
  if (!file) {
    ::close(fd);
    return Invalid("access log " + path + ": cannot open");
  }
  std::setvbuf(file, nullptr, _IOFBF, 64 * 1024);
  return std::unique_ptr<AccessLog>(new AccessLog(file));
}

AccessLog::~AccessLog() {
  std::fclose(file_);
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

namespace {
void Member(std::string& out, std::string_view key, std::string_view value) {
  out.append(",\"");
  out.append(key);
  out.append("\":");
  AppendJsonString(out, value);
}
}  // namespace

void AccessLog::Write(const AccessEntry& e) {
  auto now = std::chrono::system_clock::now();
  std::string line =
      fmt::format("{{\"time\":\"{:%FT%TZ}\"", std::chrono::floor<std::chrono::milliseconds>(now));
  Member(line, "request_id", e.request_id);
  Member(line, "client", e.client);
  Member(line, "method", e.method);
  Member(line, "host", e.host);
  Member(line, "path", e.path.substr(0, e.path.find('?')));
  fmt::format_to(std::back_inserter(line),
                 ",\"status\":{},\"bytes_in\":{},\"bytes_out\":{},\"ms\":{:.3f}", e.status,
                 e.bytes_in, e.bytes_out, e.seconds * 1000);
  Member(line, "route", e.route);
  Member(line, "target", e.target);
  Member(line, "side", e.side);
  line.append("}\n");
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), file_);
}

void AccessLog::Flush() {
  std::lock_guard lock(mu_);
  std::fflush(file_);
}

}  // namespace slipway::gateway
