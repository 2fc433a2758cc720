// diffrank-rerank: the service's reranking stage over a file of candidate
// lists, offline (what scripts/eval --rerank-set measures).
//
//   diffrank-rerank --model DIR [--depth N] [--fusion_weight W]
//                   [--precision auto|float32|bfloat16|int8] [--threads N]
//                   < lists.jsonl > orders.jsonl
// Each input line is {"query": "...", "passages": ["...", ...]} with the
// passages in first-stage order (best first). Each output line is
// {"order": [passage indices, best first], "logits": [...], "scores": [...]}
// for the reranked head: the first `depth` passages scored by the
// cross-encoder and fused with their first-stage order exactly as Search
// does (pipeline/rerank_fusion.h), followed by the rest in their order.
// Defaults are the server's: depth = limits.default_rerank_depth, fusion
// weight = limits.default_rerank_fusion_weight, precision auto = the
// reranker's precision on this CPU (Encoder::FastPrecision).
#include <algorithm>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "encoder/encoder.h"
#include "nlohmann/json.hpp"
#include "pipeline/rerank_fusion.h"
#include "pipeline/types.h"

namespace de = diffrank::encoder;
namespace dp = diffrank::pipeline;

int main(int argc, char** argv) {
  CLI::App app{"diffrank-rerank: the service's reranking stage, offline"};
  const dp::Limits defaults;
  std::string model, precision = "auto";
  int depth = defaults.default_rerank_depth, threads = 0;
  double weight = defaults.default_rerank_fusion_weight;
  app.add_option("--model", model, "cross-encoder model directory")->required();
  app.add_option("--depth", depth, "passages reranked per list")
      ->check(CLI::Range(1, defaults.max_rerank_documents));
  app.add_option("--fusion_weight", weight,
                 "weight of the first-stage order (rerank_fusion.h)");
  app.add_option("--precision", precision, "auto|float32|bfloat16|int8");
  app.add_option("--threads", threads, "CPU threads (0 = all cores)");
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = dp::ValidateFusionWeight(weight, "--fusion_weight");
      !s.ok()) {
    std::cerr << "diffrank-rerank: " << s.message() << "\n";
    return 2;
  }
  de::EncoderOptions options;
  options.model_dir = model;
  options.device = de::Device::kCpu;
  options.num_threads = threads;
  if (precision == "auto") {
    options.precision =
        de::Encoder::FastPrecision(de::Device::kCpu, de::Precision::kFloat32);
  } else if (precision == "float32") {
    options.precision = de::Precision::kFloat32;
  } else if (precision == "bfloat16") {
    options.precision = de::Precision::kBFloat16;
  } else if (precision == "int8") {
    options.precision = de::Precision::kInt8;
  } else {
    std::cerr << "diffrank-rerank: --precision must be auto, float32, "
                 "bfloat16 or int8\n";
    return 2;
  }
  auto encoder = de::Encoder::Create(options);
  if (!encoder.ok()) {
    std::cerr << "diffrank-rerank: " << encoder.status().message() << "\n";
    return 1;
  }
  std::cerr << "diffrank-rerank: " << model << " on " << (*encoder)->device()
            << ", depth " << depth << ", fusion weight " << weight << "\n";
  std::string line;
  for (int lineno = 1; std::getline(std::cin, line); ++lineno) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("query") ||
        !j["query"].is_string() || !j.contains("passages") ||
        !j["passages"].is_array()) {
      std::cerr << "diffrank-rerank: line " << lineno
                << ": needs {\"query\": string, \"passages\": [string]}\n";
      return 1;
    }
    std::vector<std::string> passages;
    for (const auto& p : j["passages"]) {
      if (!p.is_string()) {
        std::cerr << "diffrank-rerank: line " << lineno
                  << ": passages must be strings\n";
        return 1;
      }
      passages.push_back(p.get<std::string>());
    }
    const size_t n = std::min<size_t>(depth, passages.size());
    std::vector<std::string> head(passages.begin(), passages.begin() + n);
    auto logits = (*encoder)->Score(j["query"].get<std::string>(), head);
    if (!logits.ok()) {
      std::cerr << "diffrank-rerank: line " << lineno << ": "
                << logits.status().message() << "\n";
      return 1;
    }
    const std::vector<double> scores = dp::FuseWithFirstStage(*logits, weight);
    std::vector<int> order(passages.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.begin() + n,
                     [&](int a, int b) { return scores[a] > scores[b]; });
    nlohmann::json out = {
        {"order", order}, {"logits", *logits}, {"scores", scores}};
    std::cout << out.dump() << "\n";
  }
  return 0;
}
