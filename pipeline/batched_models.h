// batched_models.h: the production TextEmbedder and PairScorer: two loaded
// encoder models (bi-encoder, cross-encoder) on one device behind one
// dynamic batcher (encoder/batcher.h), so the executor thread is the only
// caller of either model. Tokenization runs on the caller's thread.
// Thread-safety: thread-safe.
#ifndef DIFFRANK_PIPELINE_BATCHED_MODELS_H_
#define DIFFRANK_PIPELINE_BATCHED_MODELS_H_

#include <memory>

#include "encoder/batcher.h"
#include "encoder/encoder.h"
#include "pipeline/models.h"

namespace diffrank::pipeline {

struct BatchedModelsOptions {
  encoder::EncoderOptions embedder;  // model_dir of a bi-encoder (required)
  encoder::EncoderOptions reranker;  // model_dir of a cross-encoder (required)
  encoder::BatcherOptions batcher;   // pad and run are filled in here
  bool warm_up = true;  // run each model once before Create returns
};

class BatchedModels {
 public:
  // Create loads both models (InvalidArgument/NotFound naming the directory
  // and field), checks their roles, starts the executor and warms up.
  static absl::StatusOr<std::unique_ptr<BatchedModels>> Create(
      BatchedModelsOptions options);
  ~BatchedModels();

  TextEmbedder* embedder() const { return embedder_.get(); }
  PairScorer* scorer() const { return scorer_.get(); }
  int QueueRows(encoder::TaskKind kind) const {
    return batcher_->QueueRows(kind);
  }

 private:
  BatchedModels() = default;
  std::unique_ptr<encoder::Encoder> embed_model_;
  std::unique_ptr<encoder::Encoder> rerank_model_;
  std::unique_ptr<encoder::Batcher> batcher_;  // stops before models go
  std::unique_ptr<TextEmbedder> embedder_;
  std::unique_ptr<PairScorer> scorer_;
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_BATCHED_MODELS_H_
