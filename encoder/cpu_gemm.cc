// cpu_gemm.cc: the packed AVX2 float32 GEMM (see cpu_gemm.h).
#include "encoder/cpu_gemm.h"

#include <algorithm>
#include <cstring>

#include "encoder/cpu_features.h"

namespace diffrank::encoder {
namespace {

constexpr int64_t kRows = 4;       // tile rows
constexpr int64_t kCols = 24;      // tile (and panel) columns: 3 ymm
constexpr int64_t kRowBlock = 64;  // rows of x per task: 64 x k in L2

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {

typedef float V8 __attribute__((vector_size(32)));

__attribute__((always_inline)) static inline V8 Load(const float* p) {
  V8 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

__attribute__((always_inline)) static inline void Store(float* p, V8 v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

// c[4][24] (row stride ldc) = a[4][k] (row stride lda) . panel + bias.
static void Tile(const float* a, int64_t lda, const float* panel, int64_t k,
                 const float* bias, float* c, int64_t ldc) {
  V8 acc[kRows][3];
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < 3; ++j) acc[r][j] = Load(bias + 8 * j);
  }
  for (int64_t i = 0; i < k; ++i) {
    const float* p = panel + i * kCols;
    const V8 b0 = Load(p), b1 = Load(p + 8), b2 = Load(p + 16);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const V8 x = a[r * lda + i] - V8{};  // broadcast
      acc[r][0] += x * b0;
      acc[r][1] += x * b1;
      acc[r][2] += x * b2;
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < 3; ++j) Store(c + r * ldc + 8 * j, acc[r][j]);
  }
}

}  // namespace avx2
#pragma GCC pop_options

}  // namespace

bool PackedGemm::Available() { return ActiveIsa() >= CpuIsa::kAvx2; }

PackedGemm::PackedGemm(const float* w, const float* bias, int64_t n, int64_t k)
    : n_(n), k_(k), panels_((n + kCols - 1) / kCols) {
  packed_.assign(panels_ * k * kCols, 0.0f);
  bias_.assign(panels_ * kCols, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    float* col = packed_.data() + (j / kCols) * k * kCols + j % kCols;
    for (int64_t i = 0; i < k; ++i) col[i * kCols] = w[j * k + i];
    if (bias != nullptr) bias_[j] = bias[j];
  }
}

int64_t PackedGemm::Tasks(int64_t m) const {
  return (m + kRowBlock - 1) / kRowBlock * panels_;
}

void PackedGemm::Run(const float* x, int64_t m, float* y, int64_t begin,
                     int64_t end) const {
  // Rows or columns short of a whole tile go through zero-padded copies.
  std::vector<float> a_tail, c_tail(kRows * kCols);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t block = task / panels_, p = task % panels_;
    const float* panel = packed_.data() + p * k_ * kCols;
    const float* bias = bias_.data() + p * kCols;
    const int64_t col0 = p * kCols, cols = std::min(kCols, n_ - col0);
    const int64_t row_end = std::min(m, (block + 1) * kRowBlock);
    for (int64_t r = block * kRowBlock; r < row_end; r += kRows) {
      const int64_t rows = std::min(kRows, row_end - r);
      const float* a = x + r * k_;
      if (rows < kRows) {
        a_tail.assign(kRows * k_, 0.0f);
        std::memcpy(a_tail.data(), a, rows * k_ * sizeof(float));
        a = a_tail.data();
      }
      if (rows == kRows && cols == kCols) {
        avx2::Tile(a, k_, panel, k_, bias, y + r * n_ + col0, n_);
        continue;
      }
      avx2::Tile(a, k_, panel, k_, bias, c_tail.data(), kCols);
      for (int64_t i = 0; i < rows; ++i) {
        std::memcpy(y + (r + i) * n_ + col0, c_tail.data() + i * kCols,
                    cols * sizeof(float));
      }
    }
  }
}

}  // namespace diffrank::encoder
