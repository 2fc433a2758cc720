// cpu_linear.h: a float32 / bfloat16 / int8 linear projection on the CPU with
// its weight packed once for oneDNN's matmul.
//
// Owns: the weight [out, in] reordered at load into the blocked layout that
// oneDNN's brgemm kernels read (LibTorch's at::linear on OpenBLAS re-packs the
// weight on every call: a third of the encoder's time at batch 1, measured in
// docs/benchmarks.md), the float32 bias, and one matmul primitive per row
// count (M = batch x tokens), created on first use and kept (oneDNN JITs a
// kernel per shape, ~0.1 ms once; a lookup afterwards).
// int8 is dynamic quantization: weights symmetric per output row, computed
// once; activations symmetric per row (token) at each call, so one outlier
// token does not coarsen the others (ONNX Runtime's dynamic quantization uses
// one scale per tensor); s8 x s8 -> int32 on VNNI brgemm kernels, then
// y = acc * s_x[row] * s_w[col] + b in one pass, float32 in and out.
// Without VNNI (AVX2, AVX-512 before Cascade Lake) the x86 int8 kernels sum
// u8 x s8 pairs in saturating 16 bits, so activations are 7-bit u8 there,
// asymmetric per row (the zero point taken out with the weight's column
// sums): exact, one bit coarser (cpu_linear.cc).
// Where oneDNN has no brgemm kernel (AVX2: Debian's oneDNN has only gemm:jit,
// which re-packs the weight on every call) float32 and 7-bit int8 run
// diffrank's packed AVX2 GEMMs instead (cpu_gemm.h). Each call can end with
// an epilogue (activation, residual, LayerNorm: epilogue.h) fused into its
// output pass.
// Internal to encoder/ (transformer.cc). Built only where oneDNN is found
// (DIFFRANK_HAVE_DNNL); Available() says so, and the transformer falls back to
// at::linear otherwise.
// Thread-safety: immutable after Create except the primitive map, which is
// guarded; Apply is safe concurrently (oneDNN primitives are).
#ifndef DIFFRANK_ENCODER_CPU_LINEAR_H_
#define DIFFRANK_ENCODER_CPU_LINEAR_H_

#include <torch/torch.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "encoder/epilogue.h"

namespace diffrank::encoder {

class CpuLinear {
 public:
  enum class Type { kFloat32, kBFloat16, kInt8 };
  // Create packs `weight` [out, in] (any float dtype) for compute in `type`
  // and keeps `bias` [out] (or undefined) in float32. FailedPrecondition when
  // oneDNN is not built in or has only a reference kernel for this CPU and
  // type (the caller then uses at::linear or quantized_linear.h).
  static absl::StatusOr<CpuLinear> Create(const torch::Tensor& weight,
                                          const torch::Tensor& bias, Type type);
  // Apply computes x W^T + b for x [..., in]: bfloat16 in and out for
  // kBFloat16, float32 otherwise; then `epilogue` (epilogue.h), fused into
  // the output pass for float32 and int8, in LibTorch ops for bfloat16.
  torch::Tensor Apply(const torch::Tensor& x,
                      const Epilogue& epilogue = {}) const;
  // Rows of a task where the caller splits a few rows between threads
  // (RowTasks, ApplyRows).
  static constexpr int64_t kRowGroup = 8;
  // RowTasks: for x of m rows this projection runs fastest as tasks of
  // kRowGroup whole rows, each from quantize to epilogue (Apply then runs it
  // so; a caller may chain such projections row by row in one parallel
  // region: transformer.cc). True up to 64 rows for int8 (any kernel) and
  // the packed AVX2 float32 GEMM; not for oneDNN's float32 or bfloat16
  // (cpu_linear.cc says what was measured).
  bool RowTasks(int64_t m) const;
  // ApplyRows computes rows [r0, r1) of y [m, out] = x [m, in] W^T + b and
  // then `e` on them, on the calling thread: x, y and e's residual are the
  // whole float32 matrices (row-major, contiguous), e checked by the caller
  // (epilogue.h CheckRows). Not for bfloat16.
  void ApplyRows(const float* x, float* y, int64_t r0, int64_t r1,
                 const Epilogue& e) const;
  int64_t in() const;
  int64_t out() const;
  // Macs: multiply-adds for m rows. Below InlineMacs() one thread computes
  // them faster than a parallel region (Apply runs them so).
  int64_t Macs(int64_t m) const { return m * in() * out(); }
  int64_t InlineMacs() const;
  // Kernel: oneDNN's name for the kernel this projection runs at a query's
  // row count, e.g. "brg:avx512_core_bf16" or "gemm:jit".
  const std::string& Kernel() const;
  // Available: this build has oneDNN.
  static bool Available();

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_CPU_LINEAR_H_
