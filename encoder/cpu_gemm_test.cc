// cpu_gemm_test.cc: the packed AVX2 GEMM against a double-precision
// reference at shapes off every tile edge, and row results independent of
// the batch and of the task split.
#include "encoder/cpu_gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace diffrank::encoder {
namespace {

std::vector<float> Random(int64_t n, std::mt19937* rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(*rng);
  return v;
}

std::vector<float> RunAll(const PackedGemm& g, const std::vector<float>& x,
                          int64_t m, int64_t n, int64_t split) {
  std::vector<float> y(m * n, -7.0f);
  const int64_t tasks = g.Tasks(m);
  for (int64_t b = 0; b < tasks; b += split) {
    g.Run(x.data(), m, y.data(), b, std::min(tasks, b + split));
  }
  return y;
}

TEST(PackedGemm, MatchesReferenceOffEveryTileEdge) {
  if (!PackedGemm::Available()) GTEST_SKIP() << "no AVX2 on this path";
  std::mt19937 rng(11);
  for (int64_t n : {1, 23, 24, 25, 50, 96}) {
    for (int64_t k : {1, 3, 64}) {
      for (bool bias : {false, true}) {
        const std::vector<float> w = Random(n * k, &rng), b = Random(n, &rng);
        const PackedGemm g(w.data(), bias ? b.data() : nullptr, n, k);
        for (int64_t m : {1, 3, 4, 5, 63, 64, 65, 130}) {
          const std::vector<float> x = Random(m * k, &rng);
          const std::vector<float> y = RunAll(g, x, m, n, 3);
          double worst = 0;
          for (int64_t r = 0; r < m; ++r) {
            for (int64_t j = 0; j < n; ++j) {
              double want = bias ? b[j] : 0.0;
              for (int64_t i = 0; i < k; ++i) {
                want += double(x[r * k + i]) * w[j * k + i];
              }
              worst = std::max(worst, std::abs(want - y[r * n + j]));
            }
          }
          EXPECT_LT(worst, 1e-5 * k)
              << "m " << m << " n " << n << " k " << k << " bias " << bias;
        }
      }
    }
  }
}

TEST(PackedGemm, RowsDoNotDependOnTheBatchOrTheSplit) {
  if (!PackedGemm::Available()) GTEST_SKIP() << "no AVX2 on this path";
  std::mt19937 rng(12);
  const int64_t n = 50, k = 37, m = 70;
  const std::vector<float> w = Random(n * k, &rng), b = Random(n, &rng);
  const PackedGemm g(w.data(), b.data(), n, k);
  const std::vector<float> x = Random(m * k, &rng);
  const std::vector<float> all = RunAll(g, x, m, n, 1);
  EXPECT_EQ(RunAll(g, x, m, n, 1000), all);
  for (int64_t r : {0, 3, 64, 69}) {
    const std::vector<float> one(x.begin() + r * k, x.begin() + (r + 1) * k);
    const std::vector<float> y = RunAll(g, one, 1, n, 2);
    EXPECT_EQ(
        y, std::vector<float>(all.begin() + r * n, all.begin() + (r + 1) * n))
        << "row " << r;
  }
}

}  // namespace
}  // namespace diffrank::encoder
