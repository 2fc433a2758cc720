// types.h: the nouns of a collection, shared by every index/ header.
//
// Document: what a caller stores. Hit: one retrieved document with the
// scores and ranks each retriever gave it. Plain values; thread-compatible.
#ifndef DIFFRANK_INDEX_TYPES_H_
#define DIFFRANK_INDEX_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace diffrank::index {

// Document is one stored unit: a caller-chosen string id, text, optional
// title, metadata (a JSON object as text, "{}" when empty) and its embedding.
struct Document {
  std::string id;
  std::string title;
  std::string text;
  std::string metadata = "{}";
  std::vector<float> vector;  // unit-normalized by the collection on upsert
};

// Hit is one search result. Scores of a retriever that did not return the
// document are absent; ranks are 1-based.
struct Hit {
  std::string id;
  double score = 0;  // the fused (or single-retriever) score, higher is better
  std::optional<double> dense_score;    // inner product of unit vectors
  std::optional<double> lexical_score;  // BM25 (higher is better)
  std::optional<int> dense_rank;
  std::optional<int> lexical_rank;
};

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_TYPES_H_
