#pragma once
// Logging setup. Everything logs through spdlog's default logger; Init picks the format
// (human text, or one JSON object per line for log shippers) and the redactor every message
// passes through before it is written (so a credential in a URL never reaches a log).
#include <functional>
#include <string>
#include <string_view>

namespace slipway::obs {

using Redactor = std::function<std::string(std::string_view)>;

// level: trace|debug|info|warn|error. json: one JSON object per line on stderr.
void InitLogging(const std::string& level, bool json, Redactor redact = nullptr);

}  // namespace slipway::obs
