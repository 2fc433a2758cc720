// cpu_gemm.cc: the packed AVX2 float32 GEMM (see cpu_gemm.h).
#include "encoder/cpu_gemm.h"

#include <immintrin.h>

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

constexpr int kLanes = 8;
#include "encoder/vec_kernel.inc"

// c[4][24] (row stride ldc) = a[4][k] (row stride lda) . panel + bias.
static void Tile(const float* a, int64_t lda, const float* panel, int64_t k,
                 const float* bias, float* c, int64_t ldc) {
  V16 acc[kRows][3];
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < 3; ++j) acc[r][j] = Load(bias + 8 * j);
  }
  for (int64_t i = 0; i < k; ++i) {
    const float* p = panel + i * kCols;
    const V16 b0 = Load(p), b1 = Load(p + 8), b2 = Load(p + 16);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const V16 x = Splat(a[r * lda + i]);
      acc[r][0] += x * b0;
      acc[r][1] += x * b1;
      acc[r][2] += x * b2;
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int j = 0; j < 3; ++j) Store(c + r * ldc + 8 * j, acc[r][j]);
  }
}

constexpr int64_t kIntCols = 16;  // int8 tile columns: 2 ymm of 8 x int32

// c[4][16] (float, row stride ldc) = sum over k4 groups of a[4][4 k4 bytes]
// (u8, row stride lda bytes) x panel (int8 [k4][16][4]).
static void TileU8S8(const uint8_t* a, int64_t lda, const int8_t* panel,
                     int64_t k4, float* c, int64_t ldc) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[kRows][2];
  for (int r = 0; r < kRows; ++r) {
    acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  }
  for (int64_t i = 0; i < k4; ++i) {
    const int8_t* p = panel + i * kIntCols * 4;
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i b1 =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      int32_t four;
      __builtin_memcpy(&four, a + r * lda + 4 * i, sizeof(four));
      const __m256i x = _mm256_set1_epi32(four);
      acc[r][0] = _mm256_add_epi32(
          acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b0), ones));
      acc[r][1] = _mm256_add_epi32(
          acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(x, b1), ones));
    }
  }
  for (int r = 0; r < kRows; ++r) {
    _mm256_storeu_ps(c + r * ldc, _mm256_cvtepi32_ps(acc[r][0]));
    _mm256_storeu_ps(c + r * ldc + 8, _mm256_cvtepi32_ps(acc[r][1]));
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

PackedGemmU8S8::PackedGemmU8S8(const int8_t* w, int64_t n, int64_t k)
    : n_(n),
      k_(k),
      k4_((k + 3) / 4),
      panels_((n + avx2::kIntCols - 1) / avx2::kIntCols) {
  const int64_t cols = avx2::kIntCols;
  packed_.assign(panels_ * k4_ * cols * 4, 0);
  for (int64_t j = 0; j < n; ++j) {
    int8_t* col = packed_.data() + (j / cols) * k4_ * cols * 4 + (j % cols) * 4;
    for (int64_t i = 0; i < k; ++i) {
      col[(i / 4) * cols * 4 + i % 4] = w[j * k + i];
    }
  }
}

int64_t PackedGemmU8S8::Tasks(int64_t m) const {
  return (m + kRowBlock - 1) / kRowBlock * panels_;
}

void PackedGemmU8S8::Run(const uint8_t* x, int64_t m, float* y, int64_t begin,
                         int64_t end) const {
  const int64_t cols_per_panel = avx2::kIntCols;
  // Short tiles (rows, columns, or k not a multiple of 4) go through
  // zero-padded copies.
  std::vector<uint8_t> a_tail;
  std::vector<float> c_tail(kRows * cols_per_panel);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t block = task / panels_, p = task % panels_;
    const int8_t* panel = packed_.data() + p * k4_ * cols_per_panel * 4;
    const int64_t col0 = p * cols_per_panel,
                  cols = std::min(cols_per_panel, n_ - col0);
    const int64_t row_end = std::min(m, (block + 1) * kRowBlock);
    for (int64_t r = block * kRowBlock; r < row_end; r += kRows) {
      const int64_t rows = std::min(kRows, row_end - r);
      const uint8_t* a = x + r * k_;
      int64_t lda = k_;
      if (rows < kRows || k_ % 4 != 0) {
        a_tail.assign(kRows * k4_ * 4, 0);
        for (int64_t i = 0; i < rows; ++i) {
          std::memcpy(a_tail.data() + i * k4_ * 4, a + i * k_, k_);
        }
        a = a_tail.data();
        lda = k4_ * 4;
      }
      if (rows == kRows && cols == cols_per_panel) {
        avx2::TileU8S8(a, lda, panel, k4_, y + r * n_ + col0, n_);
        continue;
      }
      avx2::TileU8S8(a, lda, panel, k4_, c_tail.data(), cols_per_panel);
      for (int64_t i = 0; i < rows; ++i) {
        std::memcpy(y + (r + i) * n_ + col0, c_tail.data() + i * cols_per_panel,
                    cols * sizeof(float));
      }
    }
  }
}

}  // namespace diffrank::encoder
