#pragma once
// Small formatting helpers shared by the Deployer's files.
#include <fmt/format.h>

#include <string>

namespace slipway {

inline std::string Short(const std::string& sha) {
  return sha.substr(0, 7);
}

inline std::string Mib(long long bytes) {
  return fmt::format("{:.1f} MiB", bytes / 1048576.0);
}

inline std::string ProbeText(int status, const std::string& error) {
  return status ? "HTTP " + std::to_string(status) : error;
}

}  // namespace slipway
