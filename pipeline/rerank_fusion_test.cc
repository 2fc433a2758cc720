// rerank_fusion_test.cc: the fusion formula against hand-computed values.
#include "pipeline/rerank_fusion.h"

#include <cmath>

#include "gtest/gtest.h"

namespace diffrank::pipeline {
namespace {

TEST(FuseWithFirstStage, WeightZeroIsTheCrossEncoderAlone) {
  const std::vector<double> got = FuseWithFirstStage({2.5f, -1.0f, 7.0f}, 0);
  EXPECT_EQ(got, (std::vector<double>{2.5, -1.0, 7.0}));
}

TEST(FuseWithFirstStage, MatchesHandComputedStandardizedSum) {
  // logits 0, 3: z = -1, +1. priors 1/61, 1/62: z = +1, -1.
  const std::vector<double> got = FuseWithFirstStage({0.0f, 3.0f}, 0.5);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NEAR(got[0], -1 + 0.5, 1e-9);
  EXPECT_NEAR(got[1], 1 - 0.5, 1e-9);
}

TEST(FuseWithFirstStage, LargeWeightKeepsFirstStageOrder) {
  const std::vector<double> got =
      FuseWithFirstStage({-3.0f, 0.0f, 1.0f, 9.0f}, 50);
  for (size_t i = 1; i < got.size(); ++i) EXPECT_GT(got[i - 1], got[i]);
}

TEST(FuseWithFirstStage, EqualLogitsFollowTheFirstStage) {
  const std::vector<double> got = FuseWithFirstStage({1.0f, 1.0f, 1.0f}, 1);
  EXPECT_GT(got[0], got[1]);
  EXPECT_GT(got[1], got[2]);
}

TEST(FuseWithFirstStage, SingleCandidateIsFinite) {
  const std::vector<double> got = FuseWithFirstStage({4.0f}, 2);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(std::isfinite(got[0]));
}

TEST(ValidateFusionWeight, RejectsNegativeHugeAndNaN) {
  EXPECT_TRUE(ValidateFusionWeight(0, "w").ok());
  EXPECT_TRUE(ValidateFusionWeight(100, "w").ok());
  for (double bad : {-0.1, 100.5, std::nan(""), double{INFINITY}}) {
    absl::Status s = ValidateFusionWeight(bad, "rerank_fusion_weight");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("rerank_fusion_weight"), std::string::npos);
  }
}

}  // namespace
}  // namespace diffrank::pipeline
