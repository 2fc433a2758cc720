// pipeline.h: the query path and the ingest path over models and collections.
//
// Plain C++ (no gRPC, no torch, no FAISS types): what the server runs for
// each RPC and what the offline bulk indexer can run. Search reads top to
// bottom in pipeline.cc: validate, embed, retrieve (and fuse), fetch,
// rerank, cut, respond. Every user error is InvalidArgument naming the
// field; NotFound for an unknown collection; the CallContext's deadline and
// cancellation are checked before each expensive stage.
// Thread-safety: thread-safe (models and collections are).
#ifndef DIFFRANK_PIPELINE_PIPELINE_H_
#define DIFFRANK_PIPELINE_PIPELINE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/call_context.h"
#include "pipeline/collections.h"
#include "pipeline/models.h"
#include "pipeline/store.h"
#include "pipeline/types.h"

namespace diffrank::pipeline {

class Pipeline {
 public:
  // All borrowed; they outlive the pipeline. Serves the collections of
  // this process (a LocalStore over `collections`), each with the embedder
  // that built it (`embedders`).
  Pipeline(Embedders* embedders, PairScorer* scorer, Collections* collections,
           Limits limits)
      : embedders_(embedders),
        scorer_(scorer),
        local_(std::make_unique<LocalStore>(collections)),
        store_(local_.get()),
        limits_(limits) {}
  // Serves the collections of any Store (the router's shards).
  Pipeline(Embedders* embedders, PairScorer* scorer, const Store* store,
           Limits limits)
      : embedders_(embedders),
        scorer_(scorer),
        store_(store),
        limits_(limits) {}
  // One embedder only (tests and tools).
  Pipeline(TextEmbedder* embedder, PairScorer* scorer, Collections* collections,
           Limits limits)
      : owned_(std::make_unique<FixedEmbedders>(
            std::vector<TextEmbedder*>{embedder})),
        embedders_(owned_.get()),
        scorer_(scorer),
        local_(std::make_unique<LocalStore>(collections)),
        store_(local_.get()),
        limits_(limits) {}

  absl::StatusOr<SearchResult> Search(const SearchRequest& req,
                                      const CallContext& ctx) const;
  absl::StatusOr<RerankResult> Rerank(const RerankRequest& req,
                                      const CallContext& ctx) const;
  absl::StatusOr<EmbedOutput> Embed(const EmbedRequest& req,
                                    const CallContext& ctx) const;
  // Upsert validates the whole batch, embeds it, then commits it atomically
  // (durable when it returns OK). Returns the number of documents written.
  absl::StatusOr<int64_t> Upsert(UpsertBatch batch,
                                 const CallContext& ctx) const;
  absl::StatusOr<int64_t> Delete(const DeleteRequest& req,
                                 const CallContext& ctx = Unbounded()) const;
  // Get returns stored documents, texts cut to `text_max_bytes` (0 =
  // whole), at most limits.max_response_bytes in all (ResourceExhausted).
  absl::StatusOr<std::vector<index::Document>> Get(
      const std::string& collection, const std::vector<std::string>& ids,
      int64_t text_max_bytes = 0, const CallContext& ctx = Unbounded()) const;
  // List pages through a collection in id order: up to `limit` documents
  // (0 = 100; 1 .. limits.max_texts_per_request) after `cursor`, and the
  // cursor of the next page ("" when this page was not full; a full last
  // page is followed by an empty one).
  struct Page {
    std::vector<index::Document> documents;
    std::string next_cursor;
  };
  absl::StatusOr<Page> List(const std::string& collection,
                            const std::string& cursor, int limit,
                            int64_t text_max_bytes,
                            const CallContext& ctx = Unbounded()) const;
  // A CallContext without deadline (tools and tests).
  static const CallContext& Unbounded();

  const Limits& limits() const { return limits_; }
  // The default embedder (new collections, Embed without a model).
  const TextEmbedder& embedder() const { return *embedders_->Default(); }
  Embedders& embedders() const { return *embedders_; }
  const PairScorer& scorer() const { return *scorer_; }
  const Store& store() const { return *store_; }

  // The text the models see for a stored document: "title text".
  static std::string PassageText(const index::Document& doc);

 private:
  absl::Status CheckText(absl::string_view text, absl::string_view field,
                         bool required) const;
  // CheckQueryVector validates a caller's query_vector against the
  // collection's embedder and returns it at unit length.
  absl::StatusOr<std::vector<float>> CheckQueryVector(
      const SearchRequest& req, const TextEmbedder& embedder,
      const std::string& model) const;
  // EmbedderOf: the embedder of a collection built by `model`.
  absl::StatusOr<TextEmbedder*> EmbedderOf(const std::string& collection,
                                           const std::string& model) const;

  std::unique_ptr<FixedEmbedders> owned_;  // one-embedder constructor
  Embedders* embedders_;
  PairScorer* scorer_;
  std::unique_ptr<LocalStore> local_;  // when serving local collections
  const Store* store_;
  const Limits limits_;
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_PIPELINE_H_
