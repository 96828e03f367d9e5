#pragma once
// The CLI's view of the API: one call, JSON in and out, API errors turned into one clear
// line ("app 'x' does not exist").
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace slipway::cli {

class ApiClient {
 public:
  // kInvalid when the URL cannot be parsed. `token` ("" = none) is sent as a bearer token.
  static Result<ApiClient> Create(const std::string& server_url, const std::string& token = "");

  // Returns the response body for a 2xx; otherwise a Status whose message is the API's
  // detail (kUnavailable when the server cannot be reached).
  Result<nlohmann::json> Call(const std::string& method, const std::string& path,
                              const nlohmann::json& body = nullptr, int timeout_ms = 30000) const;

  const std::string& url() const { return url_; }

 private:
  std::string url_;
  std::string host_;
  int port_ = 0;
  std::string base_;
  std::string token_;
};

}  // namespace slipway::cli
