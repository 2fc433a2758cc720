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
  return d;
}

class Embedder : public TextEmbedder {
 public:
  Embedder(const encoder::Encoder* model, encoder::Batcher* batcher)
      : model_(model), batcher_(batcher), desc_(Describe(*model)) {}

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
                         std::move(rows), ctx));
    out.dimension = r.width;
    out.values = std::move(r.values);
    out.queued = r.queued;
    return out;
  }
  const ModelDescription& description() const override { return desc_; }

 private:
  const encoder::Encoder* model_;
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
                     batcher_->Submit(TaskKind::kRerank, std::move(rows), ctx));
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
  ASSIGN_OR_RETURN(m->embed_model_, encoder::Encoder::Create(options.embedder));
  ASSIGN_OR_RETURN(m->rerank_model_,
                   encoder::Encoder::Create(options.reranker));
  if (m->embed_model_->config().role != encoder::Role::kBiEncoder) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedder model ", options.embedder.model_dir,
                     " is not a bi-encoder (config.json role)"));
  }
  if (m->rerank_model_->config().role != encoder::Role::kCrossEncoder) {
    return absl::InvalidArgumentError(
        absl::StrCat("reranker model ", options.reranker.model_dir,
                     " is not a cross-encoder (config.json role)"));
  }
  const encoder::Encoder* embed = m->embed_model_.get();
  const encoder::Encoder* rerank = m->rerank_model_.get();
  encoder::BatcherOptions b = std::move(options.batcher);
  b.pad = [embed, rerank](TaskKind kind, const std::vector<Encoding>& rows) {
    return (kind == TaskKind::kRerank ? rerank : embed)->tokenizer().Pad(rows);
  };
  b.run = [embed, rerank](TaskKind kind, const encoder::TokenBatch& batch) {
    return (kind == TaskKind::kRerank ? rerank : embed)->Run(batch);
  };
  ASSIGN_OR_RETURN(m->batcher_, encoder::Batcher::Create(std::move(b)));
  m->embedder_ = std::make_unique<Embedder>(embed, m->batcher_.get());
  m->scorer_ = std::make_unique<Scorer>(rerank, m->batcher_.get());
  if (options.warm_up) {
    CallContext ctx;
    RETURN_IF_ERROR(
        m->embedder_
            ->Embed({"warm up the embedder"}, EmbedKind::kQuery, true, ctx)
            .status());
    RETURN_IF_ERROR(
        m->scorer_->Score("warm up", {"the reranker is warming up"}, ctx)
            .status());
  }
  return m;
}

BatchedModels::~BatchedModels() { batcher_.reset(); }

}  // namespace diffrank::pipeline
