// batched_models.h: the production Embedders and PairScorer: loaded encoder
// models (the cross-encoder, the default bi-encoder and every other
// bi-encoder a collection needs) on one device behind one dynamic batcher
// (encoder/batcher.h, one model slot each), so the executor thread is the
// only caller of any model. Other embedders load on first use (Get) from
// the directory `find_model` names, one copy per model id however many
// collections use it. Tokenization runs on the caller's thread.
// Thread-safety: thread-safe.
#ifndef DIFFRANK_PIPELINE_BATCHED_MODELS_H_
#define DIFFRANK_PIPELINE_BATCHED_MODELS_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "encoder/batcher.h"
#include "encoder/encoder.h"
#include "pipeline/models.h"

namespace diffrank::pipeline {

struct BatchedModelsOptions {
  encoder::EncoderOptions embedder;  // the default bi-encoder (required)
  encoder::EncoderOptions reranker;  // model_dir of a cross-encoder (required)
  // The model directory of a model id, for embedders loaded by Get (device,
  // precision and threads as `embedder`); NotFound when there is none.
  // Optional: without it only the default embedder serves.
  std::function<absl::StatusOr<std::string>(const std::string& model_id)>
      find_model;
  // Called after an embedder loaded by Get is warm (metrics, logs).
  std::function<void(const ModelDescription&)> on_load;
  encoder::BatcherOptions batcher;  // pad and run are filled in here
  bool warm_up = true;              // run each model once before Create returns
};

class BatchedModels final : public Embedders {
 public:
  // Create loads both models (InvalidArgument/NotFound naming the directory
  // and field), checks their roles, starts the executor and warms up.
  static absl::StatusOr<std::unique_ptr<BatchedModels>> Create(
      BatchedModelsOptions options);
  ~BatchedModels() override;

  TextEmbedder* embedder() const { return Default(); }
  PairScorer* scorer() const { return scorer_.get(); }
  // Embedders. Get loads a model (and warms it up) on its first use; loads
  // run one at a time, lookups of loaded models do not wait for them.
  TextEmbedder* Default() const override { return default_; }
  absl::StatusOr<TextEmbedder*> Get(const std::string& model_id) override;
  std::vector<const TextEmbedder*> Loaded() const override;
  int QueueRows(encoder::TaskKind kind) const {
    return batcher_->QueueRows(kind);
  }

 private:
  BatchedModels() = default;
  // Adds a loaded bi-encoder in the next slot and warms it up; load_mu_ held.
  absl::StatusOr<TextEmbedder*> AddEmbedderLocked(
      std::unique_ptr<encoder::Encoder> model);

  BatchedModelsOptions options_;
  // Slot 0 is the cross-encoder, then the embedders in load order. The
  // executor reads slots_ without locks; a slot is set before first use.
  std::array<std::atomic<const encoder::Encoder*>, encoder::kMaxModels>
      slots_{};
  std::vector<std::unique_ptr<encoder::Encoder>> models_;  // load_mu_
  std::mutex load_mu_;     // one load at a time; guards models_
  mutable std::mutex mu_;  // guards embedders_
  std::vector<std::unique_ptr<TextEmbedder>> embedders_;  // default first
  TextEmbedder* default_ = nullptr;
  std::unique_ptr<encoder::Batcher> batcher_;  // stops before models go
  std::unique_ptr<PairScorer> scorer_;
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_BATCHED_MODELS_H_
