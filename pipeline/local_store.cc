// local_store.cc: LocalStore, the Store over this process's Collections.
#include "index/fusion.h"
#include "pipeline/store.h"

namespace diffrank::pipeline {

absl::StatusOr<RetrieveResult> LocalStore::Retrieve(const RetrieveRequest& req,
                                                    const CallContext&) const {
  absl::StatusOr<std::shared_ptr<index::Collection>> c =
      collections_->Get(req.collection);
  if (!c.ok()) return c.status();
  index::SearchOptions options;
  options.top_k = req.top_k;
  options.filter = req.filter;
  absl::StatusOr<std::vector<index::Hit>> found;
  switch (req.mode) {
    case SearchMode::kDense:
      found = (*c)->SearchDense(req.query_vector, options);
      break;
    case SearchMode::kLexical:
      found = (*c)->SearchLexical(req.query, options);
      break;
    case SearchMode::kHybrid:
      found = (*c)->SearchHybrid(req.query_vector, req.query, options,
                                 index::FusionOptions(), req.candidates);
      break;
  }
  if (!found.ok()) return found.status();
  RetrieveResult out;
  out.hits = *std::move(found);
  if (req.filter != nullptr) {
    out.unknown_filter_fields = (*c)->UnknownFilterFields(*req.filter);
  }
  return out;
}

absl::StatusOr<std::vector<index::Document>> LocalStore::Fetch(
    const std::string& collection, const std::vector<std::string>& ids,
    const index::Collection::GetOptions& options, const CallContext&) const {
  absl::StatusOr<std::shared_ptr<index::Collection>> c =
      collections_->Get(collection);
  if (!c.ok()) return c.status();
  return (*c)->Get(ids, options);
}

absl::StatusOr<std::vector<index::Document>> LocalStore::List(
    const std::string& collection, const std::string& after, int limit,
    const index::Collection::GetOptions& options, const CallContext&) const {
  absl::StatusOr<std::shared_ptr<index::Collection>> c =
      collections_->Get(collection);
  if (!c.ok()) return c.status();
  return (*c)->List(after, limit, options);
}

absl::StatusOr<int64_t> LocalStore::Write(const std::string& collection,
                                          std::vector<index::Document> docs,
                                          const CallContext&) const {
  absl::StatusOr<std::shared_ptr<index::Collection>> c =
      collections_->Get(collection);
  if (!c.ok()) return c.status();
  const int64_t n = static_cast<int64_t>(docs.size());
  if (absl::Status s = (*c)->Upsert(std::move(docs)); !s.ok()) return s;
  return n;
}

absl::StatusOr<int64_t> LocalStore::Delete(const std::string& collection,
                                           const std::vector<std::string>& ids,
                                           const index::Filter* filter,
                                           const std::string&,
                                           const CallContext&) const {
  absl::StatusOr<std::shared_ptr<index::Collection>> c =
      collections_->Get(collection);
  if (!c.ok()) return c.status();
  if (filter != nullptr) return (*c)->DeleteByFilter(*filter);
  return (*c)->Delete(ids);
}

absl::StatusOr<CollectionSummary> LocalStore::Create(const std::string& name,
                                                     const std::string& factory,
                                                     const CallContext&) const {
  return collections_->Create(name, factory);
}

absl::Status LocalStore::Drop(const std::string& name,
                              const CallContext&) const {
  return collections_->Drop(name);
}

absl::StatusOr<std::vector<CollectionSummary>> LocalStore::List(
    const CallContext&) const {
  return collections_->List();
}

absl::StatusOr<CollectionSummary> LocalStore::Describe(
    const std::string& name, const CallContext&) const {
  return collections_->Describe(name);
}

absl::StatusOr<CollectionSummary> LocalStore::Publish(
    const std::string& name, const std::string& version,
    const CallContext&) const {
  return collections_->Publish(name, version);
}

}  // namespace diffrank::pipeline
