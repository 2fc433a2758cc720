// manifest.h: manifest.json of a collection directory.
//
// Owns: the persisted description of a collection (format version, model id,
// dimension, metric, FAISS factory string, counts, snapshot checksum) and its
// atomic replacement (temporary file, fsync, rename, fsync of the directory).
// Thread-safety: plain value; WriteManifest must not race with itself (the
// Collection serializes writers).
#ifndef DIFFRANK_INDEX_MANIFEST_H_
#define DIFFRANK_INDEX_MANIFEST_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace diffrank::index {

struct Manifest {
  int format_version = 1;
  std::string model_id;       // embedding model the vectors come from
  int dimension = 0;          // vector size
  std::string metric = "ip";  // inner product on unit vectors (cosine)
  std::string factory;        // FAISS factory string, e.g. "HNSW32"
  int64_t documents = 0;      // live documents at the last manifest write
  // The FAISS snapshot: file name in the directory ("" = none yet), the
  // number of vectors (= labels) it holds, the label epoch it belongs to
  // (bumped by compaction), and the CRC-32 of the file.
  std::string snapshot_file;
  std::string snapshot_factory;  // "Flat" while a trained index waits for data
  int64_t snapshot_vectors = 0;
  int64_t snapshot_epoch = 0;
  uint32_t snapshot_crc32 = 0;
};

// ReadManifest reads `dir`/manifest.json. NotFound when absent;
// DataLoss when present but unreadable or invalid.
absl::StatusOr<Manifest> ReadManifest(const std::string& dir);
// WriteManifest atomically replaces `dir`/manifest.json.
absl::Status WriteManifest(const std::string& dir, const Manifest& manifest);

// WriteFileAtomically writes `bytes` to `path` through `path`.tmp, fsyncs it,
// renames it over `path` and fsyncs the directory.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& bytes);
// SyncFileAndRename fsyncs `tmp`, renames it to `path`, fsyncs the directory.
absl::Status SyncFileAndRename(const std::string& tmp, const std::string& path);
// FileCrc32 returns the CRC-32 (zlib) of a file.
absl::StatusOr<uint32_t> FileCrc32(const std::string& path);

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_MANIFEST_H_
