// collections.h: the named collections of one data directory.
//
// Collections maps names to open index::Collection objects living in
// <data_dir>/<name>/. Open loads every collection found there (refusing the
// start, FailedPrecondition, when one was built by another model). Create,
// Drop, Get and List are what the API's collection RPCs call. A dropped
// collection is removed from the map first; searches that already hold it
// finish on the open files, and its directory is deleted afterwards.
// Thread-safety: thread-safe.
#ifndef DIFFRANK_PIPELINE_COLLECTIONS_H_
#define DIFFRANK_PIPELINE_COLLECTIONS_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "index/collection.h"

namespace diffrank::pipeline {

struct CollectionsOptions {
  std::string data_dir;  // required; created if missing
  std::string model_id;  // the embedder's model id (required)
  int dimension = 0;     // the embedder's dimension (required)
  // Template for every collection (dir, model_id, dimension and factory
  // are set per collection).
  index::CollectionOptions collection;
};

// CollectionSummary describes one collection for List/Stats.
struct CollectionSummary {
  std::string name;
  index::CollectionStats stats;
};

class Collections {
 public:
  static absl::StatusOr<std::unique_ptr<Collections>> Open(
      CollectionsOptions options);

  // ValidateName: 1-64 of [A-Za-z0-9_-], not starting with '-' or '_'.
  static absl::Status ValidateName(absl::string_view name,
                                   absl::string_view field);

  // Get returns the collection or NotFound naming it.
  absl::StatusOr<std::shared_ptr<index::Collection>> Get(
      absl::string_view name) const;
  // Create makes a collection; AlreadyExists, or InvalidArgument for a bad
  // name or factory string ("Flat" when empty).
  absl::StatusOr<CollectionSummary> Create(absl::string_view name,
                                           absl::string_view factory);
  // Drop and Describe refuse a malformed name (InvalidArgument "name"),
  // then NotFound.
  absl::Status Drop(absl::string_view name);
  std::vector<CollectionSummary> List() const;
  absl::StatusOr<CollectionSummary> Describe(absl::string_view name) const;
  // Flush snapshots every collection (used on graceful shutdown).
  absl::Status Flush();

 private:
  explicit Collections(CollectionsOptions options)
      : options_(std::move(options)) {}
  index::CollectionOptions OptionsFor(const std::string& name) const;

  const CollectionsOptions options_;
  mutable std::mutex mu_;  // guards by_name_ and serializes Create/Drop
  std::map<std::string, std::shared_ptr<index::Collection>> by_name_;
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_COLLECTIONS_H_
