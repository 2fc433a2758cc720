// remote_store.cc: RemoteStore (see remote_store.h): fan-out, merge, and
// routing by document id over the shard servers' public gRPC API.
#include "router/remote_store.h"

#include <algorithm>
#include <condition_variable>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/shard_hash.h"
#include "common/status_macros.h"
#include "index/fusion.h"

namespace diffrank::router {
namespace {

using pipeline::CollectionSummary;
using pipeline::SearchMode;

v1::SearchMode ToProto(SearchMode m) {
  switch (m) {
    case SearchMode::kDense:
      return v1::SEARCH_MODE_DENSE;
    case SearchMode::kLexical:
      return v1::SEARCH_MODE_LEXICAL;
    case SearchMode::kHybrid:
      break;
  }
  return v1::SEARCH_MODE_HYBRID;
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

// A shard that is down, draining, overloaded at the transport level or
// broken answers with one of these; every other code is the shard's verdict
// on the request itself (the same one a single server would give).
bool IsShardFailure(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::DATA_LOSS:
      return true;
    default:
      return false;
  }
}

// The field named by a shard's warning about a filter field no document
// has (pipeline.cc writes it: ... has metadata field "F"; its conditions
// match nothing).
std::optional<std::string> UnknownFieldOf(const std::string& warning) {
  constexpr absl::string_view kHead = "\" has metadata field \"";
  constexpr absl::string_view kTail = "\"; its conditions match nothing";
  const size_t at = absl::string_view(warning).find(kHead);
  if (at == std::string::npos || !absl::EndsWith(warning, kTail)) {
    return std::nullopt;
  }
  const size_t from = at + kHead.size();
  const size_t to = warning.size() - kTail.size();
  if (to < from) return std::nullopt;
  return warning.substr(from, to - from);
}

CollectionSummary SummaryOf(const v1::CollectionInfo& info) {
  CollectionSummary s;
  s.name = info.name();
  s.stats.factory = info.index();
  s.stats.active_factory = info.active_index();
  s.stats.documents = info.documents();
  s.model_id = info.model();
  s.dimension = info.dimension();
  return s;
}

// Adds `more`'s counters into `sum` (the same collection on another shard).
void AddCounts(CollectionSummary& sum, const CollectionSummary& more) {
  sum.stats.documents += more.stats.documents;
  sum.stats.index_vectors += more.stats.index_vectors;
  sum.stats.dead_vectors += more.stats.dead_vectors;
  sum.stats.disk_bytes += more.stats.disk_bytes;
}

index::Document FromProto(const v1::Document& d) {
  index::Document out;
  out.id = d.id();
  out.text = d.text();
  out.title = d.title();
  out.metadata = d.metadata();
  return out;
}

// Merges per-shard lists (each best first) into one, best first by
// `key`, ties by id; ranks renumbered from 1 in `rank`.
std::vector<index::Hit> MergeLists(std::vector<std::vector<index::Hit>> lists,
                                   std::optional<double> index::Hit::*key,
                                   std::optional<int> index::Hit::*rank,
                                   int limit) {
  std::vector<index::Hit> all;
  for (auto& l : lists) {
    for (auto& h : l) all.push_back(std::move(h));
  }
  std::stable_sort(all.begin(), all.end(),
                   [key](const index::Hit& a, const index::Hit& b) {
                     const double x = (a.*key).value_or(-1e300);
                     const double y = (b.*key).value_or(-1e300);
                     if (x != y) return x > y;
                     return a.id < b.id;
                   });
  if (static_cast<int>(all.size()) > limit) all.resize(limit);
  for (size_t i = 0; i < all.size(); ++i) {
    all[i].score = (all[i].*key).value_or(0);
    all[i].*rank = static_cast<int>(i) + 1;
  }
  return all;
}

// Rewrites a shard's "documents[j]" (index within the shard's sub-batch)
// to the caller's index.
std::string RemapDocumentIndex(std::string msg, const std::vector<int>& orig) {
  const std::string key = "documents[";
  const size_t at = msg.find(key);
  if (at == std::string::npos) return msg;
  const size_t end = msg.find(']', at);
  int j = 0;
  if (end == std::string::npos ||
      !absl::SimpleAtoi(msg.substr(at + key.size(), end - at - key.size()),
                        &j) ||
      j < 0 || j >= static_cast<int>(orig.size())) {
    return msg;
  }
  return absl::StrCat(msg.substr(0, at + key.size()), orig[j], msg.substr(end));
}

}  // namespace

RemoteStore::RemoteStore(RemoteStoreOptions options)
    : options_(std::move(options)) {
  auto creds = options_.credentials ? options_.credentials
                                    : grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // A restarted shard is found again within ~2 s (gRPC's default backoff
  // grows to 120 s, which would keep a recovered shard out that long).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  for (const std::string& addr : options_.shards) {
    stubs_.push_back(
        v1::Diffrank::NewStub(grpc::CreateCustomChannel(addr, creds, args)));
  }
}

std::vector<int> RemoteStore::AllShards() const {
  std::vector<int> all(stubs_.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return all;
}

void RemoteStore::Prepare(grpc::ClientContext& c, const CallContext& ctx,
                          bool read) const {
  const absl::Time deadline = std::min(
      ctx.deadline,
      absl::Now() + (read ? options_.shard_timeout : options_.write_timeout));
  c.set_deadline(absl::ToChronoTime(deadline));
  if (!ctx.authorization.empty()) {
    c.AddMetadata("authorization", ctx.authorization);
  }
}

absl::Status RemoteStore::ShardError(int i, const grpc::Status& s) const {
  if (!IsShardFailure(s.error_code())) return FromGrpc(s);
  return absl::UnavailableError(
      absl::StrCat("shard ", i, " (", options_.shards[i],
                   ") did not answer: ", s.error_message()));
}

template <typename Req, typename Resp, typename Call>
std::vector<RemoteStore::Answer<Resp>> RemoteStore::Fan(
    const std::vector<int>& which, const std::vector<Req>& requests,
    const CallContext& ctx, bool read, Call call) const {
  std::vector<Answer<Resp>> answers(which.size());
  std::vector<grpc::ClientContext> contexts(which.size());
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = which.size();
  for (size_t k = 0; k < which.size(); ++k) {
    Prepare(contexts[k], ctx, read);
    call(stubs_[which[k]]->async(), &contexts[k], &requests[k],
         &answers[k].response, [&, k](grpc::Status s) {
           answers[k].status = std::move(s);
           std::lock_guard<std::mutex> l(mu);
           if (--pending == 0) cv.notify_all();
         });
  }
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return pending == 0; });
  return answers;
}

absl::StatusOr<std::vector<index::Hit>> RemoteStore::SearchAll(
    const pipeline::RetrieveRequest& req, SearchMode mode, int top_k,
    const CallContext& ctx, std::vector<std::string>& missing,
    std::vector<std::string>* unknown) const {
  const std::vector<int> all = AllShards();
  v1::SearchRequest r;
  r.set_collection(req.collection);
  r.set_query(req.query);
  r.set_top_k(std::min(top_k, options_.max_top_k));
  r.set_mode(ToProto(mode));
  r.set_rerank(false);
  r.set_filter(req.filter_json);
  if (mode != SearchMode::kLexical) {
    // Embedded once here: the shards search with it instead of each
    // embedding the text again.
    r.mutable_query_vector()->Assign(req.query_vector.begin(),
                                     req.query_vector.end());
    // A shard whose collection was re-embedded meanwhile refuses it.
    r.set_query_vector_model(req.query_model);
  }
  std::vector<v1::SearchRequest> requests(all.size(), r);
  auto answers = Fan<v1::SearchRequest, v1::SearchResponse>(
      all, requests, ctx, /*read=*/true,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::SearchRequest* q,
         v1::SearchResponse* p, std::function<void(grpc::Status)> done) {
        a->Search(c, q, p, std::move(done));
      });
  std::vector<std::vector<index::Hit>> lists;
  absl::Status filter_refusal;
  int answered = 0;
  // Filter fields unknown to every shard that answered (a field one shard
  // has is not unknown to the collection).
  std::optional<std::set<std::string>> unknown_everywhere;
  for (size_t i = 0; i < answers.size(); ++i) {
    const grpc::Status& s = answers[i].status;
    if (!s.ok()) {
      if (absl::Now() >= ctx.deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("deadline passed waiting for shard ", i, " (",
                         options_.shards[i], ")"));
      }
      if (IsShardFailure(s.error_code()) &&
          options_.failure == ShardFailure::kPartial) {
        missing.push_back(options_.shards[i]);
        continue;
      }
      // A filter field that no document of this shard has is refused by
      // the shard; with other shards answering it just matches nothing.
      if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
          req.filter != nullptr) {
        filter_refusal = FromGrpc(s);
        continue;
      }
      return ShardError(static_cast<int>(i), s);
    }
    ++answered;
    std::set<std::string> mine;
    for (const std::string& w : answers[i].response.warnings()) {
      if (std::optional<std::string> f = UnknownFieldOf(w)) mine.insert(*f);
    }
    if (!unknown_everywhere) {
      unknown_everywhere = std::move(mine);
    } else {
      std::set<std::string> both;
      std::set_intersection(unknown_everywhere->begin(),
                            unknown_everywhere->end(), mine.begin(), mine.end(),
                            std::inserter(both, both.begin()));
      unknown_everywhere = std::move(both);
    }
    std::vector<index::Hit> list;
    for (const v1::Hit& h : answers[i].response.hits()) {
      index::Hit hit;
      hit.id = h.id();
      if (h.has_dense_score()) hit.dense_score = h.dense_score();
      if (h.has_lexical_score()) hit.lexical_score = h.lexical_score();
      list.push_back(std::move(hit));
    }
    lists.push_back(std::move(list));
  }
  if (unknown != nullptr && unknown_everywhere) {
    unknown->assign(unknown_everywhere->begin(), unknown_everywhere->end());
  }
  if (answered == 0) {
    if (!filter_refusal.ok()) return filter_refusal;
    return absl::UnavailableError(absl::StrCat(
        "no shard answered: ", absl::StrJoin(options_.shards, ", ")));
  }
  return mode == SearchMode::kLexical
             ? MergeLists(std::move(lists), &index::Hit::lexical_score,
                          &index::Hit::lexical_rank, top_k)
             : MergeLists(std::move(lists), &index::Hit::dense_score,
                          &index::Hit::dense_rank, top_k);
}

absl::Status RemoteStore::Refused(const std::string& collection,
                                  const absl::Status& s) const {
  // The vector's model is not the collection's any more: ask again next time.
  if (s.code() == absl::StatusCode::kFailedPrecondition)
    ForgetModel(collection);
  return s;
}

absl::StatusOr<pipeline::RetrieveResult> RemoteStore::Retrieve(
    const pipeline::RetrieveRequest& req, const CallContext& ctx) const {
  pipeline::RetrieveResult out;
  std::vector<std::string> missing;
  if (req.mode != SearchMode::kHybrid) {
    auto hits = SearchAll(req, req.mode, req.top_k, ctx, missing,
                          &out.unknown_filter_fields);
    if (!hits.ok()) return Refused(req.collection, hits.status());
    out.hits = *std::move(hits);
  } else {
    // As Collection::SearchHybrid: each retriever's `candidates` best over
    // the whole collection, then one fusion.
    const int each = req.candidates > 0 ? req.candidates : 4 * req.top_k;
    std::vector<std::string> missing_dense, missing_lexical;
    absl::StatusOr<std::vector<index::Hit>> dense, lexical;
    std::thread t([&] {
      lexical =
          SearchAll(req, SearchMode::kLexical, each, ctx, missing_lexical);
    });
    dense = SearchAll(req, SearchMode::kDense, each, ctx, missing_dense,
                      &out.unknown_filter_fields);
    t.join();
    if (!dense.ok()) return Refused(req.collection, dense.status());
    if (!lexical.ok()) return lexical.status();
    out.hits = index::Fuse(*dense, *lexical, index::FusionOptions(), req.top_k);
    missing = missing_dense;
    for (const std::string& m : missing_lexical) {
      if (std::find(missing.begin(), missing.end(), m) == missing.end()) {
        missing.push_back(m);
      }
    }
  }
  out.missing_shards = std::move(missing);
  return out;
}

absl::StatusOr<std::string> RemoteStore::ModelOf(const std::string& collection,
                                                 const CallContext& ctx) const {
  {
    std::lock_guard<std::mutex> l(cache_mu_);
    auto it = model_cache_.find(collection);
    if (it != model_cache_.end() &&
        absl::Now() - it->second.second < options_.model_cache_ttl) {
      return it->second.first;
    }
  }
  ASSIGN_OR_RETURN(CollectionSummary s, Describe(collection, ctx));
  std::lock_guard<std::mutex> l(cache_mu_);
  if (model_cache_.size() > 10000) model_cache_.clear();  // bounded
  model_cache_[collection] = {s.model_id, absl::Now()};
  return s.model_id;
}

void RemoteStore::ForgetModel(const std::string& collection) const {
  std::lock_guard<std::mutex> l(cache_mu_);
  model_cache_.erase(collection);
}

absl::StatusOr<std::vector<index::Document>> RemoteStore::Fetch(
    const std::string& collection, const std::vector<std::string>& ids,
    const index::Collection::GetOptions& options,
    const CallContext& ctx) const {
  // One Get per shard and chunk of at most max_texts_per_request ids.
  std::vector<int> which;
  std::vector<v1::GetRequest> requests;
  std::map<int, size_t> open;  // shard -> index of its request being filled
  for (const std::string& id : ids) {
    const int s = ShardOf(id, shards());
    auto it = open.find(s);
    if (it == open.end() ||
        requests[it->second].ids_size() >= options_.max_texts_per_request) {
      which.push_back(s);
      requests.emplace_back();
      requests.back().set_collection(collection);
      requests.back().set_text_max_bytes(int64_t(options.max_text_bytes));
      it = open.insert_or_assign(s, requests.size() - 1).first;
    }
    requests[it->second].add_ids(id);
  }
  auto answers = Fan<v1::GetRequest, v1::GetResponse>(
      which, requests, ctx, /*read=*/true,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::GetRequest* q, v1::GetResponse* p,
         std::function<void(grpc::Status)> done) {
        a->Get(c, q, p, std::move(done));
      });
  std::map<std::string, index::Document> found;
  for (size_t k = 0; k < answers.size(); ++k) {
    if (!answers[k].status.ok()) {
      return ShardError(which[k], answers[k].status);
    }
    for (const v1::Document& d : answers[k].response.documents()) {
      found[d.id()] = FromProto(d);
    }
  }
  std::vector<index::Document> out;
  size_t total = 0;
  for (const std::string& id : ids) {
    auto it = found.find(id);
    if (it == found.end()) continue;
    index::Document d = it->second;  // ids may repeat
    if (!options.with_text) {
      d.text.clear();
      d.title.clear();
    }
    total += d.text.size() + d.title.size() + d.metadata.size();
    if (options.max_total_bytes > 0 && total > options.max_total_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the documents exceed ", options.budget_name, " (",
          options.max_total_bytes, " bytes); ask for fewer or shorter ones"));
    }
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<std::vector<index::Document>> RemoteStore::List(
    const std::string& collection, const std::string& after, int limit,
    const index::Collection::GetOptions& options,
    const CallContext& ctx) const {
  const std::vector<int> all = AllShards();
  std::vector<v1::GetRequest> requests(all.size());
  for (v1::GetRequest& r : requests) {
    r.set_collection(collection);
    r.set_cursor(after);
    r.set_limit(limit);
    r.set_text_max_bytes(int64_t(options.max_text_bytes));
  }
  auto answers = Fan<v1::GetRequest, v1::GetResponse>(
      all, requests, ctx, /*read=*/true,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::GetRequest* q, v1::GetResponse* p,
         std::function<void(grpc::Status)> done) {
        a->Get(c, q, p, std::move(done));
      });
  std::map<std::string, index::Document> merged;  // id order
  for (size_t k = 0; k < answers.size(); ++k) {
    if (!answers[k].status.ok()) return ShardError(all[k], answers[k].status);
    for (const v1::Document& d : answers[k].response.documents()) {
      merged[d.id()] = FromProto(d);
    }
  }
  std::vector<index::Document> out;
  size_t total = 0;
  for (auto& [id, d] : merged) {
    if (static_cast<int>(out.size()) >= limit) break;
    if (!options.with_text) {
      d.text.clear();
      d.title.clear();
    }
    total += d.text.size() + d.title.size() + d.metadata.size();
    if (options.max_total_bytes > 0 && total > options.max_total_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the documents exceed ", options.budget_name, " (",
                       options.max_total_bytes,
                       " bytes); ask for fewer (limit) or cut "
                       "the texts (text_max_bytes)"));
    }
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<int64_t> RemoteStore::Write(const std::string& collection,
                                           std::vector<index::Document>&& docs,
                                           const std::string& /*model*/,
                                           const CallContext& ctx) const {
  // Every check a shard would make (the vector aside) first: a bad document
  // refuses the whole batch before any shard commits its part.
  for (size_t i = 0; i < docs.size(); ++i) {
    if (absl::Status s = index::Collection::CheckFields(
            docs[i], i, options_.document_limits);
        !s.ok()) {
      return s;
    }
  }
  std::vector<std::vector<int>> orig(shards());  // caller's index per doc
  std::vector<v1::UpsertRequest> requests(shards());
  for (size_t i = 0; i < docs.size(); ++i) {
    const int s = ShardOf(docs[i].id, shards());
    orig[s].push_back(static_cast<int>(i));
    v1::Document* d = requests[s].add_documents();
    d->set_id(std::move(docs[i].id));
    d->set_text(std::move(docs[i].text));
    d->set_title(std::move(docs[i].title));
    d->set_metadata(std::move(docs[i].metadata));
  }
  // Client-streaming calls, one message each, in parallel (blocking API on
  // one thread per shard with documents).
  std::vector<grpc::Status> status(shards());
  std::vector<v1::UpsertResponse> responses(shards());
  std::vector<std::thread> threads;
  for (int s = 0; s < shards(); ++s) {
    if (orig[s].empty()) continue;
    requests[s].set_collection(collection);
    threads.emplace_back([&, s] {
      grpc::ClientContext c;
      Prepare(c, ctx, /*read=*/false);
      auto writer = stubs_[s]->Upsert(&c, &responses[s]);
      writer->Write(requests[s]);
      writer->WritesDone();
      status[s] = writer->Finish();
    });
  }
  for (std::thread& t : threads) t.join();
  int64_t written = 0;
  std::vector<int> committed;
  absl::Status first;
  for (int s = 0; s < shards(); ++s) {
    if (orig[s].empty()) continue;
    if (status[s].ok()) {
      written += responses[s].upserted();
      committed.push_back(s);
    } else if (first.ok()) {
      grpc::Status remapped(
          status[s].error_code(),
          RemapDocumentIndex(status[s].error_message(), orig[s]));
      first = ShardError(s, remapped);
    }
  }
  if (!first.ok()) {
    return absl::Status(
        first.code(),
        absl::StrCat(first.message(),
                     committed.empty()
                         ? " (nothing of this batch was committed)"
                         : absl::StrCat(" (", written,
                                        " documents of this batch were "
                                        "committed on shard(s) ",
                                        absl::StrJoin(committed, ", "),
                                        "; retrying the batch is safe: "
                                        "upserts replace by id)")));
  }
  return written;
}

absl::StatusOr<int64_t> RemoteStore::Delete(const std::string& collection,
                                            const std::vector<std::string>& ids,
                                            const index::Filter* filter,
                                            const std::string& filter_json,
                                            const CallContext& ctx) const {
  std::vector<int> which;
  std::vector<v1::DeleteRequest> requests;
  if (filter != nullptr) {
    which = AllShards();
    v1::DeleteRequest r;
    r.set_collection(collection);
    r.set_filter(filter_json);
    requests.assign(which.size(), r);
  } else {
    std::map<int, size_t> slot;
    for (const std::string& id : ids) {
      const int s = ShardOf(id, shards());
      auto [it, added] = slot.emplace(s, requests.size());
      if (added) {
        which.push_back(s);
        requests.emplace_back();
        requests.back().set_collection(collection);
      }
      requests[it->second].add_ids(id);
    }
  }
  auto answers = Fan<v1::DeleteRequest, v1::DeleteResponse>(
      which, requests, ctx, /*read=*/false,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::DeleteRequest* q,
         v1::DeleteResponse* p, std::function<void(grpc::Status)> done) {
        a->Delete(c, q, p, std::move(done));
      });
  int64_t deleted = 0;
  int answered = 0;
  absl::Status filter_refusal;
  for (size_t k = 0; k < answers.size(); ++k) {
    const grpc::Status& s = answers[k].status;
    if (s.ok()) {
      deleted += answers[k].response.deleted();
      ++answered;
    } else if (filter != nullptr &&
               s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      filter_refusal = FromGrpc(s);  // a field this shard does not have
    } else {
      return ShardError(which[k], s);
    }
  }
  if (answered == 0 && !filter_refusal.ok()) return filter_refusal;
  return deleted;
}

absl::StatusOr<CollectionSummary> RemoteStore::Create(
    const std::string& name, const std::string& factory,
    const std::string& model, const CallContext& ctx) const {
  const std::vector<int> all = AllShards();
  v1::CreateCollectionRequest r;
  r.set_name(name);
  r.set_index(factory);
  r.set_model(model);
  auto answers = Fan<v1::CreateCollectionRequest, v1::CollectionInfo>(
      all, std::vector<v1::CreateCollectionRequest>(all.size(), r), ctx,
      /*read=*/false,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::CreateCollectionRequest* q,
         v1::CollectionInfo* p, std::function<void(grpc::Status)> done) {
        a->CreateCollection(c, q, p, std::move(done));
      });
  // Shards that already have it count as created when others created it
  // now (a retried, half-done create completes); ALREADY_EXISTS only when
  // every shard had it.
  int created = 0, existed = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    const grpc::Status& s = answers[i].status;
    if (s.ok()) {
      ++created;
    } else if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      ++existed;
    } else {
      return ShardError(static_cast<int>(i), s);
    }
  }
  if (created == 0) return FromGrpc(answers[0].status);
  return Describe(name, ctx);
}

absl::Status RemoteStore::Drop(const std::string& name,
                               const CallContext& ctx) const {
  const std::vector<int> all = AllShards();
  v1::DropCollectionRequest r;
  r.set_name(name);
  auto answers = Fan<v1::DropCollectionRequest, v1::DropCollectionResponse>(
      all, std::vector<v1::DropCollectionRequest>(all.size(), r), ctx,
      /*read=*/false,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::DropCollectionRequest* q,
         v1::DropCollectionResponse* p,
         std::function<void(grpc::Status)> done) {
        a->DropCollection(c, q, p, std::move(done));
      });
  int dropped = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    const grpc::Status& s = answers[i].status;
    if (s.ok()) {
      ++dropped;
    } else if (s.error_code() != grpc::StatusCode::NOT_FOUND) {
      return ShardError(static_cast<int>(i), s);
    }
  }
  if (dropped == 0) return FromGrpc(answers[0].status);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CollectionSummary>> RemoteStore::List(
    const CallContext& ctx) const {
  const std::vector<int> all = AllShards();
  auto answers = Fan<v1::ListCollectionsRequest, v1::ListCollectionsResponse>(
      all, std::vector<v1::ListCollectionsRequest>(all.size()), ctx,
      /*read=*/true,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::ListCollectionsRequest* q,
         v1::ListCollectionsResponse* p,
         std::function<void(grpc::Status)> done) {
        a->ListCollections(c, q, p, std::move(done));
      });
  std::map<std::string, CollectionSummary> by_name;
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i].status.ok()) {
      return ShardError(static_cast<int>(i), answers[i].status);
    }
    for (const v1::CollectionInfo& info : answers[i].response.collections()) {
      auto [it, added] = by_name.emplace(info.name(), SummaryOf(info));
      if (!added) AddCounts(it->second, SummaryOf(info));
    }
  }
  std::vector<CollectionSummary> out;
  for (auto& [name, s] : by_name) out.push_back(std::move(s));
  return out;
}

absl::StatusOr<CollectionSummary> RemoteStore::Describe(
    const std::string& name, const CallContext& ctx) const {
  const std::vector<int> all = AllShards();
  v1::CollectionStatsRequest r;
  r.set_name(name);
  auto answers = Fan<v1::CollectionStatsRequest, v1::CollectionStatsResponse>(
      all, std::vector<v1::CollectionStatsRequest>(all.size(), r), ctx,
      /*read=*/true,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::CollectionStatsRequest* q,
         v1::CollectionStatsResponse* p,
         std::function<void(grpc::Status)> done) {
        a->CollectionStats(c, q, p, std::move(done));
      });
  CollectionSummary sum;
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i].status.ok()) {
      return ShardError(static_cast<int>(i), answers[i].status);
    }
    const v1::CollectionStatsResponse& p = answers[i].response;
    CollectionSummary one = SummaryOf(p.info());
    one.stats.index_vectors = p.index_vectors();
    one.stats.dead_vectors = p.dead_vectors();
    one.stats.disk_bytes = p.disk_bytes();
    if (i == 0) {
      sum = one;
    } else if (one.model_id != sum.model_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "collection \"", name, "\" is built by model \"", sum.model_id,
          "\" on shard 0 but \"", one.model_id, "\" on shard ", i,
          " (a re-embed is being published shard by shard); retry"));
    } else {
      AddCounts(sum, one);
    }
  }
  return sum;
}

absl::StatusOr<CollectionSummary> RemoteStore::Publish(
    const std::string& name, const std::string& version,
    const std::optional<pipeline::CollectionCounters>& if_unchanged,
    const CallContext& ctx) const {
  if (if_unchanged) {
    return absl::InvalidArgumentError(
        "if_unchanged: not through a router (each shard has its own "
        "counters); publish on each shard");
  }
  const std::vector<int> all = AllShards();
  v1::PublishCollectionRequest r;
  r.set_name(name);
  r.set_version(version);
  auto answers = Fan<v1::PublishCollectionRequest, v1::CollectionInfo>(
      all, std::vector<v1::PublishCollectionRequest>(all.size(), r), ctx,
      /*read=*/false,
      [](v1::Diffrank::StubInterface::async_interface* a,
         grpc::ClientContext* c, const v1::PublishCollectionRequest* q,
         v1::CollectionInfo* p, std::function<void(grpc::Status)> done) {
        a->PublishCollection(c, q, p, std::move(done));
      });
  std::vector<int> published;
  for (size_t i = 0; i < answers.size(); ++i) {
    if (answers[i].status.ok()) published.push_back(static_cast<int>(i));
  }
  for (size_t i = 0; i < answers.size(); ++i) {
    if (answers[i].status.ok()) continue;
    absl::Status e = ShardError(static_cast<int>(i), answers[i].status);
    return absl::Status(
        e.code(),
        absl::StrCat("shard ", i, ": ", e.message(),
                     published.empty()
                         ? ""
                         : absl::StrCat(" (published on shard(s) ",
                                        absl::StrJoin(published, ", "),
                                        "; publish each shard's version "
                                        "again on the others)")));
  }
  return Describe(name, ctx);
}

}  // namespace diffrank::router
