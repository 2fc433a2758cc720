// transformer.cc: weight loading and the forward pass.
#include "encoder/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "encoder/cpu_features.h"
#include "encoder/one_thread.h"
#include "encoder/run_tasks.h"
#include "encoder/torch_compat.h"

namespace diffrank::encoder {
namespace {

// Tokens per feed-forward chunk on the CPU (see Ffn).
constexpr int64_t kFfnChunkTokens = 256;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<torch::Tensor> ToTensor(const TensorView& view,
                                       const std::string& file) {
  torch::ScalarType type;
  switch (view.dtype) {
    case DType::kF32:
      type = torch::kFloat32;
      break;
    case DType::kF16:
      type = torch::kFloat16;
      break;
    case DType::kBF16:
      type = torch::kBFloat16;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": tensor '", view.name, "' has dtype ",
                       DTypeName(view.dtype), "; expected F32, F16 or BF16"));
  }
  torch::Tensor t = torch::empty(view.shape, torch::TensorOptions(type));
  std::memcpy(t.data_ptr(), view.data, view.nbytes);
  if (!torch::isfinite(t).all().item<bool>()) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": tensor '", view.name, "' holds NaN or infinite values"));
  }
  return t;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Transformer>> Transformer::Load(
    const ModelConfig& config, const SafetensorsFile& file,
    torch::Device device, torch::ScalarType dtype, bool int8_linears,
    bool packed_linears, bool fused_attention) {
  if (int8_linears && (!device.is_cpu() || dtype != torch::kFloat32)) {
    return absl::InvalidArgumentError(
        "int8 precision runs on the CPU with float32 activations only");
  }
  std::unique_ptr<Transformer> m(new Transformer(config, device, dtype));
  m->int8_ = int8_linears;
  std::map<std::string, torch::Tensor> w;
  std::set<std::string> expected_names;
  for (const ExpectedTensor& e : ExpectedTensors(config)) {
    expected_names.insert(e.name);
    const TensorView* view = file.Find(e.name);
    if (view == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": missing tensor '", e.name, "' of shape ",
          ShapeString(e.shape), " (required by config.json: architecture ",
          AttentionName(config.attention), ", role ", RoleName(config.role),
          ")"));
    }
    if (view->shape != e.shape) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.path(), ": tensor '", e.name, "' has shape ",
                       ShapeString(view->shape), "; config.json implies ",
                       ShapeString(e.shape)));
    }
    absl::StatusOr<torch::Tensor> t = ToTensor(*view, file.path());
    if (!t.ok()) return t.status();
    w[e.name] = t->to(device, dtype);
  }
  for (const auto& [name, view] : file.tensors()) {
    if (!expected_names.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": unexpected tensor '", name,
          "' (not part of architecture ", AttentionName(config.attention),
          ", role ", RoleName(config.role), "; wrong config.json?)"));
    }
  }
  auto opt = [&](const std::string& name) {
    auto it = w.find(name);
    return it == w.end() ? torch::Tensor() : it->second;
  };
  m->word_ = w["embeddings.word.weight"];
  m->position_ = w["embeddings.position.weight"];
  m->token_type_ = opt("embeddings.token_type.weight");
  m->emb_norm_w_ = w["embeddings.norm.weight"];
  m->emb_norm_b_ = w["embeddings.norm.bias"];
  m->final_norm_w_ = opt("final_norm.weight");
  m->final_norm_b_ = opt("final_norm.bias");
  m->pooler_w_ = opt("head.pooler.weight");
  m->pooler_b_ = opt("head.pooler.bias");
  m->out_w_ = opt("head.out.weight");
  m->out_b_ = opt("head.out.bias");
  m->scale_ = opt("head.scale");
  // int8: packed oneDNN (per-token activations) where it runs, else
  // LibTorch's quantized engine; float types: packed oneDNN or at::linear.
  const bool packed =
      packed_linears && device.is_cpu() && CpuLinear::Available() &&
      (int8_linears || dtype == torch::kFloat32 || dtype == torch::kBFloat16);
  const CpuLinear::Type type = int8_linears ? CpuLinear::Type::kInt8
                               : dtype == torch::kBFloat16
                                   ? CpuLinear::Type::kBFloat16
                                   : CpuLinear::Type::kFloat32;
  // Fused attention where it measured faster than LibTorch's ops
  // (docs/benchmarks.md "Fused CPU attention" and "Fused attention for the
  // rerankers"): DiffAttn V2 pairs on the AVX2 and AVX-512 paths, the
  // segments rerankers included; plain heads on the AVX2 path only (0.89x on
  // AVX-512, where OpenBLAS's GEMMs for dh 32 beat the loops). With bfloat16
  // activations only the segments rerankers (1.04-1.12x at 2-20 pairs); the
  // bf16 embedders keep LibTorch's native bf16 matmuls, which win at bulk
  // batches (0.92x fused at 32 x 128) though not at a query (1.21x). A model
  // keeps one path for every batch size: results must not depend on batching.
  const bool pairs = config.attention == Attention::kDiffV2;
  const CpuIsa isa = ActiveIsa();
  const bool faster = pairs ? isa >= CpuIsa::kAvx2
                            : config.attention == Attention::kBaseline &&
                                  isa >= CpuIsa::kAvx2 && isa < CpuIsa::kAvx512;
  if (fused_attention && device.is_cpu() &&
      (dtype == torch::kFloat32 ||
       (dtype == torch::kBFloat16 && config.segments())) &&
      faster) {
    absl::StatusOr<CpuAttention> a =
        CpuAttention::Create(pairs ? 2 * config.num_heads : config.num_heads,
                             config.num_kv_heads, config.head_dim(), pairs);
    if (a.ok()) {  // else a layout it does not run: LibTorch's attention
      m->attention_kernels_ = a->Kernel();
      m->attention_ = *std::move(a);
    }
  }
  std::set<std::string> kernels;
  for (int l = 0; l < config.num_layers; ++l) {
    const std::string p = absl::StrCat("layers.", l, ".");
    Layer layer;
    // Fused q|k|v rows, with the softmax scale dh^-0.5 folded into q.
    const double scale =
        1.0 / std::sqrt(static_cast<double>(config.head_dim()));
    layer.qkv.w = torch::cat({w[p + "attn.q.weight"] * scale,
                              w[p + "attn.k.weight"], w[p + "attn.v.weight"]},
                             0);
    if (config.attention_bias) {
      layer.qkv.b = torch::cat({w[p + "attn.q.bias"] * scale,
                                w[p + "attn.k.bias"], w[p + "attn.v.bias"]},
                               0);
    }
    layer.o.w = w[p + "attn.o.weight"];
    layer.o.b = opt(p + "attn.o.bias");
    layer.lambda_w = opt(p + "attn.lambda.weight");
    layer.lambda_q1 = opt(p + "attn.lambda_q1");
    layer.lambda_k1 = opt(p + "attn.lambda_k1");
    layer.lambda_q2 = opt(p + "attn.lambda_q2");
    layer.lambda_k2 = opt(p + "attn.lambda_k2");
    layer.subln_w = opt(p + "attn.subln.weight");
    layer.cross_gate = opt(p + "attn.cross_gate");
    layer.attn_norm_w = w[p + "attn_norm.weight"];
    layer.attn_norm_b = w[p + "attn_norm.bias"];
    layer.up.w = w[p + "ffn.up.weight"];
    layer.up.b = opt(p + "ffn.up.bias");
    layer.down.w = w[p + "ffn.down.weight"];
    layer.down.b = opt(p + "ffn.down.bias");
    layer.ffn_norm_w = w[p + "ffn_norm.weight"];
    layer.ffn_norm_b = w[p + "ffn_norm.bias"];
    layer.lambda_init = ModelConfig::LambdaInit(l);
    // With the fused attention and float32 linears, DiffAttn V2's lambda
    // logits come out of the q|k|v GEMM as H more columns (the attention
    // takes the sigmoid): one projection and two ATen ops fewer per layer.
    // Not with int8 linears: lambda stays exact there (float32 at::linear).
    if (m->attention_ && layer.lambda_w.defined() && dtype == torch::kFloat32 &&
        !int8_linears) {
      layer.qkv.w = torch::cat({layer.qkv.w, layer.lambda_w}, 0);
      if (layer.qkv.b.defined()) {
        layer.qkv.b = torch::cat(
            {layer.qkv.b,
             torch::zeros({layer.lambda_w.size(0)}, layer.qkv.b.options())},
            0);
      }
      layer.lambda_in_qkv = true;
    }
    for (Projection* proj : {&layer.qkv, &layer.o, &layer.up, &layer.down}) {
      if (packed) {
        absl::StatusOr<CpuLinear> p = CpuLinear::Create(proj->w, proj->b, type);
        if (p.ok()) {  // else no JIT kernel for this CPU: the fallback below
          proj->packed = *std::move(p);
          const std::string& k = proj->packed->Kernel();
          kernels.insert(
              k.rfind("diffrank", 0) == 0 ? k : absl::StrCat("onednn ", k));
          proj->w = proj->b = torch::Tensor();  // only the packed copy stays
          m->packed_ = true;
          continue;
        }
      }
      if (int8_linears) {
        // Per output row, so the folded q scale is absorbed exactly.
        absl::StatusOr<QuantizedLinear> q =
            QuantizedLinear::Create(proj->w, proj->b);
        if (!q.ok()) return q.status();
        proj->q = *std::move(q);
        kernels.insert(absl::StrCat("quantized ", QuantizedLinear::Engine()));
        proj->w = proj->b = torch::Tensor();  // only the int8 copy stays
      } else {
        kernels.insert("at::linear");
      }
    }
    m->layers_.push_back(std::move(layer));
  }
  m->linear_kernels_ = absl::StrJoin(kernels, ", ");
  return m;
}

torch::Tensor Transformer::SegmentAttention(const Layer& layer,
                                            const torch::Tensor& q,
                                            const torch::Tensor& k,
                                            const torch::Tensor& v,
                                            const Masks& masks) const {
  const int64_t g = q.size(1), t = k.size(2), rep = q.size(2) / t;
  // Query row r * T + i of a group is token i of head (group, r): the masks
  // (built once per forward, already repeated per head); the gate is per
  // query head (group * R + r).
  const torch::Tensor& within = masks.within;
  const torch::Tensor& cross = masks.cross;
  const torch::Tensor gate =
      layer.cross_gate.view({1, g, rep, 1, 1}).to(q.scalar_type());
  return compat::ByBatchChunks(q, t, [&](int64_t i, int64_t n) {
    torch::Tensor s =
        torch::matmul(q.narrow(0, i, n), k.narrow(0, i, n).transpose(-2, -1));
    torch::Tensor p = (s + within.narrow(0, i, n)).softmax(-1);
    torch::Tensor pc = (s + cross.narrow(0, i, n)).softmax(-1);
    p = p.view({n, g, rep, t, t}) + gate * pc.view({n, g, rep, t, t});
    return torch::matmul(p.view({n, g, rep * t, t}), v.narrow(0, i, n));
  });
}

// V2Lambda: DiffAttn V2's per-token, per-head lambda [B, T, H].
torch::Tensor Transformer::V2Lambda(const Layer& layer,
                                    const torch::Tensor& x) {
  return torch::sigmoid(at::linear(x, layer.lambda_w));
}

torch::Tensor Transformer::Heads(const Layer& layer, const torch::Tensor& x,
                                 const torch::Tensor& qkv_rows,
                                 const Masks& masks) const {
  const torch::Tensor& key_mask = masks.key;
  const ModelConfig& c = config_;
  const int64_t b = x.size(0), t = x.size(1);
  const int64_t h = c.num_heads, g = c.num_kv_heads, dh = c.head_dim();
  // One GEMM for q|k|v; the softmax scale is folded into q's rows at load.
  const torch::Tensor qkv = qkv_rows.defined() ? qkv_rows : layer.qkv(x);
  if (attention_) {  // Load made it for this model's activations
    return attention_->Attend(
        qkv, masks.key,
        c.attention == Attention::kDiffV2 && !layer.lambda_in_qkv
            ? V2Lambda(layer, x)
            : torch::Tensor(),
        masks.segments,
        masks.segments.defined() ? layer.cross_gate : torch::Tensor());
  }
  // Query heads grouped by K/V head: query head j belongs to group j / rep,
  // laid out [B, G, rep * T, dh] so each group is one attention call.
  auto grouped_q = [&](int64_t heads) {
    const int64_t rep = heads / g;
    return qkv.narrow(-1, 0, heads * dh)
        .view({b, t, g, rep, dh})
        .permute({0, 2, 3, 1, 4})
        .reshape({b, g, rep * t, dh});
  };
  auto kv = [&](int64_t offset, int64_t heads, int64_t size) {
    return qkv.narrow(-1, offset, heads * size)
        .view({b, t, heads, size})
        .transpose(1, 2);
  };
  // Back from [B, G, rep * T, size] to [B, T, G * rep, size].
  auto ungroup = [&](const torch::Tensor& o, int64_t heads, int64_t size) {
    return o.view({b, g, heads / g, t, size})
        .permute({0, 3, 1, 2, 4})
        .reshape({b, t, heads, size});
  };
  torch::Tensor out;  // [B, T, d] before the output projection
  switch (c.attention) {
    case Attention::kBaseline: {
      torch::Tensor o =
          masks.within.defined()
              ? SegmentAttention(layer, grouped_q(h), kv(h * dh, g, dh),
                                 kv((h + g) * dh, g, dh), masks)
              : compat::Attend(grouped_q(h), kv(h * dh, g, dh),
                               kv((h + g) * dh, g, dh), key_mask);
      out = ungroup(o, h, dh).reshape({b, t, h * dh});
      break;
    }
    case Attention::kDiffV2: {
      // 2H query heads; rep = 2H / G is even, so the pair (2i, 2i+1) always
      // falls in one K/V group and shares keys and values.
      torch::Tensor o =
          masks.within.defined()
              ? SegmentAttention(layer, grouped_q(2 * h), kv(2 * h * dh, g, dh),
                                 kv((2 * h + g) * dh, g, dh), masks)
              : compat::Attend(grouped_q(2 * h), kv(2 * h * dh, g, dh),
                               kv((2 * h + g) * dh, g, dh), key_mask);
      torch::Tensor a = ungroup(o, 2 * h, dh).reshape({b, t, h, 2, dh});
      torch::Tensor lambda = V2Lambda(layer, x).unsqueeze(-1);
      out = (a.select(3, 0) - lambda * a.select(3, 1)).reshape({b, t, h * dh});
      break;
    }
    case Attention::kDiffV1: {
      // Q/K: 2H (2G) heads of dh; V: G heads of 2dh. Query head j of the 2H
      // uses K head j / rep (rep = H / G), as in the reference code.
      const int64_t rep = h / g;
      torch::Tensor q = qkv.narrow(-1, 0, 2 * h * dh)
                            .view({b, t, 2 * g, rep, dh})
                            .permute({0, 2, 3, 1, 4})
                            .reshape({b, 2 * g, rep * t, dh});
      torch::Tensor k = kv(2 * h * dh, 2 * g, dh);
      // Output head i uses V head i / rep.
      torch::Tensor v = kv(2 * (h + g) * dh, g, 2 * dh);
      const torch::Tensor lambda =
          (torch::exp(
               (layer.lambda_q1 * layer.lambda_k1).sum().to(torch::kFloat32)) -
           torch::exp(
               (layer.lambda_q2 * layer.lambda_k2).sum().to(torch::kFloat32)) +
           layer.lambda_init)
              .to(q.scalar_type());
      // A = softmax_1 - lambda softmax_2 for head pairs (2i, 2i+1); O = A V.
      // A few batch rows at a time, so the maps stay in cache.
      auto core = [&](int64_t i, int64_t n) {
        torch::Tensor p =
            compat::Probabilities(q.narrow(0, i, n), k.narrow(0, i, n),
                                  key_mask.narrow(0, i, n))
                .view({n, h, 2, t, t});
        torch::Tensor diff = p.select(2, 0) - lambda * p.select(2, 1);
        return torch::matmul(diff.view({n, g, rep * t, t}), v.narrow(0, i, n))
            .view({n, h, t, 2 * dh});
      };
      torch::Tensor o = compat::ByBatchChunks(q, t, core);
      // Per-head RMSNorm (eps 1e-5) with learned scale, times (1 -
      // lambda_init).
      torch::Tensor of = o.to(torch::kFloat32);
      of = of * torch::rsqrt(of.pow(2).mean(-1, true) + 1e-5);
      o = of.to(o.scalar_type()) * layer.subln_w * (1.0 - layer.lambda_init);
      out = o.transpose(1, 2).reshape({b, t, 2 * h * dh});
      break;
    }
  }
  return out;
}

Epilogue Transformer::Activate() const {
  Epilogue activate;
  switch (config_.activation) {
    case Activation::kGelu:
      activate.activation = EpilogueActivation::kGelu;
      break;
    case Activation::kGeluTanh:
      activate.activation = EpilogueActivation::kGeluTanh;
      break;
    case Activation::kRelu:
      activate.activation = EpilogueActivation::kRelu;
      break;
  }
  return activate;
}

torch::Tensor Transformer::Ffn(const Layer& layer, const torch::Tensor& x,
                               const Epilogue& tail) const {
  const Epilogue activate = Activate();
  auto ffn = [&](const torch::Tensor& rows, const Epilogue& end) {
    return layer.down(layer.up(rows, activate), end);
  };
  // On the CPU, a few hundred tokens at a time: the [tokens, intermediate]
  // activation then stays in cache and its buffer is reused instead of a
  // fresh tens-of-MB allocation per layer (page faults on every first touch:
  // measured 1.2x on 32 x 128 tokens).
  const int64_t tokens = x.numel() / x.size(-1);
  if (!x.is_cpu() || tokens <= kFfnChunkTokens) return ffn(x, tail);
  const torch::Tensor flat = x.reshape({tokens, x.size(-1)});
  torch::Tensor out = torch::empty({tokens, config_.hidden_size}, x.options());
  for (int64_t i = 0; i < tokens; i += kFfnChunkTokens) {
    const int64_t n = std::min(kFfnChunkTokens, tokens - i);
    out.narrow(0, i, n).copy_(ffn(flat.narrow(0, i, n), tail.Rows(i, n)));
  }
  return out.view(x.sizes());
}

bool Transformer::ByRows(const Layer& layer, const torch::Tensor& heads) const {
  const int64_t m = heads.numel() / std::max<int64_t>(1, heads.size(-1));
  return heads.is_cpu() && heads.scalar_type() == torch::kFloat32 &&
         layer.o.packed && layer.up.packed && layer.down.packed &&
         layer.o.packed->RowTasks(m) && layer.up.packed->RowTasks(m) &&
         layer.down.packed->RowTasks(m);
}

Transformer::ByRowsOut Transformer::SublayersByRows(const Layer& layer,
                                                    const torch::Tensor& heads,
                                                    const torch::Tensor& x,
                                                    const Layer* next) const {
  const ModelConfig& c = config_;
  const bool post = c.norm == NormPlacement::kPost;
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  const torch::Tensor a = heads.contiguous();
  const torch::Tensor xc = x.contiguous();
  const int64_t m = xc.numel() / d;
  const CpuLinear &o = *layer.o.packed, &up = *layer.up.packed,
                  &down = *layer.down.packed;
  const torch::TensorOptions opts = xc.options();
  const torch::Tensor x1 = torch::empty({m, d}, opts);
  const torch::Tensor mid = torch::empty({m, f}, opts);
  const torch::Tensor out = torch::empty(xc.sizes(), opts);
  const torch::Tensor normed = post ? x1 : torch::empty({m, d}, opts);
  Epilogue attn_tail, ffn_norm, ffn_tail;
  attn_tail.residual = xc.view({m, d});
  ffn_tail.residual = x1;
  ffn_norm.norm_w = layer.ffn_norm_w;
  ffn_norm.norm_b = layer.ffn_norm_b;
  ffn_norm.eps = c.layer_norm_eps;
  if (post) {
    attn_tail.norm_w = layer.attn_norm_w;
    attn_tail.norm_b = layer.attn_norm_b;
    attn_tail.eps = c.layer_norm_eps;
    ffn_tail.norm_w = ffn_norm.norm_w;
    ffn_tail.norm_b = ffn_norm.norm_b;
    ffn_tail.eps = ffn_norm.eps;
  }
  const Epilogue activate = Activate();
  TORCH_CHECK(a.numel() == m * o.in() && o.out() == d && up.in() == d &&
                  up.out() == f && down.in() == f && down.out() == d,
              "layer shapes do not chain");
  CheckRows(attn_tail, m, d);
  CheckRows(ffn_norm, m, d);
  CheckRows(ffn_tail, m, d);
  // The next layer's attention input (pre-norm: its LayerNorm of `out`) and
  // q|k|v, where its q|k|v projection takes row tasks too.
  ByRowsOut result;
  result.x = out;
  const CpuLinear* qkv = next != nullptr && next->qkv.packed &&
                                 next->qkv.packed->RowTasks(m) &&
                                 next->qkv.packed->in() == d
                             ? &*next->qkv.packed
                             : nullptr;
  Epilogue next_norm;
  if (qkv != nullptr) {
    result.next_in = post ? out : torch::empty(xc.sizes(), opts);
    std::vector<int64_t> shape = xc.sizes().vec();
    shape.back() = qkv->out();
    result.next_qkv = torch::empty(shape, opts);
    next_norm.norm_w = next->attn_norm_w;
    next_norm.norm_b = next->attn_norm_b;
    next_norm.eps = c.layer_norm_eps;
    CheckRows(next_norm, m, d);
  }
  const float* ap = a.data_ptr<float>();
  float *x1p = x1.data_ptr<float>(), *np = normed.data_ptr<float>(),
        *midp = mid.data_ptr<float>(), *outp = out.data_ptr<float>();
  float* next_inp = qkv ? result.next_in.data_ptr<float>() : nullptr;
  float* qkvp = qkv ? result.next_qkv.data_ptr<float>() : nullptr;
  OneThreadIf small(o.Macs(m) + up.Macs(m) + down.Macs(m) +
                        (qkv ? qkv->Macs(m) : 0) <
                    up.InlineMacs());
  // LayerNorm of rows [r0, r1) of src into dst (pre-norm inputs).
  auto norm_rows = [d](const float* src, float* dst, int64_t r0, int64_t r1,
                       const Epilogue& e) {
    std::memcpy(dst + r0 * d, src + r0 * d, (r1 - r0) * d * sizeof(float));
    FinishRows(dst, d, r0, r1, e);
  };
  RunRowTasks(m, CpuLinear::kRowGroup, [&](int64_t r0, int64_t r1) {
    o.ApplyRows(ap, x1p, r0, r1, attn_tail);
    // Pre-norm: the FFN's input is LayerNorm(x1); x1 is its residual.
    if (!post) norm_rows(x1p, np, r0, r1, ffn_norm);
    up.ApplyRows(np, midp, r0, r1, activate);
    down.ApplyRows(midp, outp, r0, r1, ffn_tail);
    if (qkv == nullptr) return;
    if (!post) norm_rows(outp, next_inp, r0, r1, next_norm);
    qkv->ApplyRows(next_inp, qkvp, r0, r1, Epilogue());
  });
  return result;
}

torch::Tensor Transformer::Hidden(const torch::Tensor& ids,
                                  const torch::Tensor& type_ids,
                                  const torch::Tensor& mask,
                                  const torch::Tensor& positions,
                                  const torch::Tensor& segments) const {
  const ModelConfig& c = config_;
  const int64_t t = ids.size(1);
  TORCH_CHECK(t <= c.max_position_embeddings, "sequence of ", t,
              " tokens exceeds max_position_embeddings ",
              c.max_position_embeddings);
  TORCH_CHECK(c.segments() == segments.defined(),
              c.segments() ? "a segments cross-encoder needs segment ids"
                           : "segment ids given to a model without segments");
  torch::Tensor x =
      at::embedding(word_, ids) +
      (positions.defined() ? at::embedding(position_, positions)
                           : position_.narrow(0, 0, t).unsqueeze(0));
  if (token_type_.defined()) x = x + at::embedding(token_type_, type_ids);
  x = LayerNormLastDim(x, emb_norm_w_, emb_norm_b_, c.layer_norm_eps);
  // Additive key-padding mask [B, 1, 1, T]: -inf for padded keys.
  const float inf = std::numeric_limits<float>::infinity();
  Masks masks;
  masks.key = torch::zeros({mask.size(0), 1, 1, t}, x.options())
                  .masked_fill_(mask.eq(0).view({mask.size(0), 1, 1, t}), -inf);
  if (segments.defined() && attention_) {  // it masks per task
    masks.segments = segments;
  } else if (segments.defined()) {
    // Padding rows count as the second segment, so every row has keys in
    // both masks (the first segment is never empty: [CLS] [SEP] at least).
    const torch::Tensor same =
        segments.unsqueeze(2).eq(segments.unsqueeze(1)).unsqueeze(1);
    const torch::Tensor pad = mask.eq(0).view({mask.size(0), 1, 1, t});
    const torch::Tensor zeros =
        torch::zeros({mask.size(0), 1, t, t}, x.options());
    // Repeated for the R query heads each K/V group stacks along the rows.
    const int64_t rep = c.attention_heads() / c.num_kv_heads;
    masks.within = zeros.masked_fill(same.logical_not().logical_or(pad), -inf)
                       .repeat({1, 1, rep, 1});
    masks.cross =
        zeros.masked_fill(same.logical_or(pad), -inf).repeat({1, 1, rep, 1});
  }
  // Each sublayer's residual add (and, post-norm, its LayerNorm) runs as the
  // epilogue of its last projection (epilogue.h).
  auto tail = [&](const torch::Tensor& residual, const torch::Tensor& w,
                  const torch::Tensor& b) {
    Epilogue e;
    e.residual = residual;
    if (c.norm == NormPlacement::kPost) {
      e.norm_w = w;
      e.norm_b = b;
      e.eps = c.layer_norm_eps;
    }
    return e;
  };
  const bool post = c.norm == NormPlacement::kPost;
  // The layer's attention input and q|k|v when the previous layer's row
  // tasks computed them (else undefined).
  torch::Tensor in, qkv;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    if (!in.defined()) {
      in = post ? x
                : LayerNormLastDim(x, layer.attn_norm_w, layer.attn_norm_b,
                                   c.layer_norm_eps);
    }
    const torch::Tensor heads = Heads(layer, in, qkv, masks);
    if (ByRows(layer, heads)) {
      ByRowsOut rows = SublayersByRows(
          layer, heads, x, i + 1 < layers_.size() ? &layers_[i + 1] : nullptr);
      x = std::move(rows.x);
      in = std::move(rows.next_in);
      qkv = std::move(rows.next_qkv);
      continue;
    }
    in = qkv = torch::Tensor();
    x = layer.o(heads, tail(x, layer.attn_norm_w, layer.attn_norm_b));
    x = Ffn(layer,
            post ? x
                 : LayerNormLastDim(x, layer.ffn_norm_w, layer.ffn_norm_b,
                                    c.layer_norm_eps),
            tail(x, layer.ffn_norm_w, layer.ffn_norm_b));
  }
  if (c.norm == NormPlacement::kPre) {
    x = LayerNormLastDim(x, final_norm_w_, final_norm_b_, c.layer_norm_eps);
  }
  return x;
}

torch::Tensor Transformer::Forward(const torch::Tensor& ids,
                                   const torch::Tensor& type_ids,
                                   const torch::Tensor& mask,
                                   const torch::Tensor& positions,
                                   const torch::Tensor& segments) const {
  torch::Tensor x = Hidden(ids, type_ids, mask, positions, segments);
  if (config_.role == Role::kCrossEncoder) {
    torch::Tensor pooled =
        torch::tanh(at::linear(x.select(1, 0), pooler_w_, pooler_b_));
    torch::Tensor logit =
        at::linear(pooled, out_w_, out_b_).squeeze(-1).to(torch::kFloat32);
    if (!config_.segments()) return logit;
    // scale * cos(mean of segment 0, mean of segment 1), in float32.
    const torch::Tensor xf = x.to(torch::kFloat32);
    const torch::Tensor valid = mask.to(torch::kFloat32);
    auto pooled_segment = [&](int64_t id) {
      const torch::Tensor w = (valid * segments.eq(id)).unsqueeze(-1);
      torch::Tensor p = (xf * w).sum(1) / w.sum(1).clamp_min(1e-9);
      return p / p.norm(2, -1, true).clamp_min(1e-12);
    };
    const torch::Tensor cos = (pooled_segment(0) * pooled_segment(1)).sum(-1);
    return scale_.to(torch::kFloat32) * cos + logit;
  }
  torch::Tensor pooled;
  if (config_.pooling == Pooling::kCls) {
    pooled = x.select(1, 0).to(torch::kFloat32);
  } else {
    const torch::Tensor m = mask.to(torch::kFloat32).unsqueeze(-1);
    pooled = (x.to(torch::kFloat32) * m).sum(1) / m.sum(1).clamp_min(1e-9);
  }
  if (config_.normalize) {
    pooled = pooled / pooled.norm(2, -1, true).clamp_min(1e-12);
  }
  return pooled;
}

}  // namespace diffrank::encoder
