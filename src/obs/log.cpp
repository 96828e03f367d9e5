#include "obs/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>

namespace slipway::obs {
namespace {

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Writes to stderr after redacting (and, for JSON lines, escaping) the message.
class RedactingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  RedactingSink(bool json, Redactor redact) : json_(json), redact_(std::move(redact)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    std::string text = redact_ ? redact_(payload) : std::string(payload);
    if (json_) text = JsonEscape(text);
    spdlog::details::log_msg copy = msg;
    copy.payload = text;
    spdlog::memory_buf_t formatted;
    formatter_->format(copy, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  bool json_;
  Redactor redact_;
};

}  // namespace

void InitLogging(const std::string& level, bool json, Redactor redact) {
  auto sink = std::make_shared<RedactingSink>(json, std::move(redact));
  auto logger = std::make_shared<spdlog::logger>("slipway", sink);
  if (json) {
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%v"})");
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace slipway::obs
