// transformer.cc: weight loading and the forward pass.
#include "encoder/transformer.h"

#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "encoder/torch_compat.h"

namespace diffrank::encoder {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<torch::Tensor> ToTensor(const TensorView& view,
                                       const std::string& file) {
  torch::ScalarType type;
  switch (view.dtype) {
    case DType::kF32: type = torch::kFloat32; break;
    case DType::kF16: type = torch::kFloat16; break;
    case DType::kBF16: type = torch::kBFloat16; break;
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
    torch::Device device, torch::ScalarType dtype) {
  std::unique_ptr<Transformer> m(new Transformer(config, device, dtype));
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
      return absl::InvalidArgumentError(absl::StrCat(
          file.path(), ": tensor '", e.name, "' has shape ",
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
  for (int l = 0; l < config.num_layers; ++l) {
    const std::string p = absl::StrCat("layers.", l, ".");
    Layer layer;
    layer.qkv_w = torch::cat({w[p + "attn.q.weight"], w[p + "attn.k.weight"],
                              w[p + "attn.v.weight"]},
                             0);
    if (config.attention_bias) {
      layer.qkv_b = torch::cat({w[p + "attn.q.bias"], w[p + "attn.k.bias"],
                                w[p + "attn.v.bias"]},
                               0);
    }
    layer.o_w = w[p + "attn.o.weight"];
    layer.o_b = opt(p + "attn.o.bias");
    layer.lambda_w = opt(p + "attn.lambda.weight");
    layer.lambda_q1 = opt(p + "attn.lambda_q1");
    layer.lambda_k1 = opt(p + "attn.lambda_k1");
    layer.lambda_q2 = opt(p + "attn.lambda_q2");
    layer.lambda_k2 = opt(p + "attn.lambda_k2");
    layer.subln_w = opt(p + "attn.subln.weight");
    layer.attn_norm_w = w[p + "attn_norm.weight"];
    layer.attn_norm_b = w[p + "attn_norm.bias"];
    layer.up_w = w[p + "ffn.up.weight"];
    layer.up_b = opt(p + "ffn.up.bias");
    layer.down_w = w[p + "ffn.down.weight"];
    layer.down_b = opt(p + "ffn.down.bias");
    layer.ffn_norm_w = w[p + "ffn_norm.weight"];
    layer.ffn_norm_b = w[p + "ffn_norm.bias"];
    layer.lambda_init = ModelConfig::LambdaInit(l);
    m->layers_.push_back(std::move(layer));
  }
  return m;
}

torch::Tensor Transformer::Attention(const Layer& layer, const torch::Tensor& x,
                                     const torch::Tensor& key_mask) const {
  const ModelConfig& c = config_;
  const int64_t b = x.size(0), t = x.size(1);
  const int64_t h = c.num_heads, hkv = c.num_kv_heads, dh = c.head_dim();
  const torch::Tensor qkv = at::linear(x, layer.qkv_w, layer.qkv_b);
  // Splits the fused projection into [B, heads, T, size] views.
  auto heads = [&](int64_t offset, int64_t n, int64_t size) {
    return qkv.narrow(-1, offset, n * size).view({b, t, n, size}).transpose(1, 2);
  };
  // Expands K/V heads for grouped attention: query head j uses kv head j/rep.
  auto expand = [](const torch::Tensor& kv, int64_t rep) {
    return rep == 1 ? kv : kv.repeat_interleave(rep, 1);
  };
  torch::Tensor out;  // [B, T, d] before the output projection
  switch (c.attention) {
    case Attention::kBaseline: {
      torch::Tensor q = heads(0, h, dh);
      torch::Tensor k = expand(heads(h * dh, hkv, dh), h / hkv);
      torch::Tensor v = expand(heads((h + hkv) * dh, hkv, dh), h / hkv);
      out = compat::Attend(q, k, v, key_mask).transpose(1, 2).reshape({b, t, h * dh});
      break;
    }
    case Attention::kDiffV2: {
      // 2H query heads over shared K/V groups; pair (2i, 2i+1) shares a group.
      torch::Tensor q = heads(0, 2 * h, dh);
      torch::Tensor k = expand(heads(2 * h * dh, hkv, dh), 2 * h / hkv);
      torch::Tensor v = expand(heads((2 * h + hkv) * dh, hkv, dh), 2 * h / hkv);
      torch::Tensor a = compat::Attend(q, k, v, key_mask)
                            .transpose(1, 2)
                            .reshape({b, t, h, 2, dh});
      torch::Tensor lambda =
          torch::sigmoid(at::linear(x, layer.lambda_w)).unsqueeze(-1);
      out = (a.select(3, 0) - lambda * a.select(3, 1)).reshape({b, t, h * dh});
      break;
    }
    case Attention::kDiffV1: {
      torch::Tensor q = heads(0, 2 * h, dh);
      torch::Tensor k = expand(heads(2 * h * dh, 2 * hkv, dh), h / hkv);
      torch::Tensor v = expand(heads(2 * (h + hkv) * dh, hkv, 2 * dh), h / hkv);
      torch::Tensor p = compat::Probabilities(q, k, key_mask).view({b, h, 2, t, t});
      const torch::Tensor lambda =
          torch::exp((layer.lambda_q1 * layer.lambda_k1).sum().to(torch::kFloat32)) -
          torch::exp((layer.lambda_q2 * layer.lambda_k2).sum().to(torch::kFloat32)) +
          layer.lambda_init;
      torch::Tensor diff = p.select(2, 0) - lambda.to(p.scalar_type()) * p.select(2, 1);
      torch::Tensor o = torch::matmul(diff, v);  // [B, H, T, 2dh]
      // Per-head RMSNorm (eps 1e-5) with learned scale, times (1 - lambda_init).
      torch::Tensor of = o.to(torch::kFloat32);
      of = of * torch::rsqrt(of.pow(2).mean(-1, true) + 1e-5);
      o = of.to(o.scalar_type()) * layer.subln_w * (1.0 - layer.lambda_init);
      out = o.transpose(1, 2).reshape({b, t, 2 * h * dh});
      break;
    }
  }
  return at::linear(out, layer.o_w, layer.o_b);
}

torch::Tensor Transformer::Ffn(const Layer& layer, const torch::Tensor& x) const {
  torch::Tensor u = at::linear(x, layer.up_w, layer.up_b);
  switch (config_.activation) {
    case Activation::kGelu: u = at::gelu(u); break;
    case Activation::kGeluTanh: u = at::gelu(u, "tanh"); break;
    case Activation::kRelu: u = at::relu(u); break;
  }
  return at::linear(u, layer.down_w, layer.down_b);
}

torch::Tensor Transformer::Hidden(const torch::Tensor& ids,
                                  const torch::Tensor& type_ids,
                                  const torch::Tensor& mask) const {
  const ModelConfig& c = config_;
  const int64_t t = ids.size(1);
  TORCH_CHECK(t <= c.max_position_embeddings, "sequence of ", t,
              " tokens exceeds max_position_embeddings ",
              c.max_position_embeddings);
  torch::Tensor x = at::embedding(word_, ids) +
                    position_.narrow(0, 0, t).unsqueeze(0);
  if (token_type_.defined()) x = x + at::embedding(token_type_, type_ids);
  const std::vector<int64_t> norm_shape{c.hidden_size};
  x = at::layer_norm(x, norm_shape, emb_norm_w_, emb_norm_b_, c.layer_norm_eps);
  // Key-padding mask [B, 1, 1, T]: padded keys get no attention.
  const torch::Tensor key_mask = mask.to(torch::kBool).unsqueeze(1).unsqueeze(1);
  for (const Layer& layer : layers_) {
    if (c.norm == NormPlacement::kPost) {
      x = at::layer_norm(x + Attention(layer, x, key_mask), norm_shape,
                         layer.attn_norm_w, layer.attn_norm_b, c.layer_norm_eps);
      x = at::layer_norm(x + Ffn(layer, x), norm_shape, layer.ffn_norm_w,
                         layer.ffn_norm_b, c.layer_norm_eps);
    } else {
      x = x + Attention(layer,
                        at::layer_norm(x, norm_shape, layer.attn_norm_w,
                                       layer.attn_norm_b, c.layer_norm_eps),
                        key_mask);
      x = x + Ffn(layer, at::layer_norm(x, norm_shape, layer.ffn_norm_w,
                                        layer.ffn_norm_b, c.layer_norm_eps));
    }
  }
  if (c.norm == NormPlacement::kPre) {
    x = at::layer_norm(x, norm_shape, final_norm_w_, final_norm_b_,
                       c.layer_norm_eps);
  }
  return x;
}

torch::Tensor Transformer::Forward(const torch::Tensor& ids,
                                   const torch::Tensor& type_ids,
                                   const torch::Tensor& mask) const {
  torch::Tensor x = Hidden(ids, type_ids, mask);
  if (config_.role == Role::kCrossEncoder) {
    torch::Tensor pooled =
        torch::tanh(at::linear(x.select(1, 0), pooler_w_, pooler_b_));
    return at::linear(pooled, out_w_, out_b_).squeeze(-1).to(torch::kFloat32);
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
