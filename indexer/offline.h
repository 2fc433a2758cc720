// offline.h: builds a collection version from a document source without a
// server (diffrank-index's offline mode).
//
// The version is a complete collection directory in
// <data_dir>/.staging/<collection>-<signature>, where the signature hashes
// the input (path, size, modification time), its reading options, the index
// string and the model: re-running the same command finds the same version
// and resumes it. Records are read in order in chunks; each chunk is
// checked (the Upsert rules: index::Collection::CheckFields), tokenized,
// sorted by length and embedded in batches bounded by a padded-token budget
// (little padding), then committed in one SQLite transaction; after each
// commit a checkpoint (records consumed so far) is written atomically. A
// crash or Ctrl-C loses at most the chunk in progress: the rerun skips the
// consumed records (re-reading them to rebuild the duplicate-id check) and
// re-commits the chunk, which replaces identical documents (no duplicates).
// At the end the version is reopened and its document count verified.
// Publishing (making it live) is Collections::Publish, done by the caller.
// Thread-safety: one build at a time per version directory.
#ifndef DIFFRANK_INDEXER_OFFLINE_H_
#define DIFFRANK_INDEXER_OFFLINE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "encoder/encoder.h"
#include "indexer/records.h"

namespace diffrank::indexer {

struct OfflineOptions {
  std::string data_dir;
  std::string collection;
  std::string input;
  InputOptions input_options;
  std::string index = "Flat";
  bool skip_bad = true;  // --on-error skip (else the first bad record fails)
  int chunk_documents = 2048;   // records per commit
  int64_t batch_tokens = 4096;  // padded tokens per model batch
  int max_batch_rows = 32;
  size_t max_text_bytes = 1 << 20;
  // After each model batch and each commit (the caller throttles output).
  std::function<void(const Progress&)> on_progress;
  // Polled between records: true stops the build (Ctrl-C); it returns
  // Cancelled saying what is committed (a re-run resumes from there).
  std::function<bool()> interrupted;
  std::function<void(const std::string& where, const std::string& why)> on_bad;
};

struct OfflineReport {
  std::string version;    // directory name under <data_dir>/.staging
  std::string directory;  // its full path
  bool resumed = false;
  int64_t resumed_from = 0;       // records skipped as already done
  int64_t resumed_documents = 0;  // documents written by earlier runs
  Progress progress;
  int64_t documents_in_version = 0;
  int64_t disk_bytes = 0;
};

// BuildOffline builds (or resumes) the version. FailedPrecondition when
// skip_bad is false and a record is bad (the version is removed).
absl::StatusOr<OfflineReport> BuildOffline(const OfflineOptions& options,
                                           const encoder::Encoder& embedder);

}  // namespace diffrank::indexer

#endif  // DIFFRANK_INDEXER_OFFLINE_H_
