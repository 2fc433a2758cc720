// models.h: the two model seams the pipeline calls, as small interfaces.
//
// TextEmbedder turns texts into unit-length embeddings (a bi-encoder);
// PairScorer turns (query, passage) pairs into relevance logits (a
// cross-encoder). The server implements both with batched LibTorch models
// (batched_models.h); unit tests use deterministic fakes. Implementations
// are thread-safe.
#ifndef DIFFRANK_PIPELINE_MODELS_H_
#define DIFFRANK_PIPELINE_MODELS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/call_context.h"

namespace diffrank::pipeline {

enum class EmbedKind { kQuery, kDocument };

// ModelDescription is what Info reports about a loaded model.
struct ModelDescription {
  std::string id;
  std::string role;          // "bi-encoder" | "cross-encoder"
  std::string architecture;  // "diffattn-v2" | "diffattn-v1" | "baseline"
  std::string device;
  // kernels: the code path, "isa avx2; linears onednn gemm:jit" (Encoder).
  std::string kernels;
  int max_length = 0;
  int dimension = 0;
};

// EmbedOutput: rows x dimension floats, a truncation flag per row and the
// time the request waited in the batch queue.
struct EmbedOutput {
  int dimension = 0;
  std::vector<float> values;
  std::vector<bool> truncated;
  std::vector<int> tokens;  // tokens the model read per text (usage counts)
  absl::Duration queued;
};

struct ScoreOutput {
  std::vector<float> logits;
  absl::Duration queued;
};

class TextEmbedder {
 public:
  virtual ~TextEmbedder() = default;
  // Embed embeds texts. With truncate = false, a text longer than the
  // model's max_length is InvalidArgument naming "texts[i]".
  virtual absl::StatusOr<EmbedOutput> Embed(
      const std::vector<std::string>& texts, EmbedKind kind, bool truncate,
      const CallContext& ctx) = 0;
  virtual const ModelDescription& description() const = 0;
};

class PairScorer {
 public:
  virtual ~PairScorer() = default;
  virtual absl::StatusOr<ScoreOutput> Score(
      absl::string_view query, const std::vector<std::string>& passages,
      const CallContext& ctx) = 0;
  virtual const ModelDescription& description() const = 0;
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_MODELS_H_
