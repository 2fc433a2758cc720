// models.h: the two model seams the pipeline calls, as small interfaces.
//
// TextEmbedder turns texts into unit-length embeddings (a bi-encoder);
// PairScorer turns (query, passage) pairs into relevance logits (a
// cross-encoder). The server implements both with batched LibTorch models
// (batched_models.h); unit tests use deterministic fakes. Embedders holds
// every bi-encoder a server can use, by model id: each collection is
// searched and written with the embedder that built it. Implementations
// are thread-safe.
#ifndef DIFFRANK_PIPELINE_MODELS_H_
#define DIFFRANK_PIPELINE_MODELS_H_

#include <string>
#include <utility>
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
  // Cross-encoders: relevance probability = sigmoid(scale * logit + bias).
  double calibration_scale = 1.0;
  double calibration_bias = 0.0;
};

// EmbedOutput: rows x dimension floats, a truncation flag per row and the
// time the request waited in the batch queue.
struct EmbedOutput {
  int dimension = 0;
  std::vector<float> values;
  std::vector<bool> truncated;
  std::vector<int> tokens;  // tokens the model read per text (usage counts)
  absl::Duration queued;
  std::string model;  // the model's id (set by Pipeline::Embed)
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

// Embedders: the bi-encoders of a process, by model id.
class Embedders {
 public:
  virtual ~Embedders() = default;
  // Default is the embedder of new collections and of Embed calls that name
  // no model (the newest one the server was given).
  virtual TextEmbedder* Default() const = 0;
  // Get returns the embedder with this model id, loading it on first use:
  // NotFound naming the id when the process has no such model,
  // FailedPrecondition when it exists but cannot serve (not a bi-encoder).
  virtual absl::StatusOr<TextEmbedder*> Get(const std::string& model_id) = 0;
  // Loaded lists the embedders loaded now, the default first.
  virtual std::vector<const TextEmbedder*> Loaded() const = 0;
};

// FixedEmbedders serves a fixed set of borrowed embedders (the first is the
// default); tests and tools with models loaded up front.
class FixedEmbedders final : public Embedders {
 public:
  explicit FixedEmbedders(std::vector<TextEmbedder*> embedders)
      : all_(std::move(embedders)) {}
  TextEmbedder* Default() const override { return all_.front(); }
  absl::StatusOr<TextEmbedder*> Get(const std::string& model_id) override {
    for (TextEmbedder* e : all_) {
      if (e->description().id == model_id) return e;
    }
    return absl::NotFoundError("model \"" + model_id +
                               "\" is not loaded in this process");
  }
  std::vector<const TextEmbedder*> Loaded() const override {
    return {all_.begin(), all_.end()};
  }

 private:
  std::vector<TextEmbedder*> all_;
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_MODELS_H_
