// A deployment's notification deliveries: GET /api/v1/deployments/{id}/notifications, for
// whoever may read the deployment. The records hold no URL and no secret (core/model.h), so
// they are shown whole.
#include "api/api_internal.h"

namespace slipway::api {
namespace {

// The most records one answer holds: a deployment sends at most 6 events to at most 16 + 16
// targets (its own and the server's), far fewer than this.
constexpr int kMaxRecords = 1000;

json ToJson(const NotificationRecord& n) {
  return {{"id", n.id},
          {"deployment_id", n.deployment_id},
          {"app", n.app},
          {"event", n.event},
          {"target", n.target},
          {"status", n.status},
          {"attempts", n.attempts},
          {"http_status", n.http_status},
          {"last_error", n.last_error},
          {"created_ms", n.created_ms},
          {"updated_ms", n.updated_ms}};
}

}  // namespace

HttpResponse Api::ListNotifications(Call& c) {
  auto d = FindDeployment(c.params[0]);
  if (!d.ok()) return Error(d.status());
  auto records = ctx_.store.ListNotifications(d->id, kMaxRecords);
  if (!records.ok()) return Error(records.status());
  json list = json::array();
  for (const auto& n : *records) list.push_back(ToJson(n));
  return Json(200, {{"notifications", list}});
}

}  // namespace slipway::api
