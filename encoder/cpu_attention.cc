// cpu_attention.cc: fused-per-task attention on oneDNN (see cpu_attention.h).
#include "encoder/cpu_attention.h"

#include <ATen/Parallel.h>

#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#ifdef DIFFRANK_HAVE_DNNL
#include "encoder/onednn.h"
#endif

namespace diffrank::encoder {

#ifdef DIFFRANK_HAVE_DNNL
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using md = dnnl::memory::desc;
using onednn::Engine;
using onednn::Stream;

// Sequence lengths whose primitives are kept; beyond this the map starts over
// (oneDNN's own primitive cache makes re-creation a lookup).
constexpr size_t kMaxLengths = 256;

// The three primitives of one sequence length T, and their memory layouts.
struct Primitives {
  md q, kt, scores, mask, rows, v, out;
  dnnl::matmul qk;
  dnnl::softmax_forward softmax;
  dnnl::matmul pv;
  std::string kernel;
};

}  // namespace

struct CpuAttention::Impl {
  int64_t q_heads = 0, kv_heads = 0, dh = 0;
  int64_t rep = 0;    // query heads per K/V group
  int64_t width = 0;  // columns of a qkv row
  bool pairs = false;
  std::string kernel;
  mutable std::shared_mutex mu;
  mutable std::unordered_map<int64_t, std::shared_ptr<const Primitives>> made;

  int64_t OutHeads() const { return pairs ? q_heads / 2 : q_heads; }

  std::shared_ptr<const Primitives> Make(int64_t t) const {
    auto p = std::make_shared<Primitives>();
    // One task: the rep query heads of a K/V group, [rep, T, dh] read with
    // the qkv row stride; k^T and v are one head, broadcast over rep.
    p->q = md({rep, t, dh}, dt::f32, {dh, width, 1});
    p->kt = md({1, dh, t}, dt::f32, {t * width, 1, width});
    p->scores = md({rep, t, t}, dt::f32, tag::abc);
    p->mask = md({1, 1, t}, dt::f32, tag::abc);
    p->rows = md({rep * t, t}, dt::f32, tag::ab);
    p->v = md({1, t, dh}, dt::f32, {t * width, width, 1});
    // Without pairs, A V goes straight to the output row [B, T, H dh].
    p->out = pairs ? md({rep, t, dh}, dt::f32, tag::abc)
                   : md({rep, t, dh}, dt::f32, {dh, q_heads * dh, 1});
    dnnl::post_ops ops;
    ops.append_binary(dnnl::algorithm::binary_add, p->mask);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    const dnnl::matmul::primitive_desc qk(
        dnnl::matmul::desc(p->q, p->kt, p->scores), attr, Engine());
    const dnnl::softmax_forward::primitive_desc softmax(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, p->rows,
                                    1),
        Engine());
    const dnnl::matmul::primitive_desc pv(
        dnnl::matmul::desc(p->scores, p->v, p->out), Engine());
    std::set<std::string> names{qk.impl_info_str(), softmax.impl_info_str(),
                                pv.impl_info_str()};
    p->kernel = absl::StrJoin(names, ", ");
    p->qk = dnnl::matmul(qk);
    p->softmax = dnnl::softmax_forward(softmax);
    p->pv = dnnl::matmul(pv);
    return p;
  }

  std::shared_ptr<const Primitives> Get(int64_t t) const {
    {
      std::shared_lock lock(mu);
      auto it = made.find(t);
      if (it != made.end()) return it->second;
    }
    std::shared_ptr<const Primitives> p = Make(t);
    std::unique_lock lock(mu);
    if (made.size() >= kMaxLengths) made.clear();
    return made.emplace(t, std::move(p)).first->second;
  }
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
  try {
    // Only JIT kernels are worth it; a reference one would be far slower
    // than LibTorch's path.
    for (int64_t t : {int64_t{32}, int64_t{128}}) {
      std::shared_ptr<const Primitives> p = impl->Make(t);
      if (p->kernel.find("ref") != std::string::npos) {
        return absl::FailedPreconditionError(
            absl::StrCat("oneDNN has only reference kernels (", p->kernel,
                         ") for attention on this CPU"));
      }
      impl->kernel = p->kernel;
      impl->made.emplace(t, std::move(p));
    }
  } catch (const dnnl::error& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("oneDNN attention unavailable: ", e.what()));
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
  TORCH_CHECK(
      key_mask.numel() == b * t && key_mask.scalar_type() == torch::kFloat32,
      "key mask must be float32 [B, 1, 1, T]");
  TORCH_CHECK(
      impl.pairs == lambda.defined() &&
          (!lambda.defined() || (lambda.numel() == b * t * impl.q_heads / 2 &&
                                 lambda.scalar_type() == torch::kFloat32)),
      "lambda must be float32 [B, T, ", impl.q_heads / 2,
      "] exactly when heads are paired");
  const int64_t out_width = impl.OutHeads() * impl.dh;
  torch::Tensor out = torch::empty({b, t, out_width}, qkv.options());
  if (b == 0 || t == 0) return out;
  const torch::Tensor x = qkv.contiguous();
  const torch::Tensor mask = key_mask.contiguous();
  const torch::Tensor lam = lambda.defined() ? lambda.contiguous() : lambda;
  const std::shared_ptr<const Primitives> p = impl.Get(t);
  float* base = x.data_ptr<float>();
  float* mask_base = mask.data_ptr<float>();
  float* out_base = out.data_ptr<float>();
  const float* lam_base = lam.defined() ? lam.data_ptr<float>() : nullptr;
  const int64_t g = impl.kv_heads, rep = impl.rep, dh = impl.dh;
  const int64_t w = impl.width, hq = impl.q_heads;
  at::parallel_for(0, b * g, 1, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores, heads;
    scores.resize(rep * t * t);
    if (impl.pairs) heads.resize(rep * t * dh);
    const dnnl::engine& engine = Engine();
    dnnl::stream& stream = Stream();
    dnnl::memory s(p->scores, engine, scores.data());
    dnnl::memory rows(p->rows, engine, scores.data());
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bi = task / g, gi = task % g;
      float* row0 = base + bi * t * w;
      dnnl::memory q(p->q, engine, row0 + gi * rep * dh);
      dnnl::memory kt(p->kt, engine, row0 + hq * dh + gi * dh);
      dnnl::memory v(p->v, engine, row0 + (hq + g) * dh + gi * dh);
      dnnl::memory m(p->mask, engine, mask_base + bi * t);
      float* dst = impl.pairs ? heads.data()
                              : out_base + bi * t * out_width + gi * rep * dh;
      dnnl::memory o(p->out, engine, dst);
      p->qk.execute(stream,
                    {{DNNL_ARG_SRC, q},
                     {DNNL_ARG_WEIGHTS, kt},
                     {DNNL_ARG_DST, s},
                     {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, m}});
      p->softmax.execute(stream, {{DNNL_ARG_SRC, rows}, {DNNL_ARG_DST, rows}});
      p->pv.execute(
          stream,
          {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, v}, {DNNL_ARG_DST, o}});
      stream.wait();
      if (!impl.pairs) continue;
      // Output head (g rep + 2j) / 2 = o_2j - lambda o_2j+1, per token.
      for (int64_t j = 0; j < rep / 2; ++j) {
        const int64_t head = gi * rep / 2 + j;
        const float* a = heads.data() + 2 * j * t * dh;
        const float* c = a + t * dh;
        for (int64_t i = 0; i < t; ++i) {
          const float l = lam_base[(bi * t + i) * (hq / 2) + head];
          float* y = out_base + (bi * t + i) * out_width + head * dh;
          for (int64_t d = 0; d < dh; ++d) {
            y[d] = a[i * dh + d] - l * c[i * dh + d];
          }
        }
      }
    }
  });
  return out;
}

#else  // !DIFFRANK_HAVE_DNNL

struct CpuAttention::Impl {
  std::string kernel;
};

absl::StatusOr<CpuAttention> CpuAttention::Create(int64_t, int64_t, int64_t,
                                                  bool) {
  return absl::FailedPreconditionError("this build has no oneDNN");
}

const std::string& CpuAttention::Kernel() const { return impl_->kernel; }

torch::Tensor CpuAttention::Attend(const torch::Tensor&, const torch::Tensor&,
                                   const torch::Tensor&) const {
  TORCH_CHECK(false, "CpuAttention without oneDNN");
  return {};
}

#endif  // DIFFRANK_HAVE_DNNL

}  // namespace diffrank::encoder
