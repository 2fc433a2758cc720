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
      "# comment\nread rrrrrrrrrrrrrrrr\n  # indented comment\nwrite "
      "wwwwwwwwwwwwwwww\n"
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

TEST(ApiKeys, AHeaderWithoutBearerSaysSo) {
  auto keys = ApiKeys::Parse("read rrrrrrrrrrrrrrrr\n");
  ASSERT_TRUE(keys.ok());
  absl::Status s = keys->Authorize("rrrrrrrrrrrrrrrr", Role::kRead);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("must be `Bearer <key>`"), absl::string_view::npos)
      << s;
  s = keys->Authorize(std::nullopt, Role::kRead);
  EXPECT_NE(s.message().find("missing API key"), absl::string_view::npos) << s;
}

TEST(ApiKeys, BadLinesNameTheLine) {
  auto k = ApiKeys::Parse("read rrrrrrrrrrrrrrrr\nroot xxxxxxxxxxxxxxxxxx\n");
  EXPECT_NE(k.status().message().find("line 2"), absl::string_view::npos);
  k = ApiKeys::Parse("read short\n");
  EXPECT_NE(k.status().message().find("16"), absl::string_view::npos);
  k = ApiKeys::Parse("read\n");
  EXPECT_NE(k.status().message().find("line 1"), absl::string_view::npos);
}

TEST(ApiKeys, HashInAKeyAndDuplicateKeysAreRefusedWithTheLine) {
  // Issue 12: "read abcdefghijklmnop#rest" used to load the 16-character
  // prefix as the key, silently.
  auto k = ApiKeys::Parse("# keys\nread abcdefghijklmnop#qrstuvwxyz\n");
  EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(k.status().message().find("line 2"), absl::string_view::npos)
      << k.status();
  k = ApiKeys::Parse("read rrrrrrrrrrrrrrrr # a trailing comment\n");
  EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
  // The same key under two roles used to be accepted (last one won).
  k = ApiKeys::Parse(
      "read kkkkkkkkkkkkkkkk\nwrite wwwwwwwwwwwwwwww\nadmin "
      "kkkkkkkkkkkkkkkk\n");
  EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(k.status().message().find("line 3"), absl::string_view::npos)
      << k.status();
  EXPECT_NE(k.status().message().find("already listed"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace diffrank::service
