// pipeline.cc: Search, Rerank, Embed, Upsert, Delete and Get, each read top
// to bottom: validate, then one call per stage.
#include "pipeline/pipeline.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "index/filter.h"
#include "index/vector_index.h"
#include "pipeline/rerank_fusion.h"

namespace diffrank::pipeline {
namespace {

absl::Status OutOfRange(absl::string_view field, int64_t value, int64_t lo,
                        int64_t hi) {
  return absl::InvalidArgumentError(absl::StrCat(field, " must be between ", lo,
                                                 " and ", hi, ", got ", value));
}

absl::Status Prefixed(absl::string_view field, const absl::Status& s) {
  if (absl::StartsWith(s.message(), field)) return s;
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

// ParseFilter returns the parsed filter, or nullopt for "".
absl::StatusOr<std::optional<index::Filter>> ParseFilter(
    const std::string& json) {
  if (json.empty()) return std::nullopt;
  absl::StatusOr<index::Filter> f = index::ParseFilterJson(json);
  if (!f.ok()) return Prefixed("filter", f.status());
  return std::optional<index::Filter>(*std::move(f));
}

// The reranker reads at most max_length (512) tokens of a passage; 64 KiB
// of text holds far more, so the cut never changes a score in practice.
constexpr size_t kRerankTextBytes = 64 << 10;

}  // namespace

std::string Pipeline::PassageText(const index::Document& doc) {
  return doc.title.empty() ? doc.text : absl::StrCat(doc.title, " ", doc.text);
}

absl::Status Pipeline::CheckText(absl::string_view text,
                                 absl::string_view field, bool required) const {
  if (static_cast<int64_t>(text.size()) > limits_.max_text_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", text.size(),
                                                   " bytes; the limit is ",
                                                   limits_.max_text_bytes));
  }
  if (size_t bad = Utf8ErrorOffset(text); bad != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid UTF-8 (byte ", bad, ")"));
  }
  if (required && absl::StripAsciiWhitespace(text).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is required (it is empty)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<TextEmbedder*> Pipeline::EmbedderOf(
    const std::string& collection, const std::string& model) const {
  absl::StatusOr<TextEmbedder*> e = embedders_->Get(model);
  if (!e.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection \"", collection, "\" is built by model \"", model,
        "\", which this server cannot use: ", e.status().message()));
  }
  return e;
}

absl::StatusOr<std::vector<float>> Pipeline::CheckQueryVector(
    const SearchRequest& req, const TextEmbedder& embedder,
    const std::string& model) const {
  if (!req.query_vector_model.empty() && req.query_vector_model != model) {
    return absl::FailedPreconditionError(
        absl::StrCat("query_vector_model \"", req.query_vector_model,
                     "\" is not the model of collection \"", req.collection,
                     "\" (\"", model, "\"); embed the query with that model"));
  }
  const int dim = embedder.description().dimension;
  if (static_cast<int>(req.query_vector.size()) != dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query_vector has ", req.query_vector.size(), " values; collection \"",
        req.collection, "\" is embedded by \"", model,
        "\", whose dimension is ", dim));
  }
  std::vector<float> unit = req.query_vector;
  RETURN_IF_ERROR(index::NormalizeToUnit(unit, "query_vector"));
  return unit;
}

absl::StatusOr<SearchResult> Pipeline::Search(const SearchRequest& req,
                                              const CallContext& ctx) const {
  const absl::Time start = absl::Now();
  SearchResult out;
  Timing& t = out.timing;

  // 1. Validate.
  RETURN_IF_ERROR(Collections::ValidateName(req.collection, "collection"));
  const int top_k = req.top_k == 0 ? 10 : req.top_k;
  if (top_k < 1 || top_k > limits_.max_top_k) {
    return OutOfRange("top_k", req.top_k, 1, limits_.max_top_k);
  }
  if (req.offset < 0 || req.offset > limits_.max_top_k - top_k) {
    return OutOfRange("offset", req.offset, 0, limits_.max_top_k - top_k);
  }
  const int end = req.offset + top_k;  // hits [offset, end) are returned
  const int depth =
      req.rerank ? req.rerank_depth.value_or(limits_.default_rerank_depth) : 0;
  if (depth < 0 || depth > limits_.max_rerank_depth) {
    return OutOfRange("rerank_depth", depth, 0, limits_.max_rerank_depth);
  }
  const bool given_vector = !req.query_vector.empty();
  // With a query_vector the text is read only by BM25 and the reranker.
  const bool text_needed =
      !given_vector || req.mode != SearchMode::kDense || depth > 0;
  if (given_vector && text_needed &&
      absl::StripAsciiWhitespace(req.query).empty()) {
    return absl::InvalidArgumentError(
        "query is required with a query_vector unless mode is DENSE and "
        "rerank is false (BM25 and the reranker read the text)");
  }
  RETURN_IF_ERROR(CheckText(req.query, "query", text_needed));
  if (given_vector && req.mode == SearchMode::kLexical) {
    return absl::InvalidArgumentError(
        "query_vector: lexical search uses no vector (mode LEXICAL); leave "
        "it empty or search DENSE or HYBRID");
  }
  const double fusion_weight =
      req.rerank_fusion_weight.value_or(limits_.default_rerank_fusion_weight);
  RETURN_IF_ERROR(ValidateFusionWeight(fusion_weight, "rerank_fusion_weight"));
  const int wanted = std::max(end, depth);  // fused hits needed
  const int candidates =
      req.candidates == 0
          ? std::min(std::max(limits_.default_candidates, wanted),
                     limits_.max_candidates)
          : req.candidates;
  if (candidates < end || candidates > limits_.max_candidates) {
    return OutOfRange("candidates", req.candidates, end,
                      limits_.max_candidates);
  }
  if (req.text_max_bytes < 0) {
    return absl::InvalidArgumentError(
        "text_max_bytes must be >= 0 (0 = whole texts)");
  }
  ASSIGN_OR_RETURN(std::optional<index::Filter> filter,
                   ParseFilter(req.filter));

  // 2. Embed the query with the collection's model (not for lexical search,
  // nor when the caller gave its vector), then 3. retrieve (and fuse). A
  // router embeds here too: its shards get the vector. When the collection
  // is re-embedded by another model between the two (a publish), the store
  // answers Aborted and both run again with the new model: a search never
  // fails because of a re-embed.
  absl::StatusOr<RetrieveResult> found;
  absl::Time t0;
  for (int attempt = 0;; ++attempt) {
    std::vector<float> query_vector;
    std::string model;
    TextEmbedder* embedder = nullptr;
    if (req.mode != SearchMode::kLexical) {
      ASSIGN_OR_RETURN(model, store_->ModelOf(req.collection, ctx));
      ASSIGN_OR_RETURN(embedder, EmbedderOf(req.collection, model));
      if (given_vector) {
        ASSIGN_OR_RETURN(query_vector, CheckQueryVector(req, *embedder, model));
      }
    }
    if (req.mode != SearchMode::kLexical && !given_vector) {
      RETURN_IF_ERROR(ctx.Check("embedding the query"));
      t0 = absl::Now();
      ASSIGN_OR_RETURN(EmbedOutput e,
                       embedder->Embed({req.query}, EmbedKind::kQuery,
                                       /*truncate=*/true, ctx));
      query_vector = std::move(e.values);
      t.queue += e.queued;
      t.embed += absl::Now() - t0;
    }
    RETURN_IF_ERROR(ctx.Check("retrieval"));
    t0 = absl::Now();
    RetrieveRequest retrieve;
    retrieve.collection = req.collection;
    retrieve.mode = req.mode;
    retrieve.query = req.query;
    retrieve.query_vector = std::move(query_vector);
    retrieve.query_model = model;
    retrieve.filter = filter ? &*filter : nullptr;
    retrieve.filter_json = req.filter;
    retrieve.top_k =
        req.mode == SearchMode::kHybrid ? wanted : std::max(wanted, candidates);
    retrieve.candidates = candidates;
    found = store_->Retrieve(retrieve, ctx);
    if (found.status().code() != absl::StatusCode::kAborted || attempt >= 2) {
      break;
    }
  }
  if (!found.ok()) {
    // The collection's InvalidArgument here is about the filter.
    if (found.status().code() == absl::StatusCode::kInvalidArgument) {
      return Prefixed("filter", found.status());
    }
    if (found.status().code() == absl::StatusCode::kAborted) {
      return absl::UnavailableError(found.status().message());  // retryable
    }
    return found.status();
  }
  std::vector<index::Hit> hits = std::move(found->hits);
  out.missing_shards = std::move(found->missing_shards);
  for (const std::string& f : found->unknown_filter_fields) {
    out.warnings.push_back(absl::StrCat(
        "filter: no document of collection \"", req.collection,
        "\" has metadata field \"", f, "\"; its conditions match nothing"));
  }
  if (static_cast<int>(hits.size()) > wanted) hits.resize(wanted);
  t.retrieve = absl::Now() - t0;

  // 4. Fetch the stored documents that are reranked (the returned ones are
  // fetched in step 6, once it is known which they are). Memory stays
  // bounded: the reranked passages are cut to what the cross-encoder can
  // read (kRerankTextBytes, far above max_length tokens).
  const int rerank_n = std::min<int>(depth, hits.size());
  const bool include = req.include_text || req.include_metadata;
  absl::flat_hash_map<std::string, index::Document> docs;  // to rerank
  if (rerank_n > 0) {
    RETURN_IF_ERROR(ctx.Check("fetching documents"));
    t0 = absl::Now();
    std::vector<std::string> ids;
    for (int i = 0; i < rerank_n; ++i) ids.push_back(hits[i].id);
    index::Collection::GetOptions o;
    o.max_text_bytes = kRerankTextBytes;
    ASSIGN_OR_RETURN(std::vector<index::Document> got,
                     store_->Fetch(req.collection, ids, o, ctx));
    for (index::Document& d : got) docs[d.id] = std::move(d);
    t.fetch = absl::Now() - t0;
  }

  // 5. Rerank the best `rerank_n` fused hits with the cross-encoder.
  out.hits.reserve(hits.size());
  for (const index::Hit& h : hits) {
    ScoredDocument d;
    d.id = h.id;
    d.score = h.score;
    d.dense_score = h.dense_score;
    d.lexical_score = h.lexical_score;
    out.hits.push_back(std::move(d));
  }
  if (rerank_n > 0) {
    RETURN_IF_ERROR(ctx.Check("reranking"));
    t0 = absl::Now();
    std::vector<std::string> passages;
    std::vector<int> positions;  // hits deleted since retrieval are skipped
    for (int i = 0; i < rerank_n; ++i) {
      auto it = docs.find(out.hits[i].id);
      if (it == docs.end()) continue;
      passages.push_back(PassageText(it->second));
      positions.push_back(i);
    }
    ASSIGN_OR_RETURN(ScoreOutput s, scorer_->Score(req.query, passages, ctx));
    // The cross-encoder's scores fused with the first-stage order.
    const std::vector<double> fused =
        FuseWithFirstStage(s.logits, fusion_weight);
    for (size_t j = 0; j < positions.size(); ++j) {
      ScoredDocument& d = out.hits[positions[j]];
      d.rerank_score = s.logits[j];
      d.score = fused[j];
    }
    // Reranked hits first by fused score; the rest keep the fused order.
    std::stable_sort(out.hits.begin(), out.hits.begin() + rerank_n,
                     [](const ScoredDocument& a, const ScoredDocument& b) {
                       const bool ra = a.rerank_score.has_value();
                       const bool rb = b.rerank_score.has_value();
                       if (ra != rb) return ra;
                       return ra && a.score > b.score;
                     });
    out.reranked = static_cast<int>(positions.size());
    t.queue += s.queued;
    t.rerank = absl::Now() - t0;
  }

  // 6. Cut to [offset, offset + top_k) and respond (with stored text and
  // metadata when asked, at most limits.max_response_bytes in all).
  out.hits.erase(
      out.hits.begin(),
      out.hits.begin() + std::min<size_t>(req.offset, out.hits.size()));
  if (static_cast<int>(out.hits.size()) > top_k) out.hits.resize(top_k);
  if (include && !out.hits.empty()) {
    RETURN_IF_ERROR(ctx.Check("fetching documents"));
    t0 = absl::Now();
    std::vector<std::string> ids;
    for (const ScoredDocument& d : out.hits) ids.push_back(d.id);
    index::Collection::GetOptions r;
    r.with_text = req.include_text;
    r.max_text_bytes = size_t(req.text_max_bytes);
    r.max_total_bytes = size_t(limits_.max_response_bytes);
    r.budget_name = "limits.max_response_bytes";
    ASSIGN_OR_RETURN(std::vector<index::Document> ret,
                     store_->Fetch(req.collection, ids, r, ctx));
    absl::flat_hash_map<std::string, index::Document> shown;
    for (index::Document& d : ret) shown[d.id] = std::move(d);
    for (ScoredDocument& d : out.hits) {
      auto it = shown.find(d.id);
      if (it == shown.end()) continue;
      if (req.include_text) {
        d.text = it->second.text;
        d.title = it->second.title;
      }
      if (req.include_metadata) d.metadata = it->second.metadata;
    }
    t.fetch += absl::Now() - t0;
  }
  t.total = absl::Now() - start;
  return out;
}

absl::StatusOr<RerankResult> Pipeline::Rerank(const RerankRequest& req,
                                              const CallContext& ctx) const {
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(CheckText(req.query, "query", /*required=*/true));
  const int n = static_cast<int>(req.documents.size());
  if (n < 1 || n > limits_.max_rerank_documents) {
    return OutOfRange("documents (count)", n, 1, limits_.max_rerank_documents);
  }
  for (int i = 0; i < n; ++i) {
    RETURN_IF_ERROR(
        CheckText(req.documents[i], absl::StrCat("documents[", i, "]"), true));
  }
  if (req.top_n < 0) {
    return OutOfRange("top_n", req.top_n, 0, limits_.max_rerank_documents);
  }
  RETURN_IF_ERROR(ValidateFusionWeight(req.fusion_weight, "fusion_weight"));
  RETURN_IF_ERROR(ctx.Check("reranking"));
  ASSIGN_OR_RETURN(ScoreOutput s,
                   scorer_->Score(req.query, req.documents, ctx));
  const std::vector<double> scores =
      FuseWithFirstStage(s.logits, req.fusion_weight);
  RerankResult out;
  const ModelDescription& m = scorer_->description();
  out.model = m.id;
  for (int i = 0; i < n; ++i) {
    RerankedDocument d;
    d.index = i;
    d.logit = s.logits[i];
    d.relevance_score =
        1.0 / (1.0 + std::exp(-(m.calibration_scale * s.logits[i] +
                                m.calibration_bias)));
    out.results.push_back(std::move(d));
  }
  // By probability (the logit's order), or by the fused score.
  std::stable_sort(out.results.begin(), out.results.end(),
                   [&](const RerankedDocument& a, const RerankedDocument& b) {
                     return scores[a.index] > scores[b.index];
                   });
  if (req.top_n > 0 && req.top_n < n) out.results.resize(req.top_n);
  if (req.return_documents) {
    for (RerankedDocument& d : out.results) d.document = req.documents[d.index];
  }
  out.timing.queue = s.queued;
  out.timing.rerank = out.timing.total = absl::Now() - start;
  return out;
}

absl::StatusOr<EmbedOutput> Pipeline::Embed(const EmbedRequest& req,
                                            const CallContext& ctx) const {
  const int n = static_cast<int>(req.texts.size());
  if (n < 1 || n > limits_.max_texts_per_request) {
    return OutOfRange("texts (count)", n, 1, limits_.max_texts_per_request);
  }
  for (int i = 0; i < n; ++i) {
    // Validating 256 texts of 1 MiB takes time too: abandoned calls stop.
    if (i % 16 == 0) RETURN_IF_ERROR(ctx.Check("validating texts"));
    RETURN_IF_ERROR(
        CheckText(req.texts[i], absl::StrCat("texts[", i, "]"), true));
  }
  TextEmbedder* embedder = embedders_->Default();
  if (!req.model.empty()) {
    RETURN_IF_ERROR(CheckText(req.model, "model", true));
    absl::StatusOr<TextEmbedder*> e = embedders_->Get(req.model);
    if (!e.ok()) return Prefixed("model", e.status());
    embedder = *e;
  }
  RETURN_IF_ERROR(ctx.Check("embedding"));
  ASSIGN_OR_RETURN(EmbedOutput out,
                   embedder->Embed(req.texts, req.kind, req.truncate, ctx));
  out.model = embedder->description().id;
  return out;
}

absl::StatusOr<int64_t> Pipeline::Upsert(UpsertBatch batch,
                                         const CallContext& ctx) const {
  // 1. Validate the whole batch before any work.
  RETURN_IF_ERROR(Collections::ValidateName(batch.collection, "collection"));
  const int n = static_cast<int>(batch.documents.size());
  if (n < 1 || n > limits_.max_texts_per_request) {
    return OutOfRange("documents (count)", n, 1, limits_.max_texts_per_request);
  }
  absl::flat_hash_map<absl::string_view, int> seen;
  for (int i = 0; i < n; ++i) {
    const index::Document& d = batch.documents[i];
    const std::string f = absl::StrCat("documents[", i, "]");
    if (d.id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(f, ".id is required"));
    }
    if (d.id.size() > 512) {
      return absl::InvalidArgumentError(
          absl::StrCat(f, ".id is ", d.id.size(), " bytes; the limit is 512"));
    }
    RETURN_IF_ERROR(CheckText(d.id, absl::StrCat(f, ".id"), true));
    auto [it, inserted] = seen.emplace(d.id, i);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          f, ".id \"", d.id, "\" duplicates documents[", it->second, "].id"));
    }
    RETURN_IF_ERROR(CheckText(d.text, absl::StrCat(f, ".text"), true));
    RETURN_IF_ERROR(CheckText(d.title, absl::StrCat(f, ".title"), false));
    RETURN_IF_ERROR(CheckText(d.metadata, absl::StrCat(f, ".metadata"), false));
  }
  for (index::Document& d : batch.documents) {
    if (d.metadata.empty()) d.metadata = "{}";
  }
  // A store of shard servers embeds on the shards.
  if (!store_->wants_vectors()) {
    return store_->Write(batch.collection, std::move(batch.documents), "", ctx);
  }

  // 2. Embed.
  std::vector<std::string> texts;
  texts.reserve(n);
  for (const index::Document& d : batch.documents) {
    texts.push_back(PassageText(d));
  }
  // With the collection's model. The store refuses the batch (Aborted,
  // nothing written) if the collection is re-embedded by another model
  // meanwhile; then it is embedded again with the new one.
  absl::StatusOr<int64_t> written;
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(const std::string model,
                     store_->ModelOf(batch.collection, ctx));
    ASSIGN_OR_RETURN(TextEmbedder * embedder,
                     EmbedderOf(batch.collection, model));
    RETURN_IF_ERROR(ctx.Check("embedding documents"));
    ASSIGN_OR_RETURN(EmbedOutput e, embedder->Embed(texts, EmbedKind::kDocument,
                                                    /*truncate=*/true, ctx));
    for (int i = 0; i < n; ++i) {
      index::Document& d = batch.documents[i];
      d.vector.assign(e.values.begin() + size_t(i) * e.dimension,
                      e.values.begin() + size_t(i + 1) * e.dimension);
    }
    // 3. Commit (durable on return). A deadline that passes now is ignored:
    // the work is done and committing it loses nothing.
    // Aborted leaves the documents untouched (Store::Write): no copy.
    written =
        store_->Write(batch.collection, std::move(batch.documents), model, ctx);
    if (written.status().code() != absl::StatusCode::kAborted || attempt >= 2) {
      break;
    }
  }
  if (written.status().code() == absl::StatusCode::kAborted) {
    return absl::UnavailableError(written.status().message());  // retryable
  }
  return written;
}

const CallContext& Pipeline::Unbounded() {
  static const CallContext* ctx = new CallContext();
  return *ctx;
}

absl::StatusOr<int64_t> Pipeline::Delete(const DeleteRequest& req,
                                         const CallContext& ctx) const {
  RETURN_IF_ERROR(Collections::ValidateName(req.collection, "collection"));
  if (req.ids.empty() == req.filter.empty()) {
    return absl::InvalidArgumentError(
        "exactly one of ids and filter must be set");
  }
  for (size_t i = 0; i < req.ids.size(); ++i) {
    RETURN_IF_ERROR(CheckText(req.ids[i], absl::StrCat("ids[", i, "]"), true));
  }
  ASSIGN_OR_RETURN(std::optional<index::Filter> filter,
                   ParseFilter(req.filter));
  absl::StatusOr<int64_t> n = store_->Delete(
      req.collection, req.ids, filter ? &*filter : nullptr, req.filter, ctx);
  if (filter && n.status().code() == absl::StatusCode::kInvalidArgument) {
    return Prefixed("filter", n.status());
  }
  return n;
}

absl::StatusOr<std::vector<index::Document>> Pipeline::Get(
    const std::string& collection, const std::vector<std::string>& ids,
    int64_t text_max_bytes, const CallContext& ctx) const {
  if (text_max_bytes < 0) {
    return absl::InvalidArgumentError(
        "text_max_bytes must be >= 0 (0 = whole texts)");
  }
  RETURN_IF_ERROR(Collections::ValidateName(collection, "collection"));
  const int n = static_cast<int>(ids.size());
  if (n < 1 || n > limits_.max_texts_per_request) {
    return OutOfRange("ids (count)", n, 1, limits_.max_texts_per_request);
  }
  for (int i = 0; i < n; ++i) {
    RETURN_IF_ERROR(CheckText(ids[i], absl::StrCat("ids[", i, "]"), true));
  }
  index::Collection::GetOptions o;
  o.max_text_bytes = size_t(text_max_bytes);
  o.max_total_bytes = size_t(limits_.max_response_bytes);
  o.budget_name = "limits.max_response_bytes";
  return store_->Fetch(collection, ids, o, ctx);
}

absl::StatusOr<Pipeline::Page> Pipeline::List(const std::string& collection,
                                              const std::string& cursor,
                                              int limit, int64_t text_max_bytes,
                                              const CallContext& ctx) const {
  if (text_max_bytes < 0) {
    return absl::InvalidArgumentError(
        "text_max_bytes must be >= 0 (0 = whole texts)");
  }
  RETURN_IF_ERROR(Collections::ValidateName(collection, "collection"));
  if (limit == 0) limit = std::min(100, limits_.max_texts_per_request);
  if (limit < 1 || limit > limits_.max_texts_per_request) {
    return OutOfRange("limit", limit, 1, limits_.max_texts_per_request);
  }
  RETURN_IF_ERROR(CheckText(cursor, "cursor", /*required=*/false));
  index::Collection::GetOptions o;
  o.max_text_bytes = size_t(text_max_bytes);
  o.max_total_bytes = size_t(limits_.max_response_bytes);
  o.budget_name = "limits.max_response_bytes";
  ASSIGN_OR_RETURN(std::vector<index::Document> docs,
                   store_->List(collection, cursor, limit, o, ctx));
  Page page;
  // A full page may be followed by more (the next one may come back empty).
  if (static_cast<int>(docs.size()) == limit) page.next_cursor = docs.back().id;
  page.documents = std::move(docs);
  return page;
}

}  // namespace diffrank::pipeline
