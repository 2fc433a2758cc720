// vector_index.h: a FAISS index whose positions are the collection's labels.
//
// Owns: building an index from a FAISS factory string (inner product), its
// training, appends (position = label, so no id map is needed), per-call
// search knobs (efSearch, nprobe: passed as SearchParameters, never by
// mutating the shared index), an optional allow-list bitmap applied inside
// the search (not by post-filtering), and snapshot files (temporary file,
// fsync, rename). FAISS throws; every call here catches and returns a status.
// Thread-safety: Search is const and may run concurrently with other Search
// calls; Train/Add/Write must be externally serialized against everything
// (the Collection's index lock does that).
#ifndef DIFFRANK_INDEX_VECTOR_INDEX_H_
#define DIFFRANK_INDEX_VECTOR_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace faiss {
struct Index;
}

namespace diffrank::index {

// SearchKnobs are per-call search parameters; 0 = the index default.
struct SearchKnobs {
  int ef_search = 0;  // HNSW: candidate list size (default 64 here)
  int nprobe = 0;     // IVF: inverted lists visited (default 16 here)
};

// Bitmap is one bit per label (bit i of byte i/8); a set bit allows label i.
using Bitmap = std::vector<uint8_t>;

class VectorIndex {
 public:
  // Create builds an empty index. InvalidArgument for a factory string
  // outside the accepted grammar (factory.h) or one FAISS rejects.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Create(
      int dimension, const std::string& factory);
  // Read loads a snapshot; DataLoss if unreadable or of another dimension.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Read(
      const std::string& path, int dimension);
  ~VectorIndex();

  // MinTrainingVectors is how many vectors `factory` needs to be trained
  // well (0 = no training). Below it the Collection serves a Flat index.
  static int64_t MinTrainingVectors(const std::string& factory, int dimension);

  bool is_trained() const;
  int64_t size() const;  // vectors held = next label
  int dimension() const { return dimension_; }
  // Train trains on n x d vectors (no-op when already trained).
  absl::Status Train(const float* x, int64_t n);
  // Add appends n x d vectors at positions size() .. size() + n - 1.
  absl::Status Add(const float* x, int64_t n);
  // Search returns up to k (label, inner product) pairs, best first, only
  // among labels set in `allow` (nullptr = all).
  absl::StatusOr<std::vector<std::pair<int64_t, float>>> Search(
      const float* query, int k, const SearchKnobs& knobs,
      const Bitmap* allow) const;
  // Write stores a snapshot at `path` atomically (tmp, fsync, rename).
  absl::Status Write(const std::string& path) const;

 private:
  VectorIndex(std::unique_ptr<faiss::Index> index, int dimension);
  std::unique_ptr<faiss::Index> index_;
  int dimension_;
};

// NormalizeToUnit scales a query vector to unit length (inner product =
// cosine). InvalidArgument naming `field` for a NaN/infinite value
// ("<field>[i] is not a finite number") or a zero vector.
absl::Status NormalizeToUnit(std::vector<float>& v, absl::string_view field);

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_VECTOR_INDEX_H_
