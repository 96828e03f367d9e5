#pragma once
// Roles and permissions (RBAC). Every API route names exactly one Permission; a principal
// may use the route when its Role holds it. The table lives in roles.cpp and in
// docs/SECURITY.md; the two must agree.
#include <optional>
#include <string>
#include <vector>

namespace slipway {

enum class Permission {
  kRead,                // see apps, deployments, releases (not their logs)
  kViewLogs,            // deployment events and output
  kDeploy,              // deploy, roll back, start/stop/restart, cancel, pause/maintenance
  kManageApps,          // create and delete apps
  kManageSandboxes,     // create, change and delete sandboxes
  kManageTemplates,     // sandbox templates
  kManageRoutes,        // route overrides
  kManageEnvironments,  // environments and their secrets
  kManageUsers,         // users, API tokens, node enrollment
  kViewAudit,           // the audit trail
};

enum class Role { kAdmin, kBackend, kQa, kViewer };

const char* ToString(Permission p);
const char* ToString(Role r);
std::optional<Role> RoleFromString(const std::string& s);
// Every permission, in declaration order (for tables and tests).
const std::vector<Permission>& AllPermissions();
const std::vector<Role>& AllRoles();

// Whether `role` holds `permission`.
bool Allows(Role role, Permission permission);

}  // namespace slipway
