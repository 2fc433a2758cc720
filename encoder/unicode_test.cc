#include "encoder/unicode.h"

#include "gtest/gtest.h"

namespace diffrank::encoder::unicode {
namespace {

TEST(DecodeUtf8, DecodesMultibyteText) {
  auto s = DecodeUtf8("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::u32string{U'a', 0xE9, 0x4E2D, 0x1F600}));
}

TEST(DecodeUtf8, RejectsMalformedSequencesWithOffset) {
  for (const char* bad :
       {"ab\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "x\x80",
        "\xE4\xB8", "\xFF", "\xC3\x28"}) {
    auto s = DecodeUtf8(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("offset"), std::string::npos);
  }
}

TEST(AppendUtf8, RoundTripsEveryPlane) {
  for (char32_t cp : {0x41u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string s;
    AppendUtf8(cp, s);
    auto d = DecodeUtf8(s);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, std::u32string(1, cp));
  }
}

TEST(Nfd, DecomposesAccentsAndHangul) {
  EXPECT_EQ(Nfd(U"\u00E9"), U"e\u0301");
  EXPECT_EQ(Nfd(U"\uAC00"), U"\u1100\u1161");
  // Canonical ordering: dot below (220) sorts before acute (230).
  EXPECT_EQ(Nfd(U"e\u0301\u0323"), U"e\u0323\u0301");
}

TEST(Classes, MatchBertDefinitions) {
  EXPECT_TRUE(IsWhitespace(U'\t'));
  EXPECT_TRUE(IsWhitespace(0x3000));
  EXPECT_FALSE(IsControl(U'\n'));
  EXPECT_TRUE(IsControl(0x200B));    // zero width space is Cf
  EXPECT_TRUE(IsPunctuation(U'$'));  // ASCII symbol counts as punctuation
  EXPECT_TRUE(IsPunctuation(0x3002));
  EXPECT_TRUE(IsChineseChar(0x4E2D));
  EXPECT_FALSE(IsChineseChar(0x3042));  // hiragana is not split
  EXPECT_TRUE(IsNonspacingMark(0x0301));
}

TEST(AppendLowercase, UsesFullMappings) {
  std::u32string out;
  AppendLowercase(0x130, out);  // capital I with dot above -> i + combining dot
  EXPECT_EQ(out, U"i\u0307");
  out.clear();
  AppendLowercase(0x3A3, out);  // sigma without context
  EXPECT_EQ(out, U"\u03C3");
}

}  // namespace
}  // namespace diffrank::encoder::unicode
