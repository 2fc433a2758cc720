#include "encoder/model_config.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace diffrank::encoder {
namespace {

constexpr char kValid[] = R"({
  "format": "diffrank-model", "format_version": 1, "architecture": "diffattn-v2",
  "role": "bi-encoder", "vocab_size": 100, "hidden_size": 64, "num_layers": 2,
  "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128,
  "max_position_embeddings": 64, "max_length": 32})";

TEST(ModelConfig, ParsesAndRoundTrips) {
  auto c = ParseModelConfig(kValid, "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->attention, Attention::kDiffV2);
  EXPECT_EQ(c->head_dim(), 16);
  EXPECT_EQ(c->max_length, 32);
  auto again = ParseModelConfig(ModelConfigToJson(*c), "x");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->num_kv_heads, 2);
}

TEST(ModelConfig, ErrorsNameTheFileAndField) {
  auto with = [](std::string from, std::string to) {
    std::string s = kValid;
    s.replace(s.find(from), from.size(), to);
    return ParseModelConfig(s, "m/config.json").status();
  };
  auto st = with("diffattn-v2", "diffattn-v9");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("m/config.json"), std::string::npos);
  EXPECT_NE(st.message().find("architecture"), std::string::npos);
  EXPECT_NE(with("\"num_heads\": 4", "\"num_heads\": 5")
                .message()
                .find("hidden_size"),
            std::string::npos);
  EXPECT_NE(with("\"num_kv_heads\": 2", "\"num_kv_heads\": 3")
                .message()
                .find("num_kv_heads"),
            std::string::npos);
  EXPECT_NE(with("\"max_length\": 32", "\"max_length\": 99")
                .message()
                .find("max_length"),
            std::string::npos);
  EXPECT_NE(with("\"max_length\"", "\"poolng\": \"cls\", \"max_length\"")
                .message()
                .find("poolng"),
            std::string::npos);
  EXPECT_FALSE(ParseModelConfig("[1]", "c").ok());
  EXPECT_FALSE(ParseModelConfig("{", "c").ok());
}

// Prefixes: any role (cross-encoders put them before each side of the pair);
// a wrong type or an oversized prefix is refused, naming the field.
TEST(ModelConfig, PrefixesOnEitherRoleAndTheirErrors) {
  for (const char* role : {"bi-encoder", "cross-encoder"}) {
    auto with = [&](const std::string& field) {
      std::string s = kValid;
      s.replace(s.find("bi-encoder"), 10, role);
      s.replace(s.find("\"max_length\""), 12, field + ", \"max_length\"");
      return ParseModelConfig(s, "config.json");
    };
    auto ok =
        with(R"("query_prefix": "query: ", "document_prefix": "passage: ")");
    ASSERT_TRUE(ok.ok()) << role << ": " << ok.status();
    EXPECT_EQ(ok->query_prefix, "query: ");
    EXPECT_EQ(ok->document_prefix, "passage: ");
    auto again = ParseModelConfig(ModelConfigToJson(*ok), "x");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->document_prefix, "passage: ");
    for (const std::string& bad : std::vector<std::string>{
             R"("query_prefix": 7)", R"("document_prefix": ["a"])",
             R"("document_prefix": null)",
             "\"query_prefix\": \"" + std::string(1025, 'x') + "\""}) {
      auto st = with(bad).status();
      EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << role << bad;
      EXPECT_NE(st.message().find("prefix"), std::string::npos) << st.message();
    }
  }
}

TEST(ModelConfig, CalibrationIsACrossEncodersFittedSigmoid) {
  std::string cross = kValid;
  cross.replace(cross.find("bi-encoder"), 10, "cross-encoder");
  auto with = [&](const std::string& base, const std::string& calibration) {
    std::string s = base;
    s.replace(s.find("\"max_length\": 32"), 16,
              "\"max_length\": 32, \"calibration\": " + calibration);
    return ParseModelConfig(s, "c");
  };
  auto c = with(cross, R"({"scale": 0.5, "bias": -2.25})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->calibrated);
  EXPECT_EQ(c->calibration_scale, 0.5);
  EXPECT_EQ(c->calibration_bias, -2.25);
  auto again = ParseModelConfig(ModelConfigToJson(*c), "x");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->calibration_bias, -2.25);
  auto plain = ParseModelConfig(cross, "c");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->calibrated);
  EXPECT_EQ(plain->calibration_scale, 1.0);
  for (const char* bad :
       {R"({"scale": 0, "bias": 1})", R"({"scale": -1, "bias": 1})",
        R"({"scale": 1})", R"({"scale": "1", "bias": 0})",
        R"({"scale": 1, "bias": 0, "x": 2})", "[1, 2]", "null"}) {
    auto st = with(cross, bad).status();
    EXPECT_NE(st.message().find("calibration"), std::string::npos) << bad << st;
  }
  EXPECT_NE(with(kValid, R"({"scale": 1, "bias": 0})")
                .status()
                .message()
                .find("cross-encoders only"),
            std::string::npos);
}

TEST(ModelConfig, TensorTableFollowsArchitecture) {
  auto c = *ParseModelConfig(kValid, "c");
  int lambdas = 0;
  for (const auto& t : ExpectedTensors(c)) {
    if (t.name == "layers.0.attn.q.weight") {
      EXPECT_EQ(t.shape, (std::vector<int64_t>{128, 64}));  // 2H heads
    }
    if (t.name == "layers.0.attn.k.weight") {
      EXPECT_EQ(t.shape, (std::vector<int64_t>{32, 64}));  // Hkv heads
    }
    lambdas += t.name.find("lambda") != std::string::npos;
  }
  EXPECT_EQ(lambdas, 2);
  c.attention = Attention::kDiffV1;
  for (const auto& t : ExpectedTensors(c)) {
    if (t.name == "layers.1.attn.v.weight") {
      EXPECT_EQ(t.shape, (std::vector<int64_t>{32, 64}));  // Hkv x 2 x d/(2H)
    }
  }
}

TEST(ModelConfig, SegmentsPairModeIsACrossEncoderLayout) {
  std::string s = kValid;
  s.replace(s.find("bi-encoder"), 10, "cross-encoder");
  s.replace(s.find("\"max_length\": 32"), 16,
            "\"max_length\": 32, \"pair_mode\": \"segments\", "
            "\"max_query_length\": 12");
  auto c = ParseModelConfig(s, "c");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->segments());
  EXPECT_EQ(c->max_query_length, 12);
  int gates = 0, scales = 0;
  for (const auto& t : ExpectedTensors(*c)) {
    if (t.name.find("cross_gate") != std::string::npos) {
      ++gates;
      EXPECT_EQ(t.shape, (std::vector<int64_t>{8}));  // 2H softmax heads
    }
    scales += t.name == "head.scale";
  }
  EXPECT_EQ(gates, 2);
  EXPECT_EQ(scales, 1);
  auto again = ParseModelConfig(ModelConfigToJson(*c), "x");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->segments());
  // A query budget that leaves no room for the passage, a bi-encoder with
  // segments, and V1 with segments are refused, naming the field.
  std::string tight = s;
  tight.replace(tight.find("\"max_query_length\": 12"), 22,
                "\"max_query_length\": 30");
  EXPECT_NE(
      ParseModelConfig(tight, "c").status().message().find("max_query_length"),
      std::string::npos);
  std::string bi = kValid;
  bi.replace(bi.find("\"max_length\": 32"), 16,
             "\"max_length\": 32, \"pair_mode\": \"segments\"");
  EXPECT_NE(ParseModelConfig(bi, "c").status().message().find("pair_mode"),
            std::string::npos);
  std::string v1 = s;
  v1.replace(v1.find("diffattn-v2"), 11, "diffattn-v1");
  EXPECT_NE(ParseModelConfig(v1, "c").status().message().find("pair_mode"),
            std::string::npos);
}

}  // namespace
}  // namespace diffrank::encoder
