// collections.h: the named collections of one data directory.
//
// Collections maps names to open index::Collection objects living in
// <data_dir>/<name>/. Each collection records the embedding model that
// built it; collections of several models live side by side. Open locks the
// data directory (one process per directory, data_dir_lock.h) and loads
// every collection found there, asking `models` for each collection's model
// (a server loads it then), and refuses the start (FailedPrecondition) when
// a collection's model cannot be had: serving it would be wrong. A collection
// that cannot be opened for any other reason (corrupt files, an index this
// version refuses) does not take the node down: it is set aside as unavailable
// (Get answers FailedPrecondition with the reason, Drop removes it) and the
// others serve. Create, Drop, Get and List are what the API's collection RPCs
// call. Drop: the name leaves the map, the write in progress finishes (it was
// acknowledged before the drop), later writes and searches on the old object
// fail NotFound, then the directory is moved aside and deleted once the last
// reader lets go. A Create of the same name waits for the drop to finish, so
// the old collection can never write into the new one's directory.
// Thread-safety: thread-safe.
#ifndef DIFFRANK_PIPELINE_COLLECTIONS_H_
#define DIFFRANK_PIPELINE_COLLECTIONS_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "index/collection.h"
#include "pipeline/data_dir_lock.h"

namespace diffrank::pipeline {

struct CollectionsOptions {
  std::string data_dir;  // required; created if missing
  // The data directory's lock when the caller took it already (the server
  // takes it before loading models, to fail fast); else Open takes it.
  std::shared_ptr<DataDirLock> lock;
  std::string model_id;  // the default embedder's model id (required)
  int dimension = 0;     // the default embedder's dimension (required)
  // The dimension of another model's vectors, loading that model if needed
  // (NotFound when this process has no such model). Optional: without it
  // only the default model's collections open.
  std::function<absl::StatusOr<int>(const std::string& model_id)> models;
  // Template for every collection (dir, model_id, dimension and factory
  // are set per collection).
  index::CollectionOptions collection;
};

// CollectionCounters change with every write (an index entry added) and
// delete (one marked dead): equal counters mean nothing was written.
struct CollectionCounters {
  int64_t documents = 0;
  int64_t index_vectors = 0;
  int64_t dead_vectors = 0;
};

// CollectionSummary describes one collection for List/Stats.
struct CollectionSummary {
  std::string name;
  index::CollectionStats stats;
  std::string model_id;  // the embedder that built it
  int dimension = 0;
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
  // Create makes a collection embedded by `model` ("" = the default);
  // AlreadyExists, InvalidArgument for a bad name or factory string ("Flat"
  // when empty), NotFound naming "model" for a model this process lacks.
  absl::StatusOr<CollectionSummary> Create(absl::string_view name,
                                           absl::string_view factory,
                                           const std::string& model = "");
  // Drop and Describe refuse a malformed name (InvalidArgument "name"),
  // then NotFound.
  absl::Status Drop(absl::string_view name);
  std::vector<CollectionSummary> List() const;
  absl::StatusOr<CollectionSummary> Describe(absl::string_view name) const;
  // StagingDir is where offline builds put collection versions:
  // <data_dir>/.staging (created on demand; never loaded as collections).
  std::string StagingDir() const;
  // Publish makes the collection version built in
  // StagingDir()/<version> the live collection `name` (creating it, or
  // replacing the live one) in one atomic step: the version is opened and
  // checked (its model available here, dimension, readable) first; it may
  // be built by another model than the live one (a re-embed); then the
  // directories are exchanged with renameat2(RENAME_EXCHANGE), so a crash
  // leaves either the old or the new version live, never neither. Searches
  // running on the old version finish on it; writes to it after the switch fail
  // NotFound (as after a drop). InvalidArgument for a bad version name,
  // NotFound when it does not exist, FailedPrecondition when it does not open.
  // With `if_unchanged`, the live collection's counters are compared once
  // it has stopped taking writes: Aborted (and it serves and takes writes
  // on) when they differ.
  absl::StatusOr<CollectionSummary> Publish(
      absl::string_view name, absl::string_view version,
      const std::optional<CollectionCounters>& if_unchanged = std::nullopt);
  // Flush snapshots every collection (used on graceful shutdown).
  absl::Status Flush();
  // Unavailable lists the collections set aside at Open, with the reason.
  std::vector<std::pair<std::string, absl::Status>> Unavailable() const;

 private:
  explicit Collections(CollectionsOptions options)
      : options_(std::move(options)) {}
  // OptionsFor: the options of collection `name` built by `model` ("" =
  // the default model; else the dimension comes from options_.models).
  absl::StatusOr<index::CollectionOptions> OptionsFor(
      const std::string& name, const std::string& model = "") const;
  // ModelOfDir reads the model id recorded in a collection directory.
  static absl::StatusOr<std::string> ModelOfDir(const std::string& dir);
  static CollectionSummary Summary(const std::string& name,
                                   const index::Collection& c);

  const CollectionsOptions options_;
  absl::Status DropLocked(std::unique_lock<std::mutex>& lock,
                          const std::string& name);

  mutable std::mutex mu_;               // guards the three maps below
  std::condition_variable dropped_cv_;  // a name left dropping_
  std::map<std::string, std::shared_ptr<index::Collection>> by_name_;
  std::map<std::string, absl::Status> unavailable_;  // set aside at Open
  std::set<std::string> dropping_;                   // drops in progress
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_COLLECTIONS_H_
