#include "core/roles.h"

#include <set>

namespace slipway {

const char* ToString(Permission p) {
  switch (p) {
    case Permission::kRead:
      return "read";
    case Permission::kViewLogs:
      return "view_logs";
    case Permission::kDeploy:
      return "deploy";
    case Permission::kManageApps:
      return "manage_apps";
    case Permission::kManageSandboxes:
      return "manage_sandboxes";
    case Permission::kManageTemplates:
      return "manage_templates";
    case Permission::kManageRoutes:
      return "manage_routes";
    case Permission::kManageEnvironments:
      return "manage_environments";
    case Permission::kManageUsers:
      return "manage_users";
    case Permission::kViewAudit:
      return "view_audit";
  }
  return "unknown";
}

const char* ToString(Role r) {
  switch (r) {
    case Role::kAdmin:
      return "admin";
    case Role::kBackend:
      return "backend";
    case Role::kQa:
      return "qa";
    case Role::kViewer:
      return "viewer";
  }
  return "unknown";
}

std::optional<Role> RoleFromString(const std::string& s) {
  for (Role r : AllRoles())
    if (s == ToString(r)) return r;
  return std::nullopt;
}

const std::vector<Permission>& AllPermissions() {
  static const std::vector<Permission> kAll = {
      Permission::kRead,         Permission::kViewLogs,           Permission::kDeploy,
      Permission::kManageApps,   Permission::kManageSandboxes,    Permission::kManageTemplates,
      Permission::kManageRoutes, Permission::kManageEnvironments, Permission::kManageUsers,
      Permission::kViewAudit};
  return kAll;
}

const std::vector<Role>& AllRoles() {
  static const std::vector<Role> kAll = {Role::kAdmin, Role::kBackend, Role::kQa, Role::kViewer};
  return kAll;
}

bool Allows(Role role, Permission p) {
  using P = Permission;
  // Backend developers ship code; QA build and steer sandboxes; viewers only look.
  static const std::set<P> kBackend = {P::kRead,         P::kViewLogs,          P::kDeploy,
                                       P::kManageApps,   P::kManageSandboxes,   P::kManageTemplates,
                                       P::kManageRoutes, P::kManageEnvironments};
  static const std::set<P> kQa = {P::kRead, P::kViewLogs, P::kManageSandboxes, P::kManageRoutes};
  switch (role) {
    case Role::kAdmin:
      return true;
    case Role::kBackend:
      return kBackend.count(p) > 0;
    case Role::kQa:
      return kQa.count(p) > 0;
    case Role::kViewer:
      return p == P::kRead;
  }
  return false;
}

}  // namespace slipway
