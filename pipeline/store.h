// store.h: where the collections a Pipeline serves live.
//
// Store is the one seam between the request pipeline and the collections:
// LocalStore (below) holds them in this process (Collections over SQLite +
// FAISS); router/remote_store.h spreads each collection over shard servers
// and reaches them over gRPC. Pipeline validates every request before it
// reaches a Store, so Store methods see well-formed arguments; a Store
// reports the collection's own errors (NotFound, filter fields, ...) and,
// remote, the shards' (Unavailable naming the shard).
// Thread-safety: implementations are thread-safe.
#ifndef DIFFRANK_PIPELINE_STORE_H_
#define DIFFRANK_PIPELINE_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/call_context.h"
#include "index/collection.h"
#include "pipeline/collections.h"
#include "pipeline/types.h"

namespace diffrank::pipeline {

// RetrieveRequest is the first stage of Search, validated.
struct RetrieveRequest {
  std::string collection;
  SearchMode mode = SearchMode::kHybrid;
  std::string query;                // text (lexical; may be "" in DENSE)
  std::vector<float> query_vector;  // unit length; set unless LEXICAL
  // The model that made query_vector: a store refuses (Aborted) when the
  // collection is now built by another model (re-embedded meanwhile); the
  // pipeline embeds again and retries.
  std::string query_model;
  const index::Filter* filter = nullptr;  // parsed from filter_json
  std::string filter_json;                // "" = none
  int top_k = 10;       // hits wanted (fused hits in hybrid mode)
  int candidates = 40;  // per retriever before fusion (hybrid)
};

struct RetrieveResult {
  std::vector<index::Hit> hits;  // best first, at most top_k
  // Shards that did not answer when the store allows partial answers.
  std::vector<std::string> missing_shards;
  // Filter fields no document of the collection has (their conditions
  // match nothing); the pipeline turns them into warnings.
  std::vector<std::string> unknown_filter_fields;
};

class Store {
 public:
  virtual ~Store() = default;

  // True when Upsert hands over document embeddings (local collections);
  // false when the store embeds documents itself (shard servers do). Search
  // always hands over the query's embedding (a router embeds it once).
  virtual bool wants_vectors() const = 0;

  virtual absl::StatusOr<RetrieveResult> Retrieve(
      const RetrieveRequest& req, const CallContext& ctx) const = 0;
  // Fetch returns the stored documents among `ids`, in the order asked,
  // skipping missing ones.
  virtual absl::StatusOr<std::vector<index::Document>> Fetch(
      const std::string& collection, const std::vector<std::string>& ids,
      const index::Collection::GetOptions& options,
      const CallContext& ctx) const = 0;
  // List returns up to `limit` documents whose ids come after `after` in
  // byte order, in that order (Get's paging).
  virtual absl::StatusOr<std::vector<index::Document>> List(
      const std::string& collection, const std::string& after, int limit,
      const index::Collection::GetOptions& options,
      const CallContext& ctx) const = 0;
  // Write commits documents (with vectors iff wants_vectors(), made by
  // `model`: Aborted when the collection is now built by another model,
  // and then `docs` are left untouched for the retry); durable on return.
  // Returns the number written.
  virtual absl::StatusOr<int64_t> Write(const std::string& collection,
                                        std::vector<index::Document>&& docs,
                                        const std::string& model,
                                        const CallContext& ctx) const = 0;
  // ModelOf returns the id of the embedding model that built a collection.
  virtual absl::StatusOr<std::string> ModelOf(const std::string& collection,
                                              const CallContext& ctx) const = 0;
  // Delete by ids, or by filter when `filter` is set.
  virtual absl::StatusOr<int64_t> Delete(const std::string& collection,
                                         const std::vector<std::string>& ids,
                                         const index::Filter* filter,
                                         const std::string& filter_json,
                                         const CallContext& ctx) const = 0;

  // Collection admin (Collections' semantics).
  // Create: `model` "" = the default embedder.
  virtual absl::StatusOr<CollectionSummary> Create(
      const std::string& name, const std::string& factory,
      const std::string& model, const CallContext& ctx) const = 0;
  virtual absl::Status Drop(const std::string& name,
                            const CallContext& ctx) const = 0;
  virtual absl::StatusOr<std::vector<CollectionSummary>> List(
      const CallContext& ctx) const = 0;
  virtual absl::StatusOr<CollectionSummary> Describe(
      const std::string& name, const CallContext& ctx) const = 0;
  virtual absl::StatusOr<CollectionSummary> Publish(
      const std::string& name, const std::string& version,
      const std::optional<CollectionCounters>& if_unchanged,
      const CallContext& ctx) const = 0;
};

// LocalStore serves the collections of this process's data directory.
class LocalStore final : public Store {
 public:
  explicit LocalStore(Collections* collections) : collections_(collections) {}

  bool wants_vectors() const override { return true; }
  absl::StatusOr<RetrieveResult> Retrieve(
      const RetrieveRequest& req, const CallContext& ctx) const override;
  absl::StatusOr<std::vector<index::Document>> Fetch(
      const std::string& collection, const std::vector<std::string>& ids,
      const index::Collection::GetOptions& options,
      const CallContext& ctx) const override;
  absl::StatusOr<std::vector<index::Document>> List(
      const std::string& collection, const std::string& after, int limit,
      const index::Collection::GetOptions& options,
      const CallContext& ctx) const override;
  absl::StatusOr<int64_t> Write(const std::string& collection,
                                std::vector<index::Document>&& docs,
                                const std::string& model,
                                const CallContext& ctx) const override;
  absl::StatusOr<std::string> ModelOf(const std::string& collection,
                                      const CallContext& ctx) const override;
  absl::StatusOr<int64_t> Delete(const std::string& collection,
                                 const std::vector<std::string>& ids,
                                 const index::Filter* filter,
                                 const std::string& filter_json,
                                 const CallContext& ctx) const override;
  absl::StatusOr<CollectionSummary> Create(
      const std::string& name, const std::string& factory,
      const std::string& model, const CallContext& ctx) const override;
  absl::Status Drop(const std::string& name,
                    const CallContext& ctx) const override;
  absl::StatusOr<std::vector<CollectionSummary>> List(
      const CallContext& ctx) const override;
  absl::StatusOr<CollectionSummary> Describe(
      const std::string& name, const CallContext& ctx) const override;
  absl::StatusOr<CollectionSummary> Publish(
      const std::string& name, const std::string& version,
      const std::optional<CollectionCounters>& if_unchanged,
      const CallContext& ctx) const override;

  Collections& collections() const { return *collections_; }

 private:
  Collections* collections_;  // not owned
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_STORE_H_
