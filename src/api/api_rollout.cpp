// Phased rollouts: the live status of an app's rollout and a human's promote or abort.
#include "api/api_internal.h"
#include "control/controller.h"

namespace slipway::api {

HttpResponse Api::ShowRollout(Call& c) {
  auto status = controller_.RolloutStatus(c.params[0]);
  if (!status.ok()) return Error(status.status());
  return Json(200, *status);
}

HttpResponse Api::PromoteRollout(Call& c) {
  auto status = controller_.RolloutDecision(c.params[0], RolloutCommand::Kind::kPromote, c.actor());
  if (!status.ok()) return Error(status.status());
  return Json(200, *status);
}

HttpResponse Api::AbortRollout(Call& c) {
  auto status = controller_.RolloutDecision(c.params[0], RolloutCommand::Kind::kAbort, c.actor());
  if (!status.ok()) return Error(status.status());
  return Json(200, *status);
}

}  // namespace slipway::api
