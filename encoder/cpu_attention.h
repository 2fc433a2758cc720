// cpu_attention.h: multi-head attention on the CPU, float32 or bfloat16
// activations computed in float32, one parallel loop per layer, with
// diffrank's own loops.
//
// Owns: softmax(q k^T + mask) v for every (batch row, K/V head group) as one
// task: q, k and v read in place from the fused q|k|v projection's output (no
// head-split copies), k transposed and v copied once per task into the
// thread's scratch, then four query rows at a time (a DiffAttn pair's two
// heads for two tokens, or four tokens of one head: every load of k and v
// serves all four) their scores, softmax and weighted sum of v (normalized
// once, at the output), keys past the last unmasked one
// skipped (with the segments layout, the own-segment and gated cross-segment
// softmaxes in one pass), and for DiffAttn V2 the pair difference o_2i - lambda
// o_2i+1 written straight into the output. The loops are compiled for AVX-512,
// AVX2 + FMA and baseline x86-64 and chosen by ActiveIsa() (cpu_features.h).
// Why: LibTorch 1.13 (Debian's) has no fused attention; its unfused path is
// four parallel regions, two OpenBLAS GEMMs that pack per call and two head
// reshuffles per layer (docs/benchmarks.md "Where int8 spends its time").
// oneDNN primitives per task were tried first and were slower than that
// (gemm:jit for strided 32 x 32 products: 15 vs 8 ms at batch 1).
// Internal to encoder/ (transformer.cc).
// Thread-safety: immutable after Create; Attend is safe concurrently.
#ifndef DIFFRANK_ENCODER_CPU_ATTENTION_H_
#define DIFFRANK_ENCODER_CPU_ATTENTION_H_

#include <torch/torch.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace diffrank::encoder {

class CpuAttention {
 public:
  // q_heads query heads and kv_heads K/V heads (q_heads a multiple of
  // kv_heads) of head_dim each. With pairs (DiffAttn V2), query heads 2i and
  // 2i+1 form output head i: o_2i - lambda_i o_2i+1 (both fall in one K/V
  // group, so q_heads / kv_heads must be even).
  static absl::StatusOr<CpuAttention> Create(int64_t q_heads, int64_t kv_heads,
                                             int64_t head_dim, bool pairs);
  // Attend: qkv [B, T, (q_heads + 2 kv_heads) head_dim] float32 or bfloat16
  // (q heads, then k, then v; the softmax scale already in q), key_mask [B, 1,
  // 1, T] additive (0 or -inf; at least one key per row unmasked), lambda [B,
  // T, q_heads / 2] with pairs (else undefined); mask and lambda float32 or
  // bfloat16. With pairs and float32, lambda may instead arrive as its
  // logits in q_heads / 2 more columns at the end of qkv (lambda undefined;
  // the sigmoid is taken here), so one GEMM yields q, k, v and lambda. Returns
  // [B, T, heads x head_dim] of qkv's type, heads = q_heads (or q_heads / 2
  // with pairs), head-major. bfloat16 input is computed in float32 (scores,
  // softmax and sums) and rounded once, at the output. With segments (int64 [B,
  // T], 0 or 1: a cross-encoder's query and document) and gate ([q_heads]),
  // query head j's weights are the softmax over its own segment's keys + gate_j
  // x the softmax over the other segment's (transformer.h's segments layout; an
  // empty side adds nothing).
  torch::Tensor Attend(const torch::Tensor& qkv, const torch::Tensor& key_mask,
                       const torch::Tensor& lambda,
                       const torch::Tensor& segments = {},
                       const torch::Tensor& gate = {}) const;
  // Kernel: the loops in use, "diffrank avx512", "diffrank avx2" or
  // "diffrank baseline".
  const std::string& Kernel() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_CPU_ATTENTION_H_
