// transformer.h: the DiffAttn / baseline encoder stack on LibTorch tensors.
//
// Owns: the weights of one model on one device, and the forward pass
// (embeddings, N encoder layers with baseline, DiffAttn V1 or V2 attention as
// in shared DIFFATTN.md, key-padding mask, post- or pre-norm), the pooling of
// a bi-encoder and the head of a cross-encoder. Internal to encoder/: the
// public API is encoder.h, which hides torch.
// Errors: Load returns statuses; Forward may throw c10::Error, which the
// caller (encoder.cc, the adapter) turns into a status.
// Thread-safety: immutable after Load; Forward is safe to call concurrently.
#ifndef DIFFRANK_ENCODER_TRANSFORMER_H_
#define DIFFRANK_ENCODER_TRANSFORMER_H_

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "encoder/cpu_attention.h"
#include "encoder/cpu_linear.h"
#include "encoder/epilogue.h"
#include "encoder/model_config.h"
#include "encoder/quantized_linear.h"
#include "encoder/safetensors.h"

namespace diffrank::encoder {

class Transformer {
 public:
  // Load checks every tensor of `file` against ExpectedTensors(config)
  // (missing, extra, shape, dtype: InvalidArgument naming the tensor) and
  // moves them to `device` in `dtype`. With `int8_linears` (CPU, float32
  // only) the q|k|v, output and feed-forward projections run int8 dynamic
  // quantized (quantized_linear.h); embeddings, norms, attention, lambda and
  // the head stay float32. With `packed_linears` (CPU, float32 or bfloat16)
  // those projections run on oneDNN with weights packed once
  // (cpu_linear.h) where this build and CPU have it, else at::linear. With
  // `fused_attention` (CPU, where it measured faster: DiffAttn V2 on AVX2 and
  // AVX-512, the segments layout included; plain heads on AVX2; bfloat16
  // activations for the segments cross-encoders only) attention runs as one
  // fused task per batch row and K/V group (cpu_attention.h), else on
  // LibTorch ops. One path per model for every batch, so a text's result
  // does not depend on what it was batched with.
  static absl::StatusOr<std::unique_ptr<Transformer>> Load(
      const ModelConfig& config, const SafetensorsFile& file,
      torch::Device device, torch::ScalarType dtype, bool int8_linears = false,
      bool packed_linears = true, bool fused_attention = true);

  // Hidden returns the last hidden states [B, T, d] for int64 ids, type ids
  // and mask [B, T] on this model's device; a segments cross-encoder also
  // takes positions and segment ids [B, T] (model_config.h), else undefined.
  torch::Tensor Hidden(const torch::Tensor& ids, const torch::Tensor& type_ids,
                       const torch::Tensor& mask,
                       const torch::Tensor& positions = {},
                       const torch::Tensor& segments = {}) const;
  // Forward returns pooled (and, per config, L2-normalized) embeddings [B, d]
  // for a bi-encoder, or one relevance logit per row [B] for a cross-encoder.
  torch::Tensor Forward(const torch::Tensor& ids, const torch::Tensor& type_ids,
                        const torch::Tensor& mask,
                        const torch::Tensor& positions = {},
                        const torch::Tensor& segments = {}) const;

  const ModelConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  bool int8_linears() const { return int8_; }
  // packed_linears: the projections run on oneDNN with packed weights.
  bool packed_linears() const { return packed_; }
  // linear_kernels: what runs the projections, e.g. "onednn brg:avx512_core"
  // (every kernel oneDNN chose, comma-separated), "at::linear", or
  // "quantized onednn".
  const std::string& linear_kernels() const { return linear_kernels_; }
  // attention_kernels: "diffrank avx512" etc. (cpu_attention.h), or "torch"
  // (LibTorch's ops).
  const std::string& attention_kernels() const { return attention_kernels_; }

 private:
  // Projection is one linear layer: float weights for at::linear, packed
  // for oneDNN, or int8 when quantized.
  struct Projection {
    torch::Tensor w, b;  // b may be undefined
    std::optional<QuantizedLinear> q;
    std::optional<CpuLinear> packed;
    // The projection, then `e` (fused where the projection is packed).
    torch::Tensor operator()(const torch::Tensor& x,
                             const Epilogue& e = {}) const {
      if (packed) return packed->Apply(x, e);
      return Finish(q ? q->Apply(x) : at::linear(x, w, b), e);
    }
  };
  struct Layer {
    Projection qkv, o, up, down;  // qkv: fused q|k|v rows
    torch::Tensor lambda_w;
    torch::Tensor lambda_q1, lambda_k1, lambda_q2, lambda_k2, subln_w;
    torch::Tensor cross_gate;  // [Hq] (segments layout)
    torch::Tensor attn_norm_w, attn_norm_b;
    torch::Tensor ffn_norm_w, ffn_norm_b;
    double lambda_init = 0;
    bool lambda_in_qkv = false;  // V2 lambda logits: qkv's last H columns
  };
  Transformer(ModelConfig config, torch::Device device, torch::ScalarType dtype)
      : config_(std::move(config)), device_(device), dtype_(dtype) {}
  // Masks are additive (0 / -inf): key_mask [B, 1, 1, T]; for the segments
  // layout also within / cross [B, 1, R*T, T] (own segment / other segment,
  // padded keys masked in both; repeated for the R query heads of a K/V
  // group) for LibTorch's attention, or the segment ids [B, T] for the fused
  // one; else undefined.
  struct Masks {
    torch::Tensor key, within, cross, segments;
  };
  // Heads: the attention sublayer up to its output projection: the heads'
  // outputs [B, T, H * dh] (DiffAttn V1: [B, T, 2 H dh]) for x [B, T, d];
  // qkv: layer.qkv(x) when already computed (SublayersByRows), or undefined.
  torch::Tensor Heads(const Layer& layer, const torch::Tensor& x,
                      const torch::Tensor& qkv, const Masks& masks) const;
  static torch::Tensor V2Lambda(const Layer& layer, const torch::Tensor& x);
  // SegmentAttention: softmax over the own segment + cross_gate x softmax
  // over the other one, then V; q [B, G, R*T, dh], k, v [B, G, T, dh].
  torch::Tensor SegmentAttention(const Layer& layer, const torch::Tensor& q,
                                 const torch::Tensor& k, const torch::Tensor& v,
                                 const Masks& masks) const;
  // Ffn ends with `tail` (the residual add and, post-norm, the LayerNorm),
  // applied by its last projection.
  torch::Tensor Ffn(const Layer& layer, const torch::Tensor& x,
                    const Epilogue& tail) const;
  // The FFN's activation as an epilogue of its first projection.
  Epilogue Activate() const;
  // ByRows: the rest of the layer after `heads` runs as SublayersByRows (CPU
  // float32, and every projection there prefers row tasks: CpuLinear::
  // RowTasks). SublayersByRows: the output projection (+ residual x, and
  // post-norm its LayerNorm) and the FFN (pre-norm: on LayerNorm of that)
  // as one parallel region of tasks of a few rows, each taking its rows
  // through all of it: every step is row-local, so no task waits for
  // another, where the projection-at-a-time path opens three regions and
  // wakes the other threads for each (a query's 32 rows: cpu_linear.cc).
  // With `next` (the following layer) whose q|k|v projection takes row
  // tasks too, the tasks go on into it: its attention input (pre-norm: its
  // LayerNorm) and q|k|v, so a layer opens two regions (attention, rows).
  bool ByRows(const Layer& layer, const torch::Tensor& heads) const;
  struct ByRowsOut {
    torch::Tensor x;         // the layer's output [B, T, d]
    torch::Tensor next_in;   // next's attention input, or undefined
    torch::Tensor next_qkv;  // next.qkv(next_in), or undefined
  };
  ByRowsOut SublayersByRows(const Layer& layer, const torch::Tensor& heads,
                            const torch::Tensor& x, const Layer* next) const;

  ModelConfig config_;
  torch::Device device_;
  torch::ScalarType dtype_;
  bool int8_ = false;
  std::string linear_kernels_;
  std::optional<CpuAttention> attention_;  // fused CPU attention, if in use
  std::string attention_kernels_ = "torch";
  bool packed_ = false;
  torch::Tensor word_, position_, token_type_, emb_norm_w_, emb_norm_b_;
  torch::Tensor final_norm_w_, final_norm_b_;
  torch::Tensor pooler_w_, pooler_b_, out_w_, out_b_, scale_;
  std::vector<Layer> layers_;
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_TRANSFORMER_H_
