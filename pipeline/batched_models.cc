// batched_models.cc: tokenization, submission to the batcher and model
// descriptions for the production embedder and scorer.
#include "pipeline/batched_models.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace diffrank::pipeline {
namespace {

using encoder::Encoding;
using encoder::TaskKind;

ModelDescription Describe(const encoder::Encoder& e) {
  const encoder::ModelConfig& c = e.config();
  ModelDescription d;
  d.id = c.model_id;
  d.role = std::string(encoder::RoleName(c.role));
  d.architecture = std::string(encoder::AttentionName(c.attention));
  d.device = e.device();
  d.kernels = e.kernels();
  d.max_length = c.max_length;
  d.dimension = c.role == encoder::Role::kBiEncoder ? c.hidden_size : 0;
  d.calibration_scale = c.calibration_scale;
  d.calibration_bias = c.calibration_bias;
  return d;
}

class Embedder : public TextEmbedder {
 public:
  Embedder(const encoder::Encoder* model, int slot, encoder::Batcher* batcher)
      : model_(model),
        slot_(slot),
        batcher_(batcher),
        desc_(Describe(*model)) {}

  absl::StatusOr<EmbedOutput> Embed(const std::vector<std::string>& texts,
                                    EmbedKind kind, bool truncate,
                                    const CallContext& ctx) override {
    std::vector<Encoding> rows;
    rows.reserve(texts.size());
    EmbedOutput out;
    // Instruction-trained models see their prefix ("query: ", ...) first.
    const std::string& prefix = kind == EmbedKind::kQuery
                                    ? model_->config().query_prefix
                                    : model_->config().document_prefix;
    for (size_t i = 0; i < texts.size(); ++i) {
      // Abandoned calls stop here, not after tokenizing every text.
      if (i % 16 == 0) RETURN_IF_ERROR(ctx.Check("tokenizing"));
      absl::StatusOr<Encoding> e = model_->tokenizer().Encode(
          prefix.empty() ? texts[i] : absl::StrCat(prefix, texts[i]));
      if (!e.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("texts[", i, "]: ", e.status().message()));
      }
      if (e->truncated() && !truncate) {
        return absl::InvalidArgumentError(absl::StrCat(
            "texts[", i, "] has more than the model's max_length ",
            model_->config().max_length, "; shorten it or set truncate"));
      }
      out.truncated.push_back(e->truncated());
      out.tokens.push_back(static_cast<int>(e->ids.size()));
      rows.push_back(*std::move(e));
    }
    ASSIGN_OR_RETURN(
        encoder::SubmitResult r,
        batcher_->Submit(kind == EmbedKind::kQuery ? TaskKind::kQueryEmbed
                                                   : TaskKind::kDocumentEmbed,
                         std::move(rows), ctx, slot_));
    out.dimension = r.width;
    out.values = std::move(r.values);
    out.queued = r.queued;
    return out;
  }
  const ModelDescription& description() const override { return desc_; }

 private:
  const encoder::Encoder* model_;
  const int slot_;
  encoder::Batcher* batcher_;
  ModelDescription desc_;
};

class Scorer : public PairScorer {
 public:
  Scorer(const encoder::Encoder* model, encoder::Batcher* batcher)
      : model_(model), batcher_(batcher), desc_(Describe(*model)) {}

  absl::StatusOr<ScoreOutput> Score(absl::string_view query,
                                    const std::vector<std::string>& passages,
                                    const CallContext& ctx) override {
    std::vector<Encoding> rows;
    rows.reserve(passages.size());
    for (size_t i = 0; i < passages.size(); ++i) {
      if (i % 16 == 0) RETURN_IF_ERROR(ctx.Check("tokenizing"));
      absl::StatusOr<Encoding> e = model_->EncodePair(query, passages[i]);
      if (!e.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("documents[", i, "]: ", e.status().message()));
      }
      rows.push_back(*std::move(e));
    }
    ASSIGN_OR_RETURN(encoder::SubmitResult r,
                     batcher_->Submit(TaskKind::kRerank, std::move(rows), ctx,
                                      /*model=*/0));
    return ScoreOutput{std::move(r.values), r.queued};
  }
  const ModelDescription& description() const override { return desc_; }

 private:
  const encoder::Encoder* model_;
  encoder::Batcher* batcher_;
  ModelDescription desc_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BatchedModels>> BatchedModels::Create(
    BatchedModelsOptions options) {
  std::unique_ptr<BatchedModels> m(new BatchedModels());
  ASSIGN_OR_RETURN(std::unique_ptr<encoder::Encoder> embed,
                   encoder::Encoder::Create(options.embedder));
  ASSIGN_OR_RETURN(std::unique_ptr<encoder::Encoder> rerank,
                   encoder::Encoder::Create(options.reranker));
  if (embed->config().role != encoder::Role::kBiEncoder) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedder model ", options.embedder.model_dir,
                     " is not a bi-encoder (config.json role)"));
  }
  if (rerank->config().role != encoder::Role::kCrossEncoder) {
    return absl::InvalidArgumentError(
        absl::StrCat("reranker model ", options.reranker.model_dir,
                     " is not a cross-encoder (config.json role)"));
  }
  m->slots_[0] = rerank.get();
  m->models_.push_back(std::move(rerank));
  encoder::BatcherOptions b = options.batcher;
  BatchedModels* self = m.get();
  b.pad = [self](TaskKind, int slot, const std::vector<Encoding>& rows) {
    return self->slots_[slot].load()->tokenizer().Pad(rows);
  };
  b.run = [self](TaskKind, int slot, const encoder::TokenBatch& batch) {
    return self->slots_[slot].load()->Run(batch);
  };
  ASSIGN_OR_RETURN(m->batcher_, encoder::Batcher::Create(std::move(b)));
  m->scorer_ = std::make_unique<Scorer>(m->slots_[0].load(), m->batcher_.get());
  m->options_ = std::move(options);
  {
    std::lock_guard<std::mutex> l(m->load_mu_);
    ASSIGN_OR_RETURN(m->default_, m->AddEmbedderLocked(std::move(embed)));
  }
  if (m->options_.warm_up) {
    RETURN_IF_ERROR(
        m->scorer_
            ->Score("warm up", {"the reranker is warming up"}, CallContext{})
            .status());
  }
  return m;
}

absl::StatusOr<TextEmbedder*> BatchedModels::AddEmbedderLocked(
    std::unique_ptr<encoder::Encoder> model) {
  const int slot = static_cast<int>(models_.size());
  if (slot >= encoder::kMaxModels) {
    return absl::ResourceExhaustedError(
        absl::StrCat("model ", model->config().model_id, ": at most ",
                     encoder::kMaxModels - 1, " embedders per server"));
  }
  slots_[slot] = model.get();
  auto e = std::make_unique<Embedder>(model.get(), slot, batcher_.get());
  models_.push_back(std::move(model));
  if (options_.warm_up) {
    RETURN_IF_ERROR(e->Embed({"warm up the embedder"}, EmbedKind::kQuery, true,
                             CallContext{})
                        .status());
  }
  TextEmbedder* out = e.get();
  std::lock_guard<std::mutex> l(mu_);
  embedders_.push_back(std::move(e));
  return out;
}

absl::StatusOr<TextEmbedder*> BatchedModels::Get(const std::string& model_id) {
  auto find = [&]() -> TextEmbedder* {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& e : embedders_) {
      if (e->description().id == model_id) return e.get();
    }
    return nullptr;
  };
  if (TextEmbedder* e = find()) return e;
  if (!options_.find_model) {
    return absl::NotFoundError(
        absl::StrCat("model \"", model_id,
                     "\" is not loaded and this process loads no "
                     "other models"));
  }
  std::lock_guard<std::mutex> load(load_mu_);
  if (TextEmbedder* e = find()) return e;  // loaded while we waited
  ASSIGN_OR_RETURN(const std::string dir, options_.find_model(model_id));
  encoder::EncoderOptions o = options_.embedder;
  o.model_dir = dir;
  absl::StatusOr<std::unique_ptr<encoder::Encoder>> model =
      encoder::Encoder::Create(o);
  if (!model.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("model \"", model_id, "\" (", dir,
                     ") does not load: ", model.status().message()));
  }
  const encoder::ModelConfig& c = (*model)->config();
  if (c.role != encoder::Role::kBiEncoder || c.model_id != model_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model directory ", dir, " holds ", encoder::RoleName(c.role), " \"",
        c.model_id, "\", not the bi-encoder \"", model_id, "\""));
  }
  ASSIGN_OR_RETURN(TextEmbedder * e, AddEmbedderLocked(*std::move(model)));
  if (options_.on_load) options_.on_load(e->description());
  return e;
}

std::vector<const TextEmbedder*> BatchedModels::Loaded() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<const TextEmbedder*> out;
  for (const auto& e : embedders_) out.push_back(e.get());
  return out;
}

// The batcher goes first: its executor may be running a model.
BatchedModels::~BatchedModels() { batcher_.reset(); }

}  // namespace diffrank::pipeline
