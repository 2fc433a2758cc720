// types.h: the nouns of the query and ingest paths (plain C++, no gRPC).
//
// They mirror proto/diffrank/v1/diffrank.proto; service/ converts between
// the two in one file. Defaults and limits are documented in the proto.
#ifndef DIFFRANK_PIPELINE_TYPES_H_
#define DIFFRANK_PIPELINE_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "index/types.h"
#include "pipeline/models.h"

namespace diffrank::pipeline {

// Limits bound every request; Info reports them.
struct Limits {
  int64_t max_request_bytes = 32 << 20;  // one gRPC message
  int max_texts_per_request = 256;       // Embed texts, Upsert docs, Get ids
  int64_t max_text_bytes = 1 << 20;      // one text or query
  int max_top_k = 1000;
  int max_candidates = 10000;
  // Candidates from each retriever when a Search leaves `candidates` unset
  // (at least top_k and the rerank depth). Fixed, not a multiple of top_k, so
  // top_k changes only the length of an answer, never its order (issue 25).
  int default_candidates = 100;
  int max_rerank_depth = 200;
  // The deepest that meets Search p50 <= 100 ms over 100k documents on 2
  // CPU cores with the 12-layer default embedder (docs/benchmarks.md,
  // issue 24 part 5: depth 3 measured 102-107 ms, depth 2 81 ms).
  int default_rerank_depth = 2;
  int max_rerank_documents = 1000;
  // Weight of the first-stage order in Search's reranking stage
  // (rerank_fusion.h); fitted on validation data (docs/results.md).
  double default_rerank_fusion_weight = 0.5;
  // Bytes of text, title and metadata one Search or Get may return (gRPC
  // clients accept 4 MiB by default; raise theirs to use more).
  int64_t max_response_bytes = 16 << 20;
};

enum class SearchMode { kHybrid, kDense, kLexical };

struct SearchRequest {
  std::string collection;
  std::string query;
  int top_k = 0;   // 0 = default 10
  int offset = 0;  // hits skipped before the top_k returned (paging)
  SearchMode mode = SearchMode::kHybrid;
  int candidates = 0;  // 0 = default
  bool rerank = true;
  std::optional<int> rerank_depth;  // unset = Limits::default_rerank_depth
  // unset = Limits::default_rerank_fusion_weight
  std::optional<double> rerank_fusion_weight;
  std::string filter;  // JSON, "" = none
  bool include_text = false;
  bool include_metadata = false;
  int64_t text_max_bytes = 0;  // 0 = whole texts
  // Set: search with this embedding instead of embedding `query` (see
  // SearchRequest.query_vector in the .proto).
  std::vector<float> query_vector;
  // The model that made query_vector ("" = not said): FailedPrecondition
  // when it is not the collection's model.
  std::string query_vector_model;
};

// Timing of one request's stages.
struct Timing {
  absl::Duration queue, embed, retrieve, fetch, rerank, total;
};

struct ScoredDocument {
  std::string id;
  double score = 0;
  std::optional<double> dense_score, lexical_score, rerank_score;
  std::string text, title, metadata;
};

struct SearchResult {
  std::vector<ScoredDocument> hits;
  int reranked = 0;
  // Shards that did not answer (router with shard_failure "partial").
  std::vector<std::string> missing_shards;
  // Things the caller may have got wrong that did not fail the call, e.g. a
  // filter field no document has (a typo matches nothing, silently else).
  std::vector<std::string> warnings;
  Timing timing;
};

struct RerankRequest {
  std::string query;
  std::vector<std::string> documents;
  int top_n = 0;  // 0 = all
  bool return_documents = false;
  // > 0: documents are in first-stage order (best first) and the scores are
  // fused with it (rerank_fusion.h); 0 (default): the cross-encoder alone.
  double fusion_weight = 0;
};

struct RerankedDocument {
  int index = 0;
  double relevance_score = 0;  // calibrated sigmoid of the logit
  double logit = 0;            // the cross-encoder's raw output
  std::string document;
};

struct RerankResult {
  std::vector<RerankedDocument> results;
  std::string model;
  Timing timing;
};

struct EmbedRequest {
  std::vector<std::string> texts;
  EmbedKind kind = EmbedKind::kDocument;
  bool truncate = true;
  std::string model;  // "" = the default embedder
};

struct UpsertBatch {
  std::string collection;
  std::vector<index::Document> documents;  // vectors are computed here
};

struct DeleteRequest {
  std::string collection;
  std::vector<std::string> ids;
  std::string filter;
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_TYPES_H_
