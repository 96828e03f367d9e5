// Gateway modes of an app: pause (hold requests), maintenance (503 with a message), resume.
#include <cctype>

#include "api/api_internal.h"
#include "api/json.h"
#include "manifest/manifest.h"

namespace slipway::api {
namespace {

// A duration with its unit: "30s", "500ms", "5m", "1h" (fractions allowed). A bare number
// is refused: whether it meant seconds or milliseconds would be a guess.
bool ParseMax(const std::string& text, std::chrono::milliseconds& out) {
  if (text.empty() || !std::isalpha(static_cast<unsigned char>(text.back()))) return false;
  return ParseDuration(text, out);
}

HttpResponse GatewayAnswer(const std::string& app, const Result<GatewayState>& state) {
  if (!state.ok()) return Error(state.status());
  return Json(200, {{"app", app}, {"gateway", ToJson(*state)}});
}

}  // namespace

// Body {"max": "30s"}, optional (default 30s).
HttpResponse Api::PauseApp(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto max_text = StringField(*body, "max", false);
  if (!max_text.ok()) return Error(max_text.status());
  std::chrono::milliseconds max(30000);
  bool given = body->contains("max") && !(*body)["max"].is_null();
  if (given && !ParseMax(*max_text, max)) {
    return Error(400, "invalid", "'max' must be a duration like 30s, 500ms or 5m (1s..1h)");
  }
  return GatewayAnswer(c.params[0], controller_.PauseApp(c.params[0], max, c.actor()));
}

// Body {"message": "..."}, required.
HttpResponse Api::MaintenanceApp(Call& c) {
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto message = StringField(*body, "message", true);
  if (!message.ok()) return Error(message.status());
  return GatewayAnswer(c.params[0], controller_.MaintenanceApp(c.params[0], *message, c.actor()));
}

HttpResponse Api::ResumeApp(Call& c) {
  return GatewayAnswer(c.params[0], controller_.ResumeApp(c.params[0], c.actor()));
}

}  // namespace slipway::api
