// The API's route table: every route names the one permission it needs. A route without
// one (std::nullopt) is open; only logging in is.
#include "api/api_internal.h"

namespace slipway::api {

const std::vector<Route>& Routes() {
  using P = Permission;
  static const std::vector<Route> kRoutes = {
      {"GET", "/api/v1/apps", P::kRead, &Api::ListApps},
      {"POST", "/api/v1/apps", P::kManageApps, &Api::CreateApp},
      {"GET", "/api/v1/apps/{app}", P::kRead, &Api::ShowApp},
      {"DELETE", "/api/v1/apps/{app}", P::kManageApps, &Api::DeleteApp},
      {"POST", "/api/v1/apps/{app}/deployments", P::kDeploy, &Api::CreateDeployment},
      {"GET", "/api/v1/apps/{app}/deployments", P::kRead, &Api::ListAppDeployments},
      {"GET", "/api/v1/apps/{app}/releases", P::kRead, &Api::ListReleases},
      {"POST", "/api/v1/apps/{app}/rollback", P::kDeploy, &Api::RollbackApp},
      {"POST", "/api/v1/apps/{app}/stop", P::kDeploy, &Api::StopApp},
      {"POST", "/api/v1/apps/{app}/start", P::kDeploy, &Api::StartApp},
      {"POST", "/api/v1/apps/{app}/restart", P::kDeploy, &Api::RestartApp},
      {"POST", "/api/v1/apps/{app}/pause", P::kDeploy, &Api::PauseApp},
      {"POST", "/api/v1/apps/{app}/resume", P::kDeploy, &Api::ResumeApp},
      {"POST", "/api/v1/apps/{app}/maintenance", P::kDeploy, &Api::MaintenanceApp},
      {"GET", "/api/v1/apps/{app}/rollout", P::kRead, &Api::ShowRollout},
      {"POST", "/api/v1/apps/{app}/rollout/promote", P::kDeploy, &Api::PromoteRollout},
      {"POST", "/api/v1/apps/{app}/rollout/abort", P::kDeploy, &Api::AbortRollout},
      {"GET", "/api/v1/deployments", P::kRead, &Api::ListDeployments},
      {"GET", "/api/v1/deployments/{id}", P::kRead, &Api::ShowDeployment},
      {"GET", "/api/v1/deployments/{id}/events", P::kViewLogs, &Api::Events},
      {"GET", "/api/v1/deployments/{id}/stream", P::kViewLogs, &Api::Stream},
      {"POST", "/api/v1/deployments/{id}/cancel", P::kDeploy, &Api::CancelDeployment},
      {"GET", "/api/v1/deployments/{id}/notifications", P::kRead, &Api::ListNotifications},
      {"POST", "/api/v1/auth/login", std::nullopt, &Api::Login},
      {"POST", "/api/v1/auth/logout", P::kRead, &Api::Logout},
      {"GET", "/api/v1/auth/whoami", P::kRead, &Api::WhoAmI},
      {"GET", "/api/v1/tokens", P::kManageUsers, &Api::ListTokens},
      {"POST", "/api/v1/tokens", P::kManageUsers, &Api::CreateToken},
      {"DELETE", "/api/v1/tokens/{token}", P::kManageUsers, &Api::RevokeToken},
      {"GET", "/api/v1/users", P::kManageUsers, &Api::ListUsers},
      {"POST", "/api/v1/users", P::kManageUsers, &Api::CreateUser},
      {"DELETE", "/api/v1/users/{user}", P::kManageUsers, &Api::DeleteUser},
      {"GET", "/api/v1/audit", P::kViewAudit, &Api::Audit},
      {"GET", "/api/v1/routes", P::kRead, &Api::ListRoutes},
      {"GET", "/api/v1/nodes", P::kRead, &Api::ListNodes},
      {"POST", "/api/v1/nodes/tokens", P::kManageUsers, &Api::CreateNodeToken},
      {"GET", "/api/v1/nodes/{node}", P::kRead, &Api::ShowNode},
      {"POST", "/api/v1/nodes/{node}/drain", P::kManageUsers, &Api::DrainNode},
      {"DELETE", "/api/v1/nodes/{node}", P::kManageUsers, &Api::RemoveNode},
      {"GET", "/api/v1/repos", P::kRead, &Api::ListRepos},
      {"GET", "/api/v1/repos/{repo}/branches", P::kRead, &Api::ListRepoBranches},
  };
  return kRoutes;
}

}  // namespace slipway::api
