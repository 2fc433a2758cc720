// cpu_gemm.cc: the packed AVX2 / AVX-512 GEMMs (see cpu_gemm.h).
#include "encoder/cpu_gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "encoder/cpu_features.h"

namespace diffrank::encoder {
namespace {

constexpr int64_t kRows = PackedGemm::kTileRows;
constexpr int64_t kRowBlock = 64;  // rows of x per task: 64 x k in L2

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {

constexpr int kLanes = 8;
#include "encoder/vec_kernel.inc"
// (after vec_kernel.inc: the tile uses its vector type)
#include "encoder/cpu_gemm_tile.inc"

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

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
namespace avx512 {

constexpr int kLanes = 16;
#include "encoder/vec_kernel.inc"
// (after vec_kernel.inc: the tile uses its vector type)
#include "encoder/cpu_gemm_tile.inc"

}  // namespace avx512
#pragma GCC pop_options

// ForTiles computes y's tiles of rows [r0, r1) x panels [p0, p1): panel
// outer, so a panel stays in cache across the row groups. tile(a, lda, p, c,
// ldc) writes the 4 x kPanelCols tile of panel p for the 4 rows at a (row
// stride lda); rows short of a tile, or a k not a multiple of padded_k's
// step, go through a zero-padded copy of x, and a panel's columns past n
// through a scratch tile.
template <int64_t kPanelCols, typename A, typename TileFn>
void ForTiles(const A* x, int64_t k, int64_t padded_k, int64_t n, float* y,
              int64_t r0, int64_t r1, int64_t p0, int64_t p1,
              const TileFn& tile) {
  std::vector<A> a_tail;
  float c_tail[kRows * kPanelCols];
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t col0 = p * kPanelCols, cols = std::min(kPanelCols, n - col0);
    for (int64_t r = r0; r < r1; r += kRows) {
      const int64_t rows = std::min(kRows, r1 - r);
      const A* a = x + r * k;
      int64_t lda = k;
      if (rows < kRows || padded_k != k) {
        a_tail.assign(kRows * padded_k, 0);
        for (int64_t i = 0; i < rows; ++i) {
          std::memcpy(a_tail.data() + i * padded_k, a + i * k, k * sizeof(A));
        }
        a = a_tail.data();
        lda = padded_k;
      }
      if (rows == kRows && cols == kPanelCols) {
        tile(a, lda, p, y + r * n + col0, n);
        continue;
      }
      tile(a, lda, p, c_tail, kPanelCols);
      for (int64_t i = 0; i < rows; ++i) {
        std::memcpy(y + (r + i) * n + col0, c_tail + i * kPanelCols,
                    cols * sizeof(float));
      }
    }
  }
}

}  // namespace

bool PackedGemm::Available() { return ActiveIsa() >= CpuIsa::kAvx2; }

PackedGemm::PackedGemm(const float* w, const float* bias, int64_t n, int64_t k)
    : n_(n), k_(k) {
  cols_ = ActiveIsa() >= CpuIsa::kAvx512 ? avx512::kCols : avx2::kCols;
  panels_ = (n + cols_ - 1) / cols_;
  packed_.assign(panels_ * k * cols_, 0.0f);
  bias_.assign(panels_ * cols_, 0.0f);
  for (int64_t j = 0; j < n; ++j) {
    float* col = packed_.data() + (j / cols_) * k * cols_ + j % cols_;
    for (int64_t i = 0; i < k; ++i) col[i * cols_] = w[j * k + i];
    if (bias != nullptr) bias_[j] = bias[j];
  }
}

int64_t PackedGemm::Tasks(int64_t m) const {
  return (m + kRowBlock - 1) / kRowBlock * panels_;
}

void PackedGemm::Tiles(const float* x, float* y, int64_t r0, int64_t r1,
                       int64_t p0, int64_t p1) const {
  if (cols_ == avx512::kCols) {
    FloatTiles<avx512::kCols>(avx512::Tile, x, y, r0, r1, p0, p1);
  } else {
    FloatTiles<avx2::kCols>(avx2::Tile, x, y, r0, r1, p0, p1);
  }
}

template <int64_t kCols, typename Tile>
void PackedGemm::FloatTiles(Tile tile, const float* x, float* y, int64_t r0,
                            int64_t r1, int64_t p0, int64_t p1) const {
  ForTiles<kCols>(
      x, k_, k_, n_, y, r0, r1, p0, p1,
      [&](const float* a, int64_t lda, int64_t p, float* c, int64_t ldc) {
        tile(a, lda, packed_.data() + p * k_ * kCols, k_,
             bias_.data() + p * kCols, c, ldc);
      });
}

void PackedGemm::Run(const float* x, int64_t m, float* y, int64_t begin,
                     int64_t end) const {
  for (int64_t task = begin; task < end; ++task) {
    const int64_t block = task / panels_, p = task % panels_;
    Tiles(x, y, block * kRowBlock, std::min(m, (block + 1) * kRowBlock), p,
          p + 1);
  }
}

void PackedGemm::RunRows(const float* x, float* y, int64_t r0,
                         int64_t r1) const {
  Tiles(x, y, r0, r1, 0, panels_);
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

void PackedGemmU8S8::Tiles(const uint8_t* x, float* y, int64_t r0, int64_t r1,
                           int64_t p0, int64_t p1) const {
  constexpr int64_t kPanel = avx2::kIntCols;
  ForTiles<kPanel>(
      x, k_, k4_ * 4, n_, y, r0, r1, p0, p1,
      [&](const uint8_t* a, int64_t lda, int64_t p, float* c, int64_t ldc) {
        avx2::TileU8S8(a, lda, packed_.data() + p * k4_ * kPanel * 4, k4_, c,
                       ldc);
      });
}

void PackedGemmU8S8::Run(const uint8_t* x, int64_t m, float* y, int64_t begin,
                         int64_t end) const {
  for (int64_t task = begin; task < end; ++task) {
    const int64_t block = task / panels_, p = task % panels_;
    Tiles(x, y, block * kRowBlock, std::min(m, (block + 1) * kRowBlock), p,
          p + 1);
  }
}

void PackedGemmU8S8::RunRows(const uint8_t* x, float* y, int64_t r0,
                             int64_t r1) const {
  Tiles(x, y, r0, r1, 0, panels_);
}

}  // namespace diffrank::encoder
