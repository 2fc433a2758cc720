// epilogue.cc: the projection epilogue in LibTorch ops and as fused row
// kernels per kernel path (see epilogue.h).
#include "encoder/epilogue.h"

#include <cstdint>

#include "encoder/cpu_features.h"
#include "encoder/one_thread.h"

namespace diffrank::encoder {
namespace {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
namespace avx512 {
constexpr int kLanes = 16;
#include "encoder/epilogue_kernel.inc"
}  // namespace avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
constexpr int kLanes = 8;
#include "encoder/epilogue_kernel.inc"
}  // namespace avx2
#pragma GCC pop_options
namespace baseline {
constexpr int kLanes = 4;
#include "encoder/epilogue_kernel.inc"
}  // namespace baseline

static_assert(static_cast<int>(EpilogueActivation::kGelu) == 1 &&
                  static_cast<int>(EpilogueActivation::kGeluTanh) == 2 &&
                  static_cast<int>(EpilogueActivation::kRelu) == 3,
              "epilogue_kernel.inc's Activate numbers the activations so");

using RowsFn = void (*)(float*, int64_t, int64_t, int64_t, int, const float*,
                        const float*, const float*, float);

RowsFn Rows() {
  static const RowsFn fn = ActiveIsa() >= CpuIsa::kAvx512 ? avx512::FinishRows
                           : ActiveIsa() >= CpuIsa::kAvx2
                               ? avx2::FinishRows
                               : baseline::FinishRows;
  return fn;
}

}  // namespace

torch::Tensor LayerNormLastDim(const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, double eps) {
  OneThreadIf small(x.is_cpu() && x.numel() < kInlineElements);
  return at::layer_norm(x, {x.size(-1)}, w, b, eps);
}

Epilogue Epilogue::Rows(int64_t start, int64_t length) const {
  Epilogue e = *this;
  if (residual.defined()) {
    e.residual =
        residual.reshape({-1, residual.size(-1)}).narrow(0, start, length);
  }
  return e;
}

torch::Tensor Finish(torch::Tensor y, const Epilogue& e) {
  if (e.activation != EpilogueActivation::kNone) {
    OneThreadIf small(y.is_cpu() && y.numel() < kInlineElements);
    switch (e.activation) {
      case EpilogueActivation::kGelu:
        y = at::gelu(y);
        break;
      case EpilogueActivation::kGeluTanh:
        y = at::gelu(y, "tanh");
        break;
      case EpilogueActivation::kRelu:
        y = at::relu(y);
        break;
      case EpilogueActivation::kNone:
        break;
    }
  }
  if (e.residual.defined()) y = e.residual + y;
  if (e.norm_w.defined()) y = LayerNormLastDim(y, e.norm_w, e.norm_b, e.eps);
  return y;
}

void CheckRows(const Epilogue& e, int64_t rows, int64_t n) {
  if (e.residual.defined()) {
    TORCH_CHECK(
        e.residual.is_cpu() && e.residual.scalar_type() == torch::kFloat32 &&
            e.residual.is_contiguous() && e.residual.numel() == rows * n &&
            e.residual.size(-1) == n,
        "epilogue residual ", e.residual.sizes(), " ", e.residual.scalar_type(),
        " does not fit a float32 output of ", rows, " x ", n);
  }
  if (e.norm_w.defined()) {
    for (const torch::Tensor* t : {&e.norm_w, &e.norm_b}) {
      TORCH_CHECK(t->defined() && t->is_cpu() &&
                      t->scalar_type() == torch::kFloat32 &&
                      t->is_contiguous() && t->numel() == n,
                  "epilogue LayerNorm parameters must be float32 [", n, "]");
    }
  }
}

void FinishRows(float* y, int64_t n, int64_t begin, int64_t end,
                const Epilogue& e) {
  if (e.empty() || begin >= end) return;
  Rows()(y, n, begin, end, static_cast<int>(e.activation),
         e.residual.defined() ? e.residual.data_ptr<float>() : nullptr,
         e.norm_w.defined() ? e.norm_w.data_ptr<float>() : nullptr,
         e.norm_w.defined() ? e.norm_b.data_ptr<float>() : nullptr,
         static_cast<float>(e.eps));
}

}  // namespace diffrank::encoder
