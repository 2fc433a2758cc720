// cpu_attention.cc: fused-per-task CPU attention (see cpu_attention.h).
#include "encoder/cpu_attention.h"

#include <ATen/Parallel.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "encoder/cpu_features.h"

namespace diffrank::encoder {
namespace {

// One task's inputs: rows are `width` floats apart in q, k and v (the fused
// q|k|v output), `out_width` in out and `lambda_width` in lambda; q, out and
// lambda already point at the group's first head; kt [dh, T16], v_copy
// [T16, dh16], mask16 [T16], s [2 T16] and o [2 dh16] are the calling thread's
// scratch (T16, dh16: rounded up to a multiple of 16).
struct AttentionTask {
  const float* q;
  const float* k;
  const float* v;
  const float* mask;
  const float* lambda;
  float* out;
  float* kt;
  float* v_copy;
  float* mask16;
  float* s;
  float* o;
  int64_t t, dh, rep, width, out_width, lambda_width;
  bool pairs;
};

// The loops, compiled once per kernel path and chosen by ActiveIsa() (so
// DIFFRANK_MAX_CPU_ISA=avx2 runs the AVX2 code on an AVX-512 machine too).
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
namespace avx512 {
constexpr int kLanes = 16;
#include "encoder/cpu_attention_kernel.inc"
}  // namespace avx512
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
constexpr int kLanes = 8;
#include "encoder/cpu_attention_kernel.inc"
}  // namespace avx2
#pragma GCC pop_options
namespace baseline {
constexpr int kLanes = 4;
#include "encoder/cpu_attention_kernel.inc"
}  // namespace baseline

using TaskFn = void (*)(const AttentionTask&);

}  // namespace

struct CpuAttention::Impl {
  int64_t q_heads = 0, kv_heads = 0, dh = 0;
  int64_t rep = 0;    // query heads per K/V group
  int64_t width = 0;  // columns of a qkv row
  bool pairs = false;
  TaskFn run = nullptr;
  std::string kernel;
};

absl::StatusOr<CpuAttention> CpuAttention::Create(int64_t q_heads,
                                                  int64_t kv_heads,
                                                  int64_t head_dim,
                                                  bool pairs) {
  if (q_heads <= 0 || kv_heads <= 0 || head_dim <= 0 ||
      q_heads % kv_heads != 0 || (pairs && (q_heads / kv_heads) % 2 != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention with ", q_heads, " query heads, ", kv_heads,
                     " K/V heads of ", head_dim, (pairs ? " in pairs" : ""),
                     " is not a valid layout"));
  }
  auto impl = std::make_shared<Impl>();
  impl->q_heads = q_heads;
  impl->kv_heads = kv_heads;
  impl->dh = head_dim;
  impl->rep = q_heads / kv_heads;
  impl->width = (q_heads + 2 * kv_heads) * head_dim;
  impl->pairs = pairs;
  const CpuIsa isa = ActiveIsa();
  if (isa >= CpuIsa::kAvx512) {
    impl->run = avx512::RunTask;
    impl->kernel = "diffrank avx512";
  } else if (isa >= CpuIsa::kAvx2) {
    impl->run = avx2::RunTask;
    impl->kernel = "diffrank avx2";
  } else {
    impl->run = baseline::RunTask;
    impl->kernel = "diffrank baseline";
  }
  CpuAttention a;
  a.impl_ = std::move(impl);
  return a;
}

const std::string& CpuAttention::Kernel() const { return impl_->kernel; }

torch::Tensor CpuAttention::Attend(const torch::Tensor& qkv,
                                   const torch::Tensor& key_mask,
                                   const torch::Tensor& lambda) const {
  const Impl& impl = *impl_;
  TORCH_CHECK(qkv.dim() == 3 && qkv.size(2) == impl.width &&
                  qkv.scalar_type() == torch::kFloat32 && qkv.is_cpu(),
              "attention input must be float32 [B, T, ", impl.width, "], got ",
              qkv.sizes(), " ", qkv.scalar_type());
  const int64_t b = qkv.size(0), t = qkv.size(1);
  TORCH_CHECK(key_mask.numel() == b * t &&
                  key_mask.scalar_type() == torch::kFloat32 &&
                  key_mask.is_cpu(),
              "key mask must be float32 [B, 1, 1, T]");
  const int64_t lambda_width = impl.q_heads / 2;
  TORCH_CHECK(
      impl.pairs == lambda.defined() &&
          (!lambda.defined() ||
           (lambda.numel() == b * t * lambda_width &&
            lambda.scalar_type() == torch::kFloat32 && lambda.is_cpu())),
      "lambda must be float32 [B, T, ", lambda_width,
      "] exactly when heads are paired");
  const int64_t out_heads = impl.pairs ? impl.q_heads / 2 : impl.q_heads;
  const int64_t out_width = out_heads * impl.dh;
  torch::Tensor out = torch::empty({b, t, out_width}, qkv.options());
  if (b == 0 || t == 0) return out;
  const torch::Tensor x = qkv.contiguous();
  const torch::Tensor mask = key_mask.contiguous();
  const torch::Tensor lam = lambda.defined() ? lambda.contiguous() : lambda;
  const float* base = x.data_ptr<float>();
  const float* mask_base = mask.data_ptr<float>();
  float* out_base = out.data_ptr<float>();
  const float* lam_base = lam.defined() ? lam.data_ptr<float>() : nullptr;
  const int64_t g = impl.kv_heads, rep = impl.rep, dh = impl.dh;
  const int64_t w = impl.width;
  const int64_t out_per_group = impl.pairs ? rep / 2 : rep;
  at::parallel_for(0, b * g, 1, [&](int64_t begin, int64_t end) {
    const int64_t t16 = (t + 15) / 16 * 16, dh16 = (dh + 15) / 16 * 16;
    thread_local std::vector<float> scratch;
    scratch.resize(dh * t16 + t16 * dh16 + 3 * t16 + 2 * dh16);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task / g, gi = task % g;
      const float* row0 = base + bi * t * w;
      AttentionTask a;
      a.q = row0 + gi * rep * dh;
      a.k = row0 + impl.q_heads * dh + gi * dh;
      a.v = row0 + (impl.q_heads + g) * dh + gi * dh;
      a.mask = mask_base + bi * t;
      a.lambda = lam_base == nullptr
                     ? nullptr
                     : lam_base + bi * t * lambda_width + gi * out_per_group;
      a.out = out_base + bi * t * out_width + gi * out_per_group * dh;
      a.kt = scratch.data();
      a.v_copy = a.kt + dh * t16;
      a.mask16 = a.v_copy + t16 * dh16;
      a.s = a.mask16 + t16;
      a.o = a.s + 2 * t16;
      a.t = t;
      a.dh = dh;
      a.rep = rep;
      a.width = w;
      a.out_width = out_width;
      a.lambda_width = lambda_width;
      a.pairs = impl.pairs;
      impl.run(a);
    }
  });
  return out;
}

}  // namespace diffrank::encoder
