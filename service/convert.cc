// convert.cc: field copies between proto and pipeline types; status codes.
#include "service/convert.h"

#include <string>

namespace diffrank::service {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbers.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

pipeline::SearchRequest FromProto(const v1::SearchRequest& r) {
  pipeline::SearchRequest o;
  o.collection = r.collection();
  o.query = r.query();
  o.top_k = r.top_k();
  switch (r.mode()) {
    case v1::SEARCH_MODE_DENSE:
      o.mode = pipeline::SearchMode::kDense;
      break;
    case v1::SEARCH_MODE_LEXICAL:
      o.mode = pipeline::SearchMode::kLexical;
      break;
    default:
      o.mode = pipeline::SearchMode::kHybrid;
  }
  o.candidates = r.candidates();
  o.rerank = r.has_rerank() ? r.rerank() : true;
  if (r.has_rerank_depth()) o.rerank_depth = r.rerank_depth();
  if (r.has_rerank_fusion_weight()) {
    o.rerank_fusion_weight = r.rerank_fusion_weight();
  }
  o.filter = r.filter();
  o.include_text = r.include_text();
  o.text_max_bytes = r.text_max_bytes();
  o.offset = r.offset();
  o.include_metadata = r.include_metadata();
  o.query_vector.assign(r.query_vector().begin(), r.query_vector().end());
  o.query_vector_model = r.query_vector_model();
  return o;
}

pipeline::RerankRequest FromProto(const v1::RerankRequest& r) {
  pipeline::RerankRequest o;
  o.query = r.query();
  o.documents.assign(r.documents().begin(), r.documents().end());
  o.top_n = r.top_n();
  o.return_documents = r.return_documents();
  o.fusion_weight = r.fusion_weight();
  return o;
}

pipeline::EmbedRequest FromProto(const v1::EmbedRequest& r) {
  pipeline::EmbedRequest o;
  o.texts.assign(r.texts().begin(), r.texts().end());
  o.kind = r.kind() == v1::EMBED_KIND_QUERY ? pipeline::EmbedKind::kQuery
                                            : pipeline::EmbedKind::kDocument;
  o.truncate = r.has_truncate() ? r.truncate() : true;
  o.model = r.model();
  return o;
}

pipeline::DeleteRequest FromProto(const v1::DeleteRequest& r) {
  pipeline::DeleteRequest o;
  o.collection = r.collection();
  o.ids.assign(r.ids().begin(), r.ids().end());
  o.filter = r.filter();
  return o;
}

index::Document FromProto(const v1::Document& d) {
  index::Document o;
  o.id = d.id();
  o.text = d.text();
  o.title = d.title();
  o.metadata = d.metadata();
  return o;
}

void ToProto(const pipeline::Timing& in, v1::Timing& out) {
  out.set_queue_us(absl::ToInt64Microseconds(in.queue));
  out.set_embed_us(absl::ToInt64Microseconds(in.embed));
  out.set_retrieve_us(absl::ToInt64Microseconds(in.retrieve));
  out.set_fetch_us(absl::ToInt64Microseconds(in.fetch));
  out.set_rerank_us(absl::ToInt64Microseconds(in.rerank));
  out.set_total_us(absl::ToInt64Microseconds(in.total));
}

void ToProto(const pipeline::SearchResult& in, v1::SearchResponse& out) {
  for (const pipeline::ScoredDocument& d : in.hits) {
    v1::Hit* h = out.add_hits();
    h->set_id(d.id);
    h->set_score(d.score);
    if (d.dense_score) h->set_dense_score(*d.dense_score);
    if (d.lexical_score) h->set_lexical_score(*d.lexical_score);
    if (d.rerank_score) h->set_rerank_score(*d.rerank_score);
    h->set_text(d.text);
    h->set_title(d.title);
    h->set_metadata(d.metadata);
  }
  out.set_reranked(in.reranked);
  for (const std::string& s : in.missing_shards) out.add_missing_shards(s);
  for (const std::string& w : in.warnings) out.add_warnings(w);
  ToProto(in.timing, *out.mutable_timing());
}

void ToProto(const pipeline::RerankResult& in, v1::RerankResponse& out) {
  for (const pipeline::RerankedDocument& d : in.results) {
    v1::RerankResult* r = out.add_results();
    r->set_index(d.index);
    r->set_relevance_score(d.relevance_score);
    r->set_logit(d.logit);
    r->set_document(d.document);
  }
  out.set_model(in.model);
  ToProto(in.timing, *out.mutable_timing());
}

void ToProto(const pipeline::EmbedOutput& in, v1::EmbedResponse& out) {
  const int rows = in.dimension > 0 ? in.values.size() / in.dimension : 0;
  for (int i = 0; i < rows; ++i) {
    v1::Embedding* e = out.add_embeddings();
    e->mutable_values()->Add(in.values.begin() + size_t(i) * in.dimension,
                             in.values.begin() + size_t(i + 1) * in.dimension);
    e->set_truncated(i < int(in.truncated.size()) && in.truncated[i]);
    if (i < int(in.tokens.size())) e->set_tokens(in.tokens[i]);
  }
  out.set_dimension(in.dimension);
}

void ToProto(const pipeline::CollectionSummary& in, v1::CollectionInfo& out) {
  out.set_name(in.name);
  out.set_index(in.stats.factory);
  out.set_active_index(in.stats.active_factory);
  out.set_documents(in.stats.documents);
}

void ToProto(const pipeline::ModelDescription& in, v1::ModelInfo& out) {
  out.set_id(in.id);
  out.set_role(in.role);
  out.set_architecture(in.architecture);
  out.set_device(in.device);
  out.set_kernels(in.kernels);
  out.set_max_length(in.max_length);
  out.set_dimension(in.dimension);
}

void ToProto(const pipeline::Limits& in, v1::Limits& out) {
  out.set_max_request_bytes(in.max_request_bytes);
  out.set_max_texts_per_request(in.max_texts_per_request);
  out.set_max_text_bytes(in.max_text_bytes);
  out.set_max_top_k(in.max_top_k);
  out.set_max_candidates(in.max_candidates);
  out.set_default_candidates(in.default_candidates);
  out.set_max_rerank_depth(in.max_rerank_depth);
  out.set_default_rerank_depth(in.default_rerank_depth);
  out.set_max_rerank_documents(in.max_rerank_documents);
  out.set_default_rerank_fusion_weight(in.default_rerank_fusion_weight);
  out.set_max_response_bytes(in.max_response_bytes);
}

void ToProto(const index::Document& in, v1::Document& out) {
  out.set_id(in.id);
  out.set_text(in.text);
  out.set_title(in.title);
  out.set_metadata(in.metadata);
}

}  // namespace diffrank::service
