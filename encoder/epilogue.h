// epilogue.h: what follows a projection in a transformer layer, fused into
// the projection's output pass on the CPU.
//
// Owns: the description (activation, then residual add, then LayerNorm over
// the last dimension), its reference in LibTorch ops (Finish: what every
// path without the fused kernels runs, e.g. CUDA, bfloat16, at::linear), and
// the fused row kernels for float32 rows (FinishRows), compiled per kernel
// path (AVX-512, AVX2, baseline) and chosen by ActiveIsa().
// Why: at a 32-token query ATen's GELU (erf), LayerNorm and residual add cost
// 14% of an int8 forward (0.93 of 6.5 ms, 12 layers, AVX-512): an operator
// dispatch, an allocation and a pass over memory each, where the fused pass
// touches the row while it is still in L1 after the matmul wrote it.
// Accuracy: GELU's erf is Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7) with a
// Cephes-style exp (about 1 ulp); LayerNorm is two-pass in float32, as ATen.
// Internal to encoder/ (cpu_linear.cc, transformer.cc).
#ifndef DIFFRANK_ENCODER_EPILOGUE_H_
#define DIFFRANK_ENCODER_EPILOGUE_H_

#include <torch/torch.h>

#include <cstdint>

namespace diffrank::encoder {

enum class EpilogueActivation { kNone, kGelu, kGeluTanh, kRelu };

struct Epilogue {
  EpilogueActivation activation = EpilogueActivation::kNone;
  // Added after the activation; the output's shape and dtype, or undefined.
  torch::Tensor residual;
  // LayerNorm over the last dimension after the residual: weight and bias of
  // the output's width, or undefined (then no norm).
  torch::Tensor norm_w, norm_b;
  double eps = 1e-12;

  bool empty() const {
    return activation == EpilogueActivation::kNone && !residual.defined() &&
           !norm_w.defined();
  }
  // The part of this epilogue for rows [start, start + length) of a [rows,
  // width] output (the residual narrowed the same way).
  Epilogue Rows(int64_t start, int64_t length) const;
};

// LayerNormLastDim: at::layer_norm over the last dimension; a small input
// runs on the calling thread (one_thread.h).
torch::Tensor LayerNormLastDim(const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, double eps);

// Finish applies `e` to y with LibTorch ops (any device and dtype).
torch::Tensor Finish(torch::Tensor y, const Epilogue& e);

// FinishRows applies `e` in place to rows [begin, end) of the float32 [rows,
// n] matrix y; the residual (if any) is float32 [rows, n] contiguous, the
// norm's weight and bias float32 [n]. Checked by the caller (CheckRows).
void FinishRows(float* y, int64_t n, int64_t begin, int64_t end,
                const Epilogue& e);

// CheckRows: TORCH_CHECKs that `e` fits FinishRows for a float32 output of
// `rows` x `n` on the CPU (residual float32 contiguous of rows x n, norm of n).
void CheckRows(const Epilogue& e, int64_t rows, int64_t n);

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_EPILOGUE_H_
