// cpu_attention.cc: fused-per-task CPU attention (see cpu_attention.h).
#include "encoder/cpu_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "encoder/cpu_features.h"
#include "encoder/one_thread.h"

namespace diffrank::encoder {
namespace {

// One task's inputs: rows are `width` elements apart in q, k and v (the fused
// q|k|v output), `out_width` in out and `lambda_width` in lambda; q, out and
// lambda already point at the group's first head. q, k, v and out hold
// float32, or bfloat16 with bf16 (read into float32 scratch, computed in
// float32, rounded to nearest even on the way out); mask and lambda are
// float32 (with lambda_logits: lambda's logits, sigmoid taken here). With
// segments (the row's T segment ids, 0 or 1) each query head
// adds gate[head] x its softmax over the other segment (gate: the group's
// query heads). kt [dh, T16], v_copy [T16, dh16], mask16 [T16], kseg16 [T16],
// s [4 T16], o [4 dh16] and q2 [4 dh16] are the calling thread's scratch
// (T16, dh16: rounded up to a multiple of 16; 4 query rows per pass).
struct AttentionTask {
  const void* q;
  const void* k;
  const void* v;
  const float* mask;
  const float* lambda;
  const int64_t* segments;
  const float* gate;
  float* kseg16;
  void* out;
  float* kt;
  float* v_copy;
  float* mask16;
  float* s;
  float* o;
  float* q2;
  int64_t t, dh, rep, width, out_width, lambda_width;
  bool pairs, bf16, lambda_logits;
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
                                   const torch::Tensor& lambda,
                                   const torch::Tensor& segments,
                                   const torch::Tensor& gate) const {
  const Impl& impl = *impl_;
  const bool bf16 = qkv.scalar_type() == torch::kBFloat16;
  TORCH_CHECK(qkv.dim() == 3 &&
                  (qkv.size(2) == impl.width ||
                   (impl.pairs && !lambda.defined() && !bf16 &&
                    qkv.size(2) == impl.width + impl.q_heads / 2)) &&
                  (bf16 || qkv.scalar_type() == torch::kFloat32) &&
                  qkv.is_cpu(),
              "attention input must be float32 or bfloat16 [B, T, ", impl.width,
              "], got ", qkv.sizes(), " ", qkv.scalar_type());
  const int64_t b = qkv.size(0), t = qkv.size(1);
  // DiffAttn V2's lambda logits may ride in qkv's last q_heads / 2 columns.
  const int64_t lambda_width = impl.q_heads / 2;
  const bool logits_in_qkv =
      impl.pairs && qkv.size(2) == impl.width + lambda_width;
  auto floating = [&](const torch::Tensor& x) {
    return x.scalar_type() == torch::kFloat32 ||
           x.scalar_type() == torch::kBFloat16;
  };
  TORCH_CHECK(
      key_mask.numel() == b * t && floating(key_mask) && key_mask.is_cpu(),
      "key mask must be float32 or bfloat16 [B, 1, 1, T]");
  TORCH_CHECK(
      impl.pairs == (lambda.defined() || logits_in_qkv) &&
          (!lambda.defined() || (lambda.numel() == b * t * lambda_width &&
                                 floating(lambda) && lambda.is_cpu())),
      "lambda must be float32 or bfloat16 [B, T, ", lambda_width,
      "] (or its logits in qkv's last columns) exactly when heads are "
      "paired");
  TORCH_CHECK(segments.defined() == gate.defined(),
              "segments and gate go together");
  if (segments.defined()) {
    TORCH_CHECK(segments.numel() == b * t &&
                    segments.scalar_type() == torch::kLong && segments.is_cpu(),
                "segments must be int64 [B, T]");
    TORCH_CHECK(gate.numel() == impl.q_heads && floating(gate) && gate.is_cpu(),
                "gate must be float32 or bfloat16 [", impl.q_heads, "]");
  }
  const int64_t out_heads = impl.pairs ? impl.q_heads / 2 : impl.q_heads;
  const int64_t out_width = out_heads * impl.dh;
  torch::Tensor out = torch::empty({b, t, out_width}, qkv.options());
  if (b == 0 || t == 0) return out;
  const torch::Tensor x = qkv.contiguous();
  // The mask and lambda are a few floats per token: read as float32.
  const torch::Tensor mask = key_mask.to(torch::kFloat32).contiguous();
  const torch::Tensor lam =
      lambda.defined() ? lambda.to(torch::kFloat32).contiguous() : lambda;
  const char* base = static_cast<const char*>(x.data_ptr());
  const int64_t elem = x.element_size();
  const float* mask_base = mask.data_ptr<float>();
  char* out_base = static_cast<char*>(out.data_ptr());
  const float* lam_base = lam.defined()   ? lam.data_ptr<float>()
                          : logits_in_qkv ? x.data_ptr<float>() + impl.width
                                          : nullptr;
  // Rows of lambda are lambda_width apart, or a qkv row apart in qkv.
  const int64_t lam_stride = logits_in_qkv ? x.size(2) : lambda_width;
  const torch::Tensor seg =
      segments.defined() ? segments.contiguous() : segments;
  const torch::Tensor gates =
      gate.defined() ? gate.to(torch::kFloat32).contiguous() : gate;
  const int64_t* seg_base = seg.defined() ? seg.data_ptr<int64_t>() : nullptr;
  for (int64_t i = 0; seg_base != nullptr && i < b * t; ++i) {
    TORCH_CHECK(seg_base[i] == 0 || seg_base[i] == 1,
                "segment ids must be 0 or 1, got ", seg_base[i]);
  }
  const float* gate_base = gates.defined() ? gates.data_ptr<float>() : nullptr;
  const int64_t g = impl.kv_heads, rep = impl.rep, dh = impl.dh;
  const int64_t w = x.size(2);
  const int64_t out_per_group = impl.pairs ? rep / 2 : rep;
  // A task is one key/value group of one row: rep query heads over t x t
  // scores and their weighted sum. Small inputs (a query of a few dozen
  // tokens) run on the calling thread: waking a second one costs tens of
  // microseconds with OpenMP's passive wait, more than the work.
  const int64_t task_macs = std::max<int64_t>(1, 2 * rep * t * t * dh);
  const int64_t grain = std::max<int64_t>(1, kInlineAttentionMacs / task_macs);
  at::parallel_for(0, b * g, grain, [&](int64_t begin, int64_t end) {
    const int64_t t16 = (t + 15) / 16 * 16, dh16 = (dh + 15) / 16 * 16;
    thread_local std::vector<float> scratch;
    scratch.resize(dh * t16 + t16 * dh16 + 6 * t16 + 8 * dh16);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task / g, gi = task % g;
      const char* row0 = base + bi * t * w * elem;
      AttentionTask a;
      a.q = row0 + gi * rep * dh * elem;
      a.k = row0 + (impl.q_heads + gi) * dh * elem;
      a.v = row0 + (impl.q_heads + g + gi) * dh * elem;
      a.mask = mask_base + bi * t;
      a.lambda = lam_base == nullptr
                     ? nullptr
                     : lam_base + bi * t * lam_stride + gi * out_per_group;
      a.segments = seg_base == nullptr ? nullptr : seg_base + bi * t;
      a.gate = gate_base == nullptr ? nullptr : gate_base + gi * rep;
      a.out = out_base + (bi * t * out_width + gi * out_per_group * dh) * elem;
      a.kt = scratch.data();
      a.v_copy = a.kt + dh * t16;
      a.mask16 = a.v_copy + t16 * dh16;
      a.kseg16 = a.mask16 + t16;
      a.s = a.kseg16 + t16;
      a.o = a.s + 4 * t16;
      a.q2 = a.o + 4 * dh16;
      a.t = t;
      a.dh = dh;
      a.rep = rep;
      a.width = w;
      a.out_width = out_width;
      a.lambda_width = lam_stride;
      a.lambda_logits = logits_in_qkv;
      a.pairs = impl.pairs;
      a.bf16 = bf16;
      impl.run(a);
    }
  });
  return out;
}

}  // namespace diffrank::encoder
