// test_util.h: helpers shared by the index/ tests (temporary collection
// directories, options, random unit vectors, documents). Tests only.
#ifndef DIFFRANK_INDEX_TEST_UTIL_H_
#define DIFFRANK_INDEX_TEST_UTIL_H_

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "index/collection.h"

namespace diffrank::index::testing_util {

inline std::string TempDir(const std::string& name) {
  // Unique per process: ctest runs test cases in parallel processes.
  const std::string d =
      absl::StrCat(testing::TempDir(), "/coll_", getpid(), "_", name);
  std::filesystem::remove_all(d);
  return d;
}

inline CollectionOptions Opts(const std::string& dir, int dim = 8,
                              const std::string& factory = "Flat") {
  CollectionOptions o;
  o.dir = dir;
  o.model_id = "test-model";
  o.dimension = dim;
  o.factory = factory;
  o.sync_full = false;  // tests: speed over power-loss safety
  return o;
}

inline std::vector<float> RandomVector(std::mt19937& rng, int dim) {
  std::normal_distribution<float> n(0, 1);
  std::vector<float> v(dim);
  double norm = 0;
  for (float& x : v) {
    x = n(rng);
    norm += double(x) * x;
  }
  for (float& x : v) x /= std::sqrt(norm);
  return v;
}

inline Document Doc(const std::string& id, const std::string& text,
                    std::vector<float> v, const std::string& meta = "{}") {
  Document d;
  d.id = id;
  d.text = text;
  d.metadata = meta;
  d.vector = std::move(v);
  return d;
}

}  // namespace diffrank::index::testing_util

#endif  // DIFFRANK_INDEX_TEST_UTIL_H_
