// rerank_fusion.cc: standardized cross-encoder scores plus a weighted
// reciprocal-rank prior (rerank_fusion.h).
#include "pipeline/rerank_fusion.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace diffrank::pipeline {
namespace {

std::vector<double> Standardized(std::vector<double> v) {
  if (v.empty()) return v;
  double mean = 0;
  for (double x : v) mean += x;
  mean /= v.size();
  double var = 0;
  for (double x : v) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / v.size());
  for (double& x : v) x = sd > 1e-12 ? (x - mean) / sd : 0.0;
  return v;
}

}  // namespace

absl::Status ValidateFusionWeight(double weight, absl::string_view field) {
  if (!std::isfinite(weight) || weight < 0 || weight > kMaxFusionWeight) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be between 0 and ", kMaxFusionWeight,
                     " (got ", weight, ")"));
  }
  return absl::OkStatus();
}

std::vector<double> FuseWithFirstStage(const std::vector<float>& logits,
                                       double weight) {
  std::vector<double> out(logits.begin(), logits.end());
  if (weight == 0 || out.empty()) return out;
  std::vector<double> prior(out.size());
  for (size_t i = 0; i < prior.size(); ++i) prior[i] = 1.0 / (61.0 + i);
  out = Standardized(std::move(out));
  prior = Standardized(std::move(prior));
  for (size_t i = 0; i < out.size(); ++i) out[i] += weight * prior[i];
  return out;
}

}  // namespace diffrank::pipeline
