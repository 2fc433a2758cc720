// fusion.cc: RRF and weighted score fusion.
#include "index/fusion.h"

#include <algorithm>
#include <limits>
#include <map>

namespace diffrank::index {
namespace {

// MinMax maps scores to [0, 1] (all equal -> 1).
std::vector<double> MinMax(const std::vector<double>& s) {
  if (s.empty()) return {};
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  std::vector<double> out;
  out.reserve(s.size());
  for (double x : s) out.push_back(*hi > *lo ? (x - *lo) / (*hi - *lo) : 1.0);
  return out;
}

}  // namespace

std::vector<Hit> Fuse(const std::vector<Hit>& dense,
                      const std::vector<Hit>& lexical,
                      const FusionOptions& options, int top_k) {
  std::map<std::string, Hit> merged;
  std::vector<double> ds, ls;
  for (const Hit& h : dense) ds.push_back(h.dense_score.value_or(0));
  for (const Hit& h : lexical) ls.push_back(h.lexical_score.value_or(0));
  const std::vector<double> dn = MinMax(ds), ln = MinMax(ls);
  const bool rrf = options.method == FusionOptions::Method::kRrf;
  for (size_t i = 0; i < dense.size(); ++i) {
    Hit& h = merged[dense[i].id];
    h.id = dense[i].id;
    h.dense_score = dense[i].dense_score;
    h.dense_rank = static_cast<int>(i) + 1;
    h.score +=
        rrf ? 1.0 / (options.rrf_k + i + 1) : options.dense_weight * dn[i];
  }
  for (size_t i = 0; i < lexical.size(); ++i) {
    Hit& h = merged[lexical[i].id];
    h.id = lexical[i].id;
    h.lexical_score = lexical[i].lexical_score;
    h.lexical_rank = static_cast<int>(i) + 1;
    h.score += rrf ? 1.0 / (options.rrf_k + i + 1)
                   : (1 - options.dense_weight) * ln[i];
  }
  std::vector<Hit> out;
  out.reserve(merged.size());
  for (auto& [id, h] : merged) out.push_back(std::move(h));
  std::sort(out.begin(), out.end(), [](const Hit& a, const Hit& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  });
  if (top_k >= 0 && static_cast<int>(out.size()) > top_k) out.resize(top_k);
  return out;
}

}  // namespace diffrank::index
