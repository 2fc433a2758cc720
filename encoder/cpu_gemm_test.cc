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

TEST(PackedGemmU8S8, ExactAtShapesOffEveryTileEdge) {
  if (!PackedGemmU8S8::Available()) GTEST_SKIP() << "no AVX2 on this path";
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> u7(0, 127), s8(-127, 127);
  for (int64_t n : {1, 15, 16, 17, 40}) {
    for (int64_t k : {1, 3, 4, 6, 64, 1536}) {
      std::vector<int8_t> w(n * k);
      for (int8_t& v : w) v = static_cast<int8_t>(s8(rng));
      // The largest pair sum, 2 x 127 x -127, must not clip at 16 bits.
      w[0] = -127;
      if (k > 1) w[1] = -127;
      const PackedGemmU8S8 g(w.data(), n, k);
      for (int64_t m : {1, 3, 4, 5, 65}) {
        std::vector<uint8_t> x(m * k);
        for (uint8_t& v : x) v = static_cast<uint8_t>(u7(rng));
        x[0] = 127;
        if (k > 1) x[1] = 127;
        std::vector<float> y(m * n, -7.0f);
        g.Run(x.data(), m, y.data(), 0, g.Tasks(m));
        // RunRows in ranges that start and end off the tile's rows.
        std::vector<float> by_rows(m * n, -7.0f);
        for (int64_t r = 0; r < m; r += 3) {
          g.RunRows(x.data(), by_rows.data(), r, std::min(m, r + 3));
        }
        int64_t wrong = 0, rows_differ = 0;
        for (int64_t r = 0; r < m; ++r) {
          for (int64_t j = 0; j < n; ++j) {
            int64_t want = 0;
            for (int64_t i = 0; i < k; ++i) {
              want += int64_t{x[r * k + i]} * w[j * k + i];
            }
            wrong += static_cast<float>(want) != y[r * n + j];
            rows_differ += by_rows[r * n + j] != y[r * n + j];
          }
        }
        EXPECT_EQ(wrong, 0) << "m " << m << " n " << n << " k " << k;
        EXPECT_EQ(rows_differ, 0) << "m " << m << " n " << n << " k " << k;
      }
    }
  }
}

}  // namespace
}  // namespace diffrank::encoder
