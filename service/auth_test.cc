// ApiKeys: parsing and role checks.
#include "service/auth.h"

#include "gtest/gtest.h"

namespace diffrank::service {
namespace {

TEST(ApiKeys, OpenWithoutKeys) {
  ApiKeys keys;
  EXPECT_TRUE(keys.Authorize(std::nullopt, Role::kAdmin).ok());
}

TEST(ApiKeys, RolesAreOrdered) {
  auto keys = ApiKeys::Parse(
      "# comment\nread rrrrrrrrrrrrrrrr\nwrite wwwwwwwwwwwwwwww  # trailing\n"
      "admin aaaaaaaaaaaaaaaa\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->Authorize("Bearer rrrrrrrrrrrrrrrr", Role::kRead).ok());
  EXPECT_EQ(keys->Authorize("Bearer rrrrrrrrrrrrrrrr", Role::kWrite).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(keys->Authorize("bearer wwwwwwwwwwwwwwww", Role::kWrite).ok());
  EXPECT_EQ(keys->Authorize("Bearer wwwwwwwwwwwwwwww", Role::kAdmin).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(keys->Authorize("Bearer aaaaaaaaaaaaaaaa", Role::kAdmin).ok());
}

TEST(ApiKeys, MissingOrUnknownKeyIsUnauthenticated) {
  auto keys = ApiKeys::Parse("read rrrrrrrrrrrrrrrr\n");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->Authorize(std::nullopt, Role::kRead).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(keys->Authorize("Bearer rrrrrrrrrrrrrrrX", Role::kRead).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(keys->Authorize("Basic rrrrrrrrrrrrrrrr", Role::kRead).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(keys->Authorize("Bearer rrrrrrrrrrrrrrr", Role::kRead).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(ApiKeys, BadLinesNameTheLine) {
  auto k = ApiKeys::Parse("read rrrrrrrrrrrrrrrr\nroot xxxxxxxxxxxxxxxxxx\n");
  EXPECT_NE(k.status().message().find("line 2"), absl::string_view::npos);
  k = ApiKeys::Parse("read short\n");
  EXPECT_NE(k.status().message().find("16"), absl::string_view::npos);
  k = ApiKeys::Parse("read\n");
  EXPECT_NE(k.status().message().find("line 1"), absl::string_view::npos);
}

}  // namespace
}  // namespace diffrank::service
