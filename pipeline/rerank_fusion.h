// rerank_fusion.h: the last step of the reranking stage, fusing the
// cross-encoder's scores with the first-stage order.
//
// Owns: the fusion formula, shared by Search (the reranked head of the fused
// candidates), Rerank (when the request asks for it) and the offline
// evaluation tool (pipeline/tools/rerank_main.cc), so that every figure in
// docs/results.md is what the service computes.
//
//   fused_i = z(logit)_i + w * z(prior)_i,  prior_i = 1 / (60 + i + 1)
//
// for candidates i = 0.. in first-stage order (best first); z() standardizes
// over the reranked candidates (mean 0, standard deviation 1; all zeros when
// they are all equal). w = 0 is the cross-encoder alone; larger w keeps more
// of the first stage's order. Standardizing makes w independent of the
// logit's scale, so one weight serves any model and depth; the prior is the
// reciprocal-rank score that hybrid fusion already uses. The default w is
// fitted on validation data (docs/results.md, "Fusion weight and depth").
// Thread-safety: pure functions.
#ifndef DIFFRANK_PIPELINE_RERANK_FUSION_H_
#define DIFFRANK_PIPELINE_RERANK_FUSION_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace diffrank::pipeline {

// kMaxFusionWeight bounds the per-request weight (beyond it the first-stage
// order decides everything anyway).
inline constexpr double kMaxFusionWeight = 100.0;

// ValidateFusionWeight: InvalidArgument naming `field` unless 0 <= w <= 100.
absl::Status ValidateFusionWeight(double weight, absl::string_view field);

// FuseWithFirstStage returns the fused score of each candidate; `logits` are
// the cross-encoder's, in first-stage order. With weight 0 it returns the
// logits unchanged (the cross-encoder's own scale).
std::vector<double> FuseWithFirstStage(const std::vector<float>& logits,
                                       double weight);

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_RERANK_FUSION_H_
