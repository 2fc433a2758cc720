// crash_common.h: what the crash test's writer writes, as pure functions of
// (batch, i), shared by crash_writer.cc and crash_test.cc.
#ifndef DIFFRANK_TESTS_INDEX_CRASH_COMMON_H_
#define DIFFRANK_TESTS_INDEX_CRASH_COMMON_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/collection.h"

namespace diffrank::crash {

constexpr int kDim = 32;
constexpr int kPerBatch = 10;

inline index::CollectionOptions Options(const std::string& dir) {
  index::CollectionOptions o;
  o.dir = dir;
  o.model_id = "crash-test";
  o.dimension = kDim;
  o.factory = "HNSW32";
  o.snapshot_every = 120;  // frequent automatic snapshots too
  return o;                // sync_full = true: the real durability setting
}

inline std::string Id(int64_t batch, int i) {
  return absl::StrCat("b", batch, "_", i);
}

// Every third batch also replaces a document of an earlier batch: its text
// then names the replacing batch.
inline std::vector<float> Vector(const std::string& id, int64_t version) {
  std::mt19937 rng(std::hash<std::string>()(id) ^
                   static_cast<uint64_t>(version));
  std::normal_distribution<float> n(0, 1);
  std::vector<float> v(kDim);
  double norm = 0;
  for (float& x : v) {
    x = n(rng);
    norm += double(x) * x;
  }
  for (float& x : v) x = static_cast<float>(x / std::sqrt(norm));
  return v;
}

inline std::string Text(const std::string& id, int64_t version) {
  return absl::StrCat("uid", id, " version", version, " shared words here");
}

inline index::Document Make(const std::string& id, int64_t version) {
  index::Document d;
  d.id = id;
  d.text = Text(id, version);
  d.metadata = absl::StrCat(R"({"version": )", version, "}");
  d.vector = Vector(id, version);
  return d;
}

inline std::vector<index::Document> Batch(int64_t batch) {
  std::vector<index::Document> docs;
  for (int i = 0; i < kPerBatch; ++i) docs.push_back(Make(Id(batch, i), batch));
  if (batch % 3 == 0 && batch >= 3)
    docs.push_back(Make(Id(batch / 3, 0), batch));
  return docs;
}

}  // namespace diffrank::crash

#endif  // DIFFRANK_TESTS_INDEX_CRASH_COMMON_H_
