// collection_search.cc: the read path of a collection (get, dense, lexical,
// hybrid search, filters).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <optional>
#include <queue>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "index/collection.h"
#include "index/collection_internal.h"
#include "index/sqlite_db.h"
#include "index/vector_index.h"

namespace diffrank::index {
namespace internal {

int BindParams(Stmt& s, const std::vector<FilterValue>& params, int first) {
  int i = first;
  for (const FilterValue& v : params) {
    if (const auto* str = std::get_if<std::string>(&v)) {
      s.Bind(i++, absl::string_view(*str));
    } else if (const auto* d = std::get_if<double>(&v)) {
      s.Bind(i++, *d);
    } else {
      s.Bind(i++, static_cast<int64_t>(std::get<bool>(v) ? 1 : 0));
    }
  }
  return i;
}

bool IsStopword(absl::string_view word) {
  // Lucene's English stop set (EnglishAnalyzer): their posting lists are a
  // large part of any collection, so OR-ing them makes BM25 score most
  // documents (140 ms vs ~25 ms per question at 100k documents, measured in
  // docs/benchmarks.md) while their IDF adds almost nothing to the ranking.
  static const absl::flat_hash_set<std::string>* const kStop =
      new absl::flat_hash_set<std::string>{
          "a",    "an",  "and",   "are",  "as",    "at",    "be",
          "but",  "by",  "for",   "if",   "in",    "into",  "is",
          "it",   "no",  "not",   "of",   "on",    "or",    "such",
          "that", "the", "their", "then", "there", "these", "they",
          "this", "to",  "was",   "will", "with"};
  return kStop->contains(absl::AsciiStrToLower(word));
}

std::string FtsMatchExpression(absl::string_view text, bool drop_stopwords) {
  // ASCII punctuation separates terms, as FTS5's unicode61 tokenizer does for
  // the documents ("e-mail" -> e, mail); non-ASCII bytes are kept and left to
  // the tokenizer inside the quotes.
  std::string cleaned(text);
  for (char& c : cleaned) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !absl::ascii_isalnum(u)) c = ' ';
  }
  std::vector<std::string> terms, stopwords;
  for (absl::string_view word :
       absl::StrSplit(cleaned, ' ', absl::SkipEmpty())) {
    // A double-quoted FTS5 string is a literal; no quote can remain here,
    // so no user text is ever FTS5 syntax.
    (drop_stopwords && IsStopword(word) ? stopwords : terms)
        .push_back(absl::StrCat("\"", word, "\""));
    if (terms.size() >= 256) break;  // bound the query size
  }
  // A query of stopwords only ("to be or not to be") keeps them.
  if (terms.empty()) terms = std::move(stopwords);
  if (terms.size() > 256) terms.resize(256);
  return absl::StrJoin(terms, " OR ");
}

}  // namespace internal

namespace {

constexpr int kMaxTopK = 10000;
// Filtered dense searches whose allowed set is at most this large are
// answered exactly from the stored vectors instead of by the ANN index.
constexpr int64_t kExactFilterLimit = 4096;

absl::Status CheckTopK(int top_k) {
  if (top_k < 1 || top_k > kMaxTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in [1, ", kMaxTopK, "], got ", top_k));
  }
  return absl::OkStatus();
}

absl::Status NormalizeQuery(std::vector<float>& q, int dim) {
  if (static_cast<int>(q.size()) != dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query vector has dimension ", q.size(), ", the collection has ", dim));
  }
  return NormalizeToUnit(q, "query vector");
}

}  // namespace

absl::StatusOr<std::vector<Document>> Collection::Get(
    const std::vector<std::string>& ids, bool with_vectors) const {
  GetOptions o;
  o.with_vectors = with_vectors;
  return Get(ids, o);
}

namespace {

// AppendRow adds the current row of a "SELECT id, title, text, metadata,
// vector" statement to `out`, keeping the GetOptions byte budget in `total`.
absl::Status AppendRow(Stmt& s, const Collection::GetOptions& options,
                       size_t& total, std::vector<Document>& out) {
  Document d;
  d.id = s.Text(0);
  if (options.with_text) {
    d.title = s.Text(1);
    d.text = s.Text(2);
  }
  d.metadata = s.Text(3);
  if (options.max_text_bytes > 0 && d.text.size() > options.max_text_bytes) {
    d.text.resize(Utf8Prefix(d.text, options.max_text_bytes));
  }
  total += d.text.size() + d.title.size() + d.metadata.size();
  if (options.max_total_bytes > 0 && total > options.max_total_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the documents asked for hold more than ", options.budget_name, " (",
        options.max_total_bytes,
        " bytes of text, title and metadata): ask for fewer, cut the "
        "texts (text_max_bytes) or leave include_text off"));
  }
  if (options.with_vectors) {
    const auto* v = static_cast<const float*>(s.Blob(4));
    d.vector.assign(v, v + s.Bytes(4) / sizeof(float));
  }
  out.push_back(std::move(d));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<Document>> Collection::Get(
    const std::vector<std::string>& ids, const GetOptions& options) const {
  size_t total = 0;
  ASSIGN_OR_RETURN(auto db, Reader());
  ASSIGN_OR_RETURN(
      Stmt s,
      db->Prepare(
          "SELECT id, title, text, metadata, vector FROM docs WHERE id = ?"));
  std::vector<Document> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    s.Bind(1, id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) RETURN_IF_ERROR(AppendRow(s, options, total, out));
    RETURN_IF_ERROR(s.Reset());
  }
  return out;
}

absl::StatusOr<std::vector<Document>> Collection::List(
    const std::string& after, int limit, const GetOptions& options) const {
  ASSIGN_OR_RETURN(auto db, Reader());
  // The UNIQUE index on id gives this order (BINARY collation: bytes).
  ASSIGN_OR_RETURN(Stmt s, db->Prepare("SELECT id, title, text, metadata, "
                                       "vector FROM docs WHERE id > ? "
                                       "ORDER BY id LIMIT ?"));
  s.Bind(1, after);
  s.Bind(2, static_cast<int64_t>(std::max(0, limit)));
  size_t total = 0;
  std::vector<Document> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    RETURN_IF_ERROR(AppendRow(s, options, total, out));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> Collection::FilterLabels(
    const Filter& filter) const {
  ASSIGN_OR_RETURN(SqlPredicate pred, CompileFilter(filter, KnownFields()));
  ASSIGN_OR_RETURN(auto db, Reader());
  ASSIGN_OR_RETURN(
      Stmt s, db->Prepare(absl::StrCat("SELECT label FROM docs AS d WHERE ",
                                       pred.sql)));
  internal::BindParams(s, pred.params, 1);
  std::vector<int64_t> labels;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    labels.push_back(s.Int(0));
  }
  return labels;
}

std::vector<Hit> Collection::LabelsToHitsLocked(
    const std::vector<std::pair<int64_t, float>>& found, int limit) const {
  std::vector<Hit> hits;
  for (const auto& [label, score] : found) {
    if (static_cast<int>(hits.size()) >= limit) break;
    if (label < 0 || label >= static_cast<int64_t>(ids_by_label_.size()) ||
        ids_by_label_[label].empty()) {
      continue;  // deleted since the allow-list was built
    }
    Hit h;
    h.id = ids_by_label_[label];
    h.score = score;
    h.dense_score = score;
    h.dense_rank = static_cast<int>(hits.size()) + 1;
    hits.push_back(std::move(h));
  }
  return hits;
}

absl::StatusOr<std::vector<Hit>> Collection::SearchDense(
    const std::vector<float>& query, const SearchOptions& options) const {
  RETURN_IF_ERROR(CheckReadable());
  RETURN_IF_ERROR(CheckTopK(options.top_k));
  std::vector<float> q = query;
  RETURN_IF_ERROR(NormalizeQuery(q, dimension_));
  std::vector<std::pair<int64_t, float>> found;
  if (options.filter != nullptr) {
    ASSIGN_OR_RETURN(std::vector<int64_t> labels,
                     FilterLabels(*options.filter));
    if (static_cast<int64_t>(labels.size()) <= kExactFilterLimit) {
      // Exact: score the few allowed documents from their stored vectors.
      ASSIGN_OR_RETURN(auto db, Reader());
      ASSIGN_OR_RETURN(Stmt s,
                       db->Prepare("SELECT vector FROM docs WHERE label = ?"));
      using Entry = std::pair<float, int64_t>;  // min-heap of the best top_k
      std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> best;
      for (int64_t label : labels) {
        s.Bind(1, label);
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (row && s.Bytes(0) == dimension_ * static_cast<int>(sizeof(float))) {
          const auto* v = static_cast<const float*>(s.Blob(0));
          float ip = 0;
          for (int i = 0; i < dimension_; ++i) ip += v[i] * q[i];
          best.emplace(ip, label);
          // A few spares: a document deleted meanwhile is skipped below.
          if (static_cast<int>(best.size()) > options.top_k + 8) best.pop();
        }
        RETURN_IF_ERROR(s.Reset());
      }
      while (!best.empty()) {
        found.emplace_back(best.top().second, best.top().first);
        best.pop();
      }
      std::reverse(found.begin(), found.end());
      std::shared_lock<std::shared_mutex> l(index_mu_);
      return LabelsToHitsLocked(found, options.top_k);
    }
    Bitmap allow;
    {
      std::shared_lock<std::shared_mutex> l(index_mu_);
      allow.assign(live_.size(), 0);
      for (int64_t label : labels) {
        if (static_cast<size_t>(label / 8) < allow.size()) {
          allow[label / 8] |= static_cast<uint8_t>(1u << (label % 8));
        }
      }
      for (size_t i = 0; i < allow.size(); ++i) allow[i] &= live_[i];
      ASSIGN_OR_RETURN(found, index_->Search(q.data(), options.top_k,
                                             options.knobs, &allow));
      return LabelsToHitsLocked(found, options.top_k);
    }
  }
  {
    std::shared_lock<std::shared_mutex> l(index_mu_);
    const bool all_live = live_count_ == index_->size();
    ASSIGN_OR_RETURN(found,
                     index_->Search(q.data(), options.top_k, options.knobs,
                                    all_live ? nullptr : &live_));
    // Mapped under the same lock: the result matches the live set it was
    // searched with.
    return LabelsToHitsLocked(found, options.top_k);
  }
}

absl::StatusOr<std::vector<Hit>> Collection::SearchLexical(
    absl::string_view query, const SearchOptions& options) const {
  RETURN_IF_ERROR(CheckTopK(options.top_k));
  if (Utf8ErrorOffset(query) != absl::string_view::npos) {
    return absl::InvalidArgumentError("query text is not valid UTF-8");
  }
  const std::string match =
      internal::FtsMatchExpression(query, options.drop_stopwords);
  std::vector<Hit> hits;
  if (match.empty()) return hits;
  SqlPredicate pred;
  if (options.filter != nullptr) {
    ASSIGN_OR_RETURN(pred, CompileFilter(*options.filter, KnownFields()));
  }
  ASSIGN_OR_RETURN(auto db, Reader());
  const std::string sql = absl::StrCat(
      "SELECT d.id, bm25(docs_fts) AS s FROM docs_fts JOIN docs AS d"
      " ON d.label = docs_fts.rowid WHERE docs_fts MATCH ?",
      pred.sql.empty() ? "" : absl::StrCat(" AND ", pred.sql),
      " ORDER BY s LIMIT ?");
  // Unfiltered queries share one cached statement; filtered ones (whose SQL
  // varies with the filter's shape) are prepared per call.
  std::optional<Stmt> fresh;
  std::optional<StmtLease> cached;
  Stmt* s = nullptr;
  if (pred.sql.empty()) {
    ASSIGN_OR_RETURN(StmtLease lease, db->Cached(sql));
    cached.emplace(std::move(lease));
    s = &**cached;
  } else {
    ASSIGN_OR_RETURN(Stmt st, db->Prepare(sql));
    fresh.emplace(std::move(st));
    s = &*fresh;
  }
  s->Bind(1, match);
  const int next = internal::BindParams(*s, pred.params, 2);
  s->Bind(next, static_cast<int64_t>(options.top_k));
  while (true) {
    ASSIGN_OR_RETURN(bool row, s->Step());
    if (!row) break;
    Hit h;
    h.id = s->Text(0);
    h.score = -s->Double(1);  // FTS5 bm25() is negated: lower is better
    h.lexical_score = h.score;
    h.lexical_rank = static_cast<int>(hits.size()) + 1;
    hits.push_back(std::move(h));
  }
  return hits;
}

absl::StatusOr<std::vector<Hit>> Collection::SearchHybrid(
    const std::vector<float>& query_vector, absl::string_view query_text,
    const SearchOptions& options, const FusionOptions& fusion,
    int candidates) const {
  RETURN_IF_ERROR(CheckTopK(options.top_k));
  SearchOptions each = options;
  each.top_k =
      std::min(kMaxTopK, candidates > 0 ? candidates : 4 * options.top_k);
  if (each.top_k < options.top_k) {
    return absl::InvalidArgumentError("candidates must be at least top_k");
  }
  // The two retrievers are independent (FAISS scan, SQLite FTS5): run BM25
  // on a second thread while this one scans FAISS.
  std::future<absl::StatusOr<std::vector<Hit>>> lexical_future = std::async(
      std::launch::async,
      [this, &query_text, &each] { return SearchLexical(query_text, each); });
  absl::StatusOr<std::vector<Hit>> dense = SearchDense(query_vector, each);
  absl::StatusOr<std::vector<Hit>> lexical = lexical_future.get();
  RETURN_IF_ERROR(dense.status());
  RETURN_IF_ERROR(lexical.status());
  return Fuse(*dense, *lexical, fusion, options.top_k);
}

}  // namespace diffrank::index
