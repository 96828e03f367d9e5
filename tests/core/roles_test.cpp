#include "core/roles.h"

#include <gtest/gtest.h>

namespace slipway {
namespace {

TEST(Roles, AdminHoldsEveryPermissionAndViewerOnlyRead) {
  for (Permission p : AllPermissions()) {
    EXPECT_TRUE(Allows(Role::kAdmin, p)) << ToString(p);
    EXPECT_EQ(Allows(Role::kViewer, p), p == Permission::kRead) << ToString(p);
  }
}

TEST(Roles, OnlyAdminsManageUsersAndReadTheAudit) {
  for (Role r : {Role::kBackend, Role::kQa, Role::kViewer}) {
    EXPECT_FALSE(Allows(r, Permission::kManageUsers)) << ToString(r);
    EXPECT_FALSE(Allows(r, Permission::kViewAudit)) << ToString(r);
  }
}

TEST(Roles, QaSteersSandboxesButDoesNotDeployOrManageApps) {
  EXPECT_TRUE(Allows(Role::kQa, Permission::kManageSandboxes));
  EXPECT_TRUE(Allows(Role::kQa, Permission::kManageRoutes));
  EXPECT_TRUE(Allows(Role::kQa, Permission::kViewLogs));
  EXPECT_FALSE(Allows(Role::kQa, Permission::kDeploy));
  EXPECT_FALSE(Allows(Role::kQa, Permission::kManageApps));
  EXPECT_FALSE(Allows(Role::kQa, Permission::kManageEnvironments));
  EXPECT_TRUE(Allows(Role::kBackend, Permission::kDeploy));
  EXPECT_TRUE(Allows(Role::kBackend, Permission::kManageEnvironments));
}

TEST(Roles, NamesRoundTripAndUnknownNamesAreRefused) {
  for (Role r : AllRoles()) EXPECT_EQ(RoleFromString(ToString(r)), r);
  EXPECT_FALSE(RoleFromString("root"));
  EXPECT_FALSE(RoleFromString("Admin"));
  EXPECT_FALSE(RoleFromString(""));
}

}  // namespace
}  // namespace slipway
