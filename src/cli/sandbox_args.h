#pragma once
// The sandbox verbs' own argument syntax, parsed before any call is made (pure functions).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace slipway::cli {

// One --service value: "SVC=branch:BRANCH" → {"name": SVC, "branch": BRANCH};
// "SVC=upstream" → {"name": SVC, "upstream": true}. SVC is 1..64 of [A-Za-z0-9._-] and
// BRANCH is not empty (the server checks both further). kInvalid, with a one-line message
// naming the value, for anything else.
Result<nlohmann::json> ParseServiceArg(const std::string& arg);

// Every --service value in order, as the API's "services" list; the first bad one fails.
Result<nlohmann::json> ParseServiceArgs(const std::vector<std::string>& args);

// Whether `name` stays one URL path segment: 1..64 of [A-Za-z0-9._-].
bool PathSafe(const std::string& name);

// 1073741824 → "1GiB", 268435456 → "256MiB", 1500 → "1500B"; 0 → "-".
std::string FormatBytes(long long bytes);

}  // namespace slipway::cli
