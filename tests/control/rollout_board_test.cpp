#include "control/rollout_board.h"

#include <gtest/gtest.h>

namespace slipway {
namespace {

using Kind = RolloutCommand::Kind;

TEST(RolloutBoard, CommandsOnlyApplyWhileTheyCanBeCarriedOut) {
  RolloutBoard b;
  EXPECT_EQ(b.Request("hello", {Kind::kAbort, "al"}).code(), Code::kConflict) << "none runs";
  b.Publish("hello", {{"state", "deploying"}}, true);
  EXPECT_EQ(b.Request("hello", {Kind::kPromote, "al"}).code(), Code::kConflict)
      << "nothing to promote while a stage deploys";
  EXPECT_TRUE(b.Request("hello", {Kind::kAbort, "al"}).ok()) << "taken when the stage is up";
  EXPECT_EQ(b.Take("hello")->who, "al");
  EXPECT_FALSE(b.Take("hello"));

  b.Publish("hello", {{"state", "baking"}}, true);
  EXPECT_TRUE(b.Request("hello", {Kind::kPromote, "al"}).ok());
  EXPECT_TRUE(b.Request("hello", {Kind::kAbort, "bob"}).ok()) << "an abort replaces a promote";
  EXPECT_EQ(b.Request("hello", {Kind::kPromote, "cy"}).code(), Code::kConflict)
      << "a promote never wins over a pending abort";
  EXPECT_TRUE(b.Request("hello", {Kind::kAbort, "cy"}).ok());
  auto c = b.Take("hello");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, Kind::kAbort);

  b.Publish("hello", {{"state", "switching"}}, true);
  auto late = b.Request("hello", {Kind::kAbort, "al"});
  EXPECT_EQ(late.code(), Code::kConflict) << "an abort it would never carry out is refused";
  EXPECT_NE(late.message().find("slipway rollback"), std::string::npos) << late.message();

  b.Publish("hello", {{"state", "succeeded"}}, false);
  EXPECT_EQ(b.Request("hello", {Kind::kAbort, "al"}).code(), Code::kConflict);
  EXPECT_EQ(b.Get("hello")->value("state", ""), "succeeded") << "the last status stays readable";
  EXPECT_FALSE(b.Get("other"));
}

}  // namespace
}  // namespace slipway
