#pragma once
// Logging setup. Everything logs through spdlog's default logger; Init picks the format
// (human text, or one JSON object per line for log shippers).
#include <string>

namespace slipway::obs {

// level: trace|debug|info|warn|error. json: one JSON object per line on stderr.
void InitLogging(const std::string& level, bool json);

}  // namespace slipway::obs
