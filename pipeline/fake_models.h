// fake_models.h: deterministic stand-ins for the two models, for tests and
// fuzzers of the layers above them (tests only; no LibTorch).
//   FakeEmbedder: bag-of-words hashing into kDim dimensions (similar texts
//                 are close).
//   FakeScorer:   scores a passage by how often it contains "gold".
#ifndef DIFFRANK_PIPELINE_FAKE_MODELS_H_
#define DIFFRANK_PIPELINE_FAKE_MODELS_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "pipeline/models.h"

namespace diffrank::pipeline::testing_fakes {

inline constexpr int kDim = 16;

// Bag-of-words hashing embedder: deterministic, similar texts are close.
// Another `id` with another `salt` is another model (other vectors).
class FakeEmbedder : public TextEmbedder {
 public:
  explicit FakeEmbedder(std::string id = "fake-embed", int salt = 0)
      : salt_(salt) {
    desc_.id = std::move(id);
  }
  absl::StatusOr<EmbedOutput> Embed(const std::vector<std::string>& texts,
                                    EmbedKind, bool,
                                    const CallContext& ctx) override {
    if (auto s = ctx.Check("embed"); !s.ok()) return s;
    ++calls;
    EmbedOutput out;
    out.dimension = kDim;
    for (const std::string& t : texts) {
      std::vector<float> v(kDim, 0.01f);
      for (absl::string_view w : absl::StrSplit(t, ' ', absl::SkipEmpty())) {
        v[(std::hash<std::string>()(std::string(w)) + salt_) % kDim] += 1;
      }
      out.values.insert(out.values.end(), v.begin(), v.end());
      out.truncated.push_back(false);
      out.tokens.push_back(1);
    }
    return out;
  }
  const ModelDescription& description() const override { return desc_; }
  int calls = 0;

 private:
  int salt_;
  ModelDescription desc_{"fake-embed", "bi-encoder", "baseline", "cpu",
                         "fake",       128,          kDim};
};

// Scores a passage by how often it contains the word "gold".
class FakeScorer : public PairScorer {
 public:
  absl::StatusOr<ScoreOutput> Score(absl::string_view,
                                    const std::vector<std::string>& passages,
                                    const CallContext&) override {
    ScoreOutput out;
    for (const std::string& p : passages) {
      float s = 0;
      for (absl::string_view w : absl::StrSplit(p, ' ')) s += (w == "gold");
      out.logits.push_back(s);
    }
    scored += passages.size();
    return out;
  }
  const ModelDescription& description() const override { return desc_; }
  void set_calibration(double scale, double bias) {
    desc_.calibration_scale = scale;
    desc_.calibration_bias = bias;
  }
  size_t scored = 0;

 private:
  ModelDescription desc_{
      "fake-rerank", "cross-encoder", "baseline", "cpu", "fake", 128, 0};
};

}  // namespace diffrank::pipeline::testing_fakes

#endif  // DIFFRANK_PIPELINE_FAKE_MODELS_H_
