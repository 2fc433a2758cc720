// local_store.cc: LocalStore, the Store over this process's Collections.
#include "absl/strings/str_cat.h"
#include "index/fusion.h"
#include "pipeline/store.h"

namespace diffrank::pipeline {
namespace {

// The collection was replaced by a version of another model (a re-embed
// was published) after the caller embedded for the old one.
absl::Status ModelChanged(const std::string& name, const std::string& model,
                          const index::Collection& c) {
  return absl::FailedPreconditionError(absl::StrCat(
      "collection \"", name, "\" is built by model \"", c.model_id(),
      "\", not \"", model, "\" (it was re-embedded); retry"));
}

}  // namespace

absl::StatusOr<RetrieveResult> LocalStore::Retrieve(const RetrieveRequest& req,
                                                    const CallContext&) const {
  absl::StatusOr<std::shared_ptr<index::Collection>> c =
      collections_->Get(req.collection);
  if (!c.ok()) return c.status();
  if (!req.query_model.empty() && req.query_model != (*c)->model_id()) {
    return absl::AbortedError(
        ModelChanged(req.collection, req.query_model, **c).message());
  }
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
                                          std::vector<index::Document>&& docs,
                                          const std::string& model,
                                          const CallContext&) const {
  absl::StatusOr<std::shared_ptr<index::Collection>> c =
      collections_->Get(collection);
  if (!c.ok()) return c.status();
  if (model != (*c)->model_id()) {
    absl::Status s = ModelChanged(collection, model, **c);
    return absl::AbortedError(s.message());
  }
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

absl::StatusOr<std::string> LocalStore::ModelOf(const std::string& collection,
                                                const CallContext&) const {
  absl::StatusOr<std::shared_ptr<index::Collection>> c =
      collections_->Get(collection);
  if (!c.ok()) return c.status();
  return (*c)->model_id();
}

absl::StatusOr<CollectionSummary> LocalStore::Create(const std::string& name,
                                                     const std::string& factory,
                                                     const std::string& model,
                                                     const CallContext&) const {
  return collections_->Create(name, factory, model);
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
    const std::optional<CollectionCounters>& if_unchanged,
    const CallContext&) const {
  return collections_->Publish(name, version, if_unchanged);
}

}  // namespace diffrank::pipeline
