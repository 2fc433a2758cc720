#include "index/filter.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace diffrank::index {
namespace {

const absl::flat_hash_set<std::string> kKnown = {"lang", "year", "tags", "a"};

TEST(Filter, ParsesLeavesAndTrees) {
  auto f = ParseFilterJson(
      R"({"and": [{"field": "lang", "in": ["en", "fr"]},
                  {"or": [{"field": "year", "gte": 1990, "lt": 2000},
                          {"field": "tags", "eq": true}]}]})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->op, Filter::Op::kAnd);
  EXPECT_EQ(f->children[0].values.size(), 2u);
  EXPECT_EQ(*f->children[1].children[0].gte, 1990);
  auto sql = CompileFilter(*f, kKnown);
  ASSERT_TRUE(sql.ok()) << sql.status();
  EXPECT_NE(sql->sql.find(" AND "), std::string::npos);
  EXPECT_NE(sql->sql.find(" OR "), std::string::npos);
  // Values are bound, never spliced into the SQL.
  EXPECT_EQ(sql->sql.find("en"), std::string::npos);
  EXPECT_EQ(sql->params.size(), 1u + 2 + 1 + 4 + 1 + 1);
}

TEST(Filter, MalformedFiltersAreInvalidArgument) {
  for (const char* bad :
       {"[]", "{}", "not json", R"({"field": 3, "eq": 1})", R"({"field": "a"})",
        R"({"field": "a", "eq": 1, "in": [1]})", R"({"field": "a", "in": []})",
        R"({"field": "a", "eq": [1]})", R"({"field": "a", "gt": "x"})",
        R"({"field": "a", "like": "x"})", R"({"and": []})",
        R"({"and": [{"field": "a", "eq": 1}], "x": 1})",
        R"({"field": "a", "eq": null})"}) {
    auto f = ParseFilterJson(bad);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Filter, UnknownFieldsMatchNothingAndAreListedInvalidOnesRejected) {
  // Issue 25 item 4: a field no document has yet (a tenant filter on a new
  // collection) matches nothing instead of failing the call.
  auto f = ParseFilterJson(
      R"({"or": [{"field": "colour", "eq": "red"}, {"field": "a", "eq": 1},
                 {"field": "colour.x", "gte": 1}]})");
  ASSERT_TRUE(f.ok());
  auto pred = CompileFilter(*f, kKnown);
  ASSERT_TRUE(pred.ok()) << pred.status();
  EXPECT_NE(pred->sql.find("(0 OR EXISTS"), std::string::npos) << pred->sql;
  EXPECT_EQ(UnknownFilterFields(*f, kKnown),
            (std::vector<std::string>{"colour", "colour.x"}));
  auto inj = ParseFilterJson(R"({"field": "a') OR 1=1 --", "eq": 1})");
  ASSERT_TRUE(inj.ok());
  EXPECT_EQ(CompileFilter(*inj, kKnown).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Filter, DeepNestingIsBounded) {
  std::string s = R"({"field": "a", "eq": 1})";
  for (int i = 0; i < 40; ++i) s = R"({"and": [)" + s + "]}";
  EXPECT_EQ(ParseFilterJson(s).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Filter, SizeLimitsNameTheLimit) {
  // Issue 12: ~1000 "and" terms reached SQLite ("Expression tree is too
  // large", INTERNAL, the SQL in the message).
  std::string terms;
  for (int i = 0; i < 1000; ++i) {
    absl::StrAppend(&terms, i ? "," : "", R"({"field": "a", "eq": )", i, "}");
  }
  auto st = ParseFilterJson(absl::StrCat(R"({"and": [)", terms, "]}")).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("more than 128 conditions"), std::string::npos)
      << st;
  // 127 conditions + the "and": accepted and compiled.
  terms.clear();
  for (int i = 0; i < 127; ++i) {
    absl::StrAppend(&terms, i ? "," : "", R"({"field": "a", "gte": )", i,
                    R"(, "lt": 5, "gt": 0, "lte": 9})");
  }
  auto ok = ParseFilterJson(absl::StrCat(R"({"and": [)", terms, "]}"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(CompileFilter(*ok, kKnown).ok());
  // Values across "in" lists.
  std::string values;
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&values, i ? "," : "", i);
  std::string many;
  for (int i = 0; i < 5; ++i) {
    absl::StrAppend(&many, i ? "," : "", R"({"field": "a", "in": [)", values,
                    "]}");
  }
  st = ParseFilterJson(absl::StrCat(R"({"or": [)", many, "]}")).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("4096 values"), std::string::npos) << st;
  // Trees built in code get the same bound at compile time.
  Filter big;
  big.op = Filter::Op::kOr;
  Filter leaf;
  leaf.op = Filter::Op::kEq;
  leaf.field = "a";
  leaf.values = {FilterValue(1.0)};
  big.children.assign(500, leaf);
  EXPECT_EQ(CompileFilter(big, kKnown).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace diffrank::index
