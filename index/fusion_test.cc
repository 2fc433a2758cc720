#include "index/fusion.h"

#include "gtest/gtest.h"

namespace diffrank::index {
namespace {

Hit D(const std::string& id, double s) {
  Hit h;
  h.id = id;
  h.dense_score = s;
  return h;
}
Hit L(const std::string& id, double s) {
  Hit h;
  h.id = id;
  h.lexical_score = s;
  return h;
}

TEST(Fuse, ReciprocalRankFusionSumsOverRetrievers) {
  auto out = Fuse({D("a", .9), D("b", .8)}, {L("b", 12), L("c", 3)}, {}, 10);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, "b");  // 1/62 + 1/61 beats 1/61
  EXPECT_NEAR(out[0].score, 1.0 / 62 + 1.0 / 61, 1e-12);
  EXPECT_EQ(*out[0].dense_rank, 2);
  EXPECT_EQ(*out[0].lexical_rank, 1);
  EXPECT_DOUBLE_EQ(*out[0].lexical_score, 12);
  EXPECT_EQ(out[1].id, "a");
  EXPECT_FALSE(out[1].lexical_score.has_value());
  EXPECT_EQ(out[2].id, "c");
}

TEST(Fuse, RrfConstantIsConfigurable) {
  FusionOptions o;
  o.rrf_k = 1;
  auto out = Fuse({D("a", 1)}, {}, o, 10);
  EXPECT_DOUBLE_EQ(out[0].score, 0.5);
}

TEST(Fuse, WeightedFusionNormalizesEachRetriever) {
  FusionOptions o;
  o.method = FusionOptions::Method::kWeighted;
  o.dense_weight = 0.7;
  auto out = Fuse({D("a", .9), D("b", .1)}, {L("b", 20), L("a", 10)}, o, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, "a");  // 0.7 * 1 + 0.3 * 0 > 0.7 * 0 + 0.3 * 1
  EXPECT_DOUBLE_EQ(out[0].score, 0.7);
}

TEST(Fuse, EmptyInputsGiveEmptyOutput) {
  EXPECT_TRUE(Fuse({}, {}, {}, 5).empty());
}

}  // namespace
}  // namespace diffrank::index
