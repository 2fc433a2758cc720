// vector_index.cc: the FAISS adapter (the one place FAISS exceptions are
// caught).
#include "index/vector_index.h"

#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "index/factory.h"
#include "index/manifest.h"

namespace diffrank::index {
namespace {

constexpr int kDefaultEfSearch = 64;
constexpr int kDefaultNprobe = 16;

absl::Status FromFaiss(const std::exception& e, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": faiss: ", e.what()));
}

}  // namespace

VectorIndex::VectorIndex(std::unique_ptr<faiss::Index> index, int dimension)
    : index_(std::move(index)), dimension_(dimension) {}
VectorIndex::~VectorIndex() = default;

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Create(
    int dimension, const std::string& factory) {
  // The grammar check first: FAISS accepts strings that crash later.
  absl::Status valid = ParseFactory(factory, dimension).status();
  if (!valid.ok()) return valid;
  try {
    std::unique_ptr<faiss::Index> idx(faiss::index_factory(
        dimension, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(idx.get())) {
      hnsw->hnsw.efSearch = kDefaultEfSearch;
    }
    // Polysemous training (simulated annealing of PQ codes) only serves
    // polysemous Hamming filtering, which diffrank does not use; it would
    // dominate training time (20 s for 12k vectors here).
    faiss::Index* inner = idx.get();
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(inner)) {
      inner = pt->index;
    }
    if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(inner)) {
      ivfpq->do_polysemous_training = false;
    }
    return std::unique_ptr<VectorIndex>(
        new VectorIndex(std::move(idx), dimension));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid FAISS factory string \"", factory,
                     "\" for dimension ", dimension, ": ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<VectorIndex>> VectorIndex::Read(
    const std::string& path, int dimension) {
  try {
    std::unique_ptr<faiss::Index> idx(faiss::read_index(path.c_str()));
    if (idx->d != dimension) {
      return absl::DataLossError(absl::StrCat(path, " holds dimension ", idx->d,
                                              ", expected ", dimension));
    }
    return std::unique_ptr<VectorIndex>(
        new VectorIndex(std::move(idx), dimension));
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat("cannot read ", path, ": ", e.what()));
  }
}

int64_t VectorIndex::MinTrainingVectors(const std::string& factory,
                                        int dimension) {
  absl::StatusOr<FactorySpec> spec = ParseFactory(factory, dimension);
  return spec.ok() ? spec->min_training_vectors : 0;
}

bool VectorIndex::is_trained() const { return index_->is_trained; }
int64_t VectorIndex::size() const { return index_->ntotal; }

absl::Status VectorIndex::Train(const float* x, int64_t n) {
  if (index_->is_trained) return absl::OkStatus();
  try {
    index_->train(n, x);
  } catch (const std::exception& e) {
    return FromFaiss(e, absl::StrCat("training on ", n, " vectors"));
  }
  return absl::OkStatus();
}

absl::Status VectorIndex::Add(const float* x, int64_t n) {
  if (n == 0) return absl::OkStatus();
  if (!index_->is_trained) {
    return absl::FailedPreconditionError("index is not trained");
  }
  try {
    index_->add(n, x);
  } catch (const std::exception& e) {
    return FromFaiss(e, "adding vectors");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<int64_t, float>>> VectorIndex::Search(
    const float* query, int k, const SearchKnobs& knobs,
    const Bitmap* allow) const {
  std::vector<std::pair<int64_t, float>> out;
  if (k <= 0 || index_->ntotal == 0) return out;
  std::unique_ptr<faiss::IDSelectorBitmap> sel;
  if (allow != nullptr) {
    sel = std::make_unique<faiss::IDSelectorBitmap>(
        std::min<size_t>(allow->size() * 8, index_->ntotal), allow->data());
  }
  std::vector<float> dist(k);
  std::vector<faiss::Index::idx_t> labels(k, -1);
  // OPQ wraps the index in a transform that passes the parameters through:
  // their type must match the inner index.
  const faiss::Index* inner = index_.get();
  if (auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(inner)) {
    inner = pt->index;
  }
  try {
    if (auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(inner)) {
      faiss::SearchParametersHNSW p;
      p.efSearch = std::max(
          knobs.ef_search > 0 ? knobs.ef_search : hnsw->hnsw.efSearch, k);
      p.sel = sel.get();
      index_->search(1, query, k, dist.data(), labels.data(), &p);
    } else if (dynamic_cast<const faiss::IndexIVF*>(inner) != nullptr) {
      faiss::SearchParametersIVF p;
      p.nprobe = knobs.nprobe > 0 ? knobs.nprobe : kDefaultNprobe;
      p.sel = sel.get();
      index_->search(1, query, k, dist.data(), labels.data(), &p);
    } else {
      faiss::SearchParameters p;
      p.sel = sel.get();
      index_->search(1, query, k, dist.data(), labels.data(), &p);
    }
  } catch (const std::exception& e) {
    return FromFaiss(e, "search");
  }
  for (int i = 0; i < k; ++i) {
    if (labels[i] >= 0) out.emplace_back(labels[i], dist[i]);
  }
  return out;
}

absl::Status VectorIndex::Write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  try {
    faiss::write_index(index_.get(), tmp.c_str());
  } catch (const std::exception& e) {
    return FromFaiss(e, absl::StrCat("writing ", tmp));
  }
  return SyncFileAndRename(tmp, path);
}

absl::Status NormalizeToUnit(std::vector<float>& v, absl::string_view field) {
  double norm = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "] is not a finite number"));
    }
    norm += double(v[i]) * v[i];
  }
  if (norm == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " has no direction (all zeros or too small)"));
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& x : v) x *= inv;
  return absl::OkStatus();
}

}  // namespace diffrank::index
