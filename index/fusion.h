// fusion.h: combining a dense and a lexical ranking into one.
//
// Owns: reciprocal rank fusion (RRF: sum of 1 / (k + rank)) and weighted
// score fusion (min-max normalized scores, weighted sum). Each fused hit keeps
// the dense and lexical scores and ranks it came with. Pure functions,
// thread-safe.
#ifndef DIFFRANK_INDEX_FUSION_H_
#define DIFFRANK_INDEX_FUSION_H_

#include <vector>

#include "index/types.h"

namespace diffrank::index {

// FusionOptions selects and tunes the fusion.
struct FusionOptions {
  enum class Method { kRrf, kWeighted };
  Method method = Method::kRrf;  // default: reciprocal rank fusion
  double rrf_k = 60;             // RRF constant (default 60, as in the paper)
  double dense_weight = 0.5;     // weighted fusion: weight of the dense score
};

// Fuse merges `dense` (dense_score and dense_rank set, best first) and
// `lexical` (lexical_score and lexical_rank set, best first) into at most
// `top_k` hits sorted by fused score (ties broken by id for determinism).
std::vector<Hit> Fuse(const std::vector<Hit>& dense,
                      const std::vector<Hit>& lexical,
                      const FusionOptions& options, int top_k);

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_FUSION_H_
