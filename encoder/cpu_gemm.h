// cpu_gemm.h: float32 y = x W^T + b with W packed once, for AVX2 and AVX-512
// CPUs.
//
// Owns: the kernels that cpu_linear.h runs for float32. oneDNN 2.6/2.7
// (Debian 12) has brgemm matmul for AVX-512 only; on AVX2 it runs gemm:jit,
// which takes the weight in plain layout and packs it again on every call: a
// 32 x 384 x 1536 projection took 0.33 ms on two threads there, what this
// kernel takes on one (56 GMAC/s on one Zen 4 core, about its AVX2 FMA
// peak). On AVX-512 oneDNN's brgemm is level with this tile at 32 x 128
// tokens (Zen 4: 7,044-7,177 vs 6,701-7,269 tokens/s) but costs too much per
// call for a query's row tasks (cpu_linear.h RowTasks). ONNX Runtime's MLAS
// prepacks the same way. Layout: panels of 3 registers of columns (24 on
// AVX2, 48 on AVX-512), [panel][k][cols], the last panel zero-padded; a 4-row
// tile keeps 12 accumulators in registers and sums k in order, so a row's
// result does not depend on the batch it came in (or on the thread count).
// Work is split in tasks (a block of 64 rows x one panel) for the caller's
// at::parallel_for; each task writes its own part of y. PackedGemmU8S8's
// RunRows computes whole rows instead (every panel), for a caller that splits
// a few rows between threads and finishes each group of rows (quantize,
// dequantize, epilogue) in the same task: at a query's 32 rows that keeps an
// int8 projection to one parallel region.
// Internal to encoder/ (cpu_linear.cc).
#ifndef DIFFRANK_ENCODER_CPU_GEMM_H_
#define DIFFRANK_ENCODER_CPU_GEMM_H_

#include <cstdint>
#include <vector>

namespace diffrank::encoder {

class PackedGemm {
 public:
  // Available: the CPU's active kernel path has AVX2 and FMA (cpu_features.h).
  static bool Available();
  // Rows of a tile: row ranges not a multiple of it go through a padded copy.
  static constexpr int64_t kTileRows = 4;
  // w: float32 [n, k] row-major; bias: float32 [n] or null. The tile is
  // chosen by the active kernel path (cpu_features.h) here.
  PackedGemm(const float* w, const float* bias, int64_t n, int64_t k);
  // "avx512" or "avx2": the tile this instance runs.
  const char* IsaName() const { return cols_ == 48 ? "avx512" : "avx2"; }
  int64_t Tasks(int64_t m) const;
  // Run tasks [begin, end) of y [m, n] = x [m, k] W^T + b (row-major, dense).
  void Run(const float* x, int64_t m, float* y, int64_t begin,
           int64_t end) const;
  // Rows [r0, r1) of y, every column.
  void RunRows(const float* x, float* y, int64_t r0, int64_t r1) const;

 private:
  void Tiles(const float* x, float* y, int64_t r0, int64_t r1, int64_t p0,
             int64_t p1) const;
  // Tiles on the path whose panels are kCols wide; tile: that path's kernel.
  template <int64_t kCols, typename Tile>
  void FloatTiles(Tile tile, const float* x, float* y, int64_t r0, int64_t r1,
                  int64_t p0, int64_t p1) const;
  int64_t n_, k_, panels_, cols_;  // cols_: panel width, 24 or 48
  std::vector<float> packed_;      // [panels][k][cols_]
  std::vector<float> bias_;  // [panels * cols_], zeros past n and without bias
};

// PackedGemmU8S8: int32 products of 7-bit u8 activations [m, k] and an int8
// weight [n, k], as float32 y [m, n] (exact below 2^24): the int8 path of
// CPUs without VNNI (cpu_linear.h), where oneDNN also runs gemm:jit with a
// weight packed per call. vpmaddubsw (u8 x s8 pairs, 16-bit: 2 x 127 x 127
// fits) + vpmaddwd (pairs to 32 bits); the weight in 16-column panels of 4
// consecutive k per 32-bit lane, [panel][k / 4][16][4], zero-padded; a 4 x 16
// tile. Same task scheme as PackedGemm.
class PackedGemmU8S8 {
 public:
  static bool Available() { return PackedGemm::Available(); }
  static constexpr int64_t kTileRows = PackedGemm::kTileRows;
  // w: int8 [n, k] row-major.
  PackedGemmU8S8(const int8_t* w, int64_t n, int64_t k);
  int64_t Tasks(int64_t m) const;
  // x: u8 [m, k] row-major with values in [0, 127].
  void Run(const uint8_t* x, int64_t m, float* y, int64_t begin,
           int64_t end) const;
  // Rows [r0, r1) of y, every column.
  void RunRows(const uint8_t* x, float* y, int64_t r0, int64_t r1) const;

 private:
  void Tiles(const uint8_t* x, float* y, int64_t r0, int64_t r1, int64_t p0,
             int64_t p1) const;
  int64_t n_, k_, k4_, panels_;
  std::vector<int8_t> packed_;  // [panels][k4][16][4]
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_CPU_GEMM_H_
