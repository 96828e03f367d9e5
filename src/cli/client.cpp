#include "cli/client.h"

#include "net/http_client.h"

namespace slipway::cli {

Result<ApiClient> ApiClient::Create(const std::string& server_url, const std::string& token) {
  net::Endpoint ep;
  std::string base;
  if (!net::ParseUrl(server_url, ep, base) || !ep.unix_path.empty()) {
    return Invalid("--server must be an http://host:port URL, not '" + server_url + "'");
  }
  ApiClient c;
  c.url_ = server_url;
  c.host_ = ep.host;
  c.port_ = ep.port;
  c.base_ = base;
  c.token_ = token;
  return c;
}

Result<nlohmann::json> ApiClient::Call(const std::string& method, const std::string& path,
                                       const nlohmann::json& body, int timeout_ms) const {
  net::Endpoint ep;
  ep.host = host_;
  ep.port = port_;
  net::ClientRequest req;
  req.method = method;
  req.target = base_ + path;
  req.timeout = std::chrono::milliseconds(timeout_ms);
  if (!token_.empty()) req.headers.push_back({"Authorization", "Bearer " + token_});
  if (!body.is_null() || method == "POST") {
    req.body = body.is_null() ? "{}" : body.dump();
    req.headers.push_back({"Content-Type", "application/json"});
  }
  auto res = net::HttpCall(ep, req);
  if (!res.ok()) {
    return Status(res.status().code(),
                  "cannot reach the server at " + url_ + " (" + res.status().message() + ")");
  }
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status >= 200 && res->status < 300) {
    if (j.is_discarded()) return Internal("the server sent a response that is not JSON");
    return j;
  }
  std::string detail = j.is_object() && j.contains("detail") && j["detail"].is_string()
                           ? j["detail"].get<std::string>()
                           : "HTTP " + std::to_string(res->status);
  Code code = res->status == 404   ? Code::kNotFound
              : res->status == 409 ? Code::kConflict
              : res->status == 400 ? Code::kInvalid
              : res->status == 401 ? Code::kUnauthorized
              : res->status == 403 ? Code::kForbidden
              : res->status == 429 ? Code::kRateLimited
                                   : Code::kUnavailable;
  if (code == Code::kUnauthorized && token_.empty())
    detail += " (set SLIPWAY_TOKEN, pass --token, or run slipway login)";
  return Status(code, detail);
}

}  // namespace slipway::cli
