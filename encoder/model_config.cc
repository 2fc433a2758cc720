// model_config.cc: config.json parsing, validation and the tensor table.
#include "encoder/model_config.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace diffrank::encoder {
namespace {

using json = nlohmann::json;

template <typename E>
struct EnumName {
  E value;
  const char* name;
};
constexpr EnumName<Attention> kAttentions[] = {
    {Attention::kDiffV2, "diffattn-v2"},
    {Attention::kDiffV1, "diffattn-v1"},
    {Attention::kBaseline, "baseline"}};
constexpr EnumName<Role> kRoles[] = {{Role::kBiEncoder, "bi-encoder"},
                                     {Role::kCrossEncoder, "cross-encoder"}};
constexpr EnumName<Pooling> kPoolings[] = {{Pooling::kMean, "mean"},
                                           {Pooling::kCls, "cls"}};
constexpr EnumName<NormPlacement> kNorms[] = {{NormPlacement::kPost, "post"},
                                              {NormPlacement::kPre, "pre"}};
constexpr EnumName<Activation> kActivations[] = {
    {Activation::kGelu, "gelu"},
    {Activation::kGeluTanh, "gelu_tanh"},
    {Activation::kRelu, "relu"}};
constexpr EnumName<PairMode> kPairModes[] = {{PairMode::kJoint, "joint"},
                                             {PairMode::kSegments, "segments"}};

template <typename E, size_t N>
absl::string_view NameOf(const EnumName<E> (&table)[N], E v) {
  for (const auto& e : table) {
    if (e.value == v) return e.name;
  }
  return "?";
}

class Reader {
 public:
  Reader(const json& j, const std::string& file) : j_(j), file_(file) {}

  absl::Status Error(absl::string_view key, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ": field \"", key, "\" ", what));
  }
  absl::Status Int(const char* key, int& out, bool required, int min, int max) {
    seen_.insert(key);
    if (!j_.contains(key)) {
      return required ? Error(key, "is required") : absl::OkStatus();
    }
    const json& v = j_[key];
    if (!v.is_number_integer()) return Error(key, "must be an integer");
    const int64_t x = v.get<int64_t>();
    if (x < min || x > max) {
      return Error(key,
                   absl::StrCat("must be in [", min, ", ", max, "], got ", x));
    }
    out = static_cast<int>(x);
    return absl::OkStatus();
  }
  absl::Status Bool(const char* key, bool& out) {
    seen_.insert(key);
    if (!j_.contains(key)) return absl::OkStatus();
    if (!j_[key].is_boolean()) return Error(key, "must be true or false");
    out = j_[key].get<bool>();
    return absl::OkStatus();
  }
  absl::Status String(const char* key, std::string& out, bool required) {
    seen_.insert(key);
    if (!j_.contains(key)) {
      return required ? Error(key, "is required") : absl::OkStatus();
    }
    if (!j_[key].is_string()) return Error(key, "must be a string");
    out = j_[key].get<std::string>();
    return absl::OkStatus();
  }
  template <typename E, size_t N>
  absl::Status Enum(const char* key, const EnumName<E> (&table)[N], E& out,
                    bool required) {
    std::string s;
    if (absl::Status st = String(key, s, required); !st.ok()) return st;
    if (!j_.contains(key)) return absl::OkStatus();
    std::vector<std::string> names;
    for (const auto& e : table) {
      if (s == e.name) {
        out = e.value;
        return absl::OkStatus();
      }
      names.push_back(absl::StrCat("\"", e.name, "\""));
    }
    return Error(key, absl::StrCat("has unknown value \"", s, "\" (expected ",
                                   absl::StrJoin(names, ", "), ")"));
  }
  absl::Status NoUnknownKeys() const {
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!seen_.count(it.key())) {
        return Error(it.key(), "is not a known setting (typo?)");
      }
    }
    return absl::OkStatus();
  }
  void Skip(const char* key) { seen_.insert(key); }

 private:
  const json& j_;
  const std::string& file_;
  std::set<std::string> seen_;
};

}  // namespace

absl::string_view AttentionName(Attention a) { return NameOf(kAttentions, a); }
absl::string_view RoleName(Role r) { return NameOf(kRoles, r); }

int ModelConfig::head_dim() const {
  return attention == Attention::kDiffV1 ? hidden_size / (2 * num_heads)
                                         : hidden_size / num_heads;
}

int ModelConfig::attention_heads() const {
  return attention == Attention::kDiffV2 ? 2 * num_heads : num_heads;
}

double ModelConfig::LambdaInit(int layer) {
  return 0.8 - 0.6 * std::exp(-0.3 * layer);
}

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view text,
                                             const std::string& file) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": not a JSON object"));
  }
  Reader r(j, file);
  ModelConfig c;
  std::string format;
  RETURN_IF_ERROR(r.String("format", format, true));
  if (format != "diffrank-model") {
    return r.Error("format", "must be \"diffrank-model\"");
  }
  int version = 0;
  RETURN_IF_ERROR(r.Int("format_version", version, true, 1, 1000));
  if (version != 1) {
    return r.Error(
        "format_version",
        absl::StrCat("is ", version, "; this build reads version 1"));
  }
  RETURN_IF_ERROR(r.String("model_id", c.model_id, false));
  RETURN_IF_ERROR(r.Enum("architecture", kAttentions, c.attention, true));
  RETURN_IF_ERROR(r.Enum("role", kRoles, c.role, true));
  RETURN_IF_ERROR(r.Int("vocab_size", c.vocab_size, true, 5, 10'000'000));
  RETURN_IF_ERROR(r.Int("hidden_size", c.hidden_size, true, 1, 65536));
  RETURN_IF_ERROR(r.Int("num_layers", c.num_layers, true, 1, 1000));
  RETURN_IF_ERROR(r.Int("num_heads", c.num_heads, true, 1, 4096));
  c.num_kv_heads = c.num_heads;
  RETURN_IF_ERROR(r.Int("num_kv_heads", c.num_kv_heads, false, 1, 4096));
  RETURN_IF_ERROR(
      r.Int("intermediate_size", c.intermediate_size, true, 1, 1 << 20));
  RETURN_IF_ERROR(r.Int("max_position_embeddings", c.max_position_embeddings,
                        true, 3, 1 << 20));
  RETURN_IF_ERROR(r.Int("type_vocab_size", c.type_vocab_size, false, 0, 1024));
  c.max_length = c.max_position_embeddings;
  RETURN_IF_ERROR(
      r.Int("max_length", c.max_length, false, 3, c.max_position_embeddings));
  RETURN_IF_ERROR(r.Enum("norm", kNorms, c.norm, false));
  if (j.contains("layer_norm_eps")) {
    r.Skip("layer_norm_eps");
    if (!j["layer_norm_eps"].is_number() ||
        !(j["layer_norm_eps"].get<double>() > 0)) {
      return r.Error("layer_norm_eps", "must be a positive number");
    }
    c.layer_norm_eps = j["layer_norm_eps"].get<double>();
  }
  RETURN_IF_ERROR(r.Enum("activation", kActivations, c.activation, false));
  RETURN_IF_ERROR(r.Bool("attention_bias", c.attention_bias));
  RETURN_IF_ERROR(r.Bool("mlp_bias", c.mlp_bias));
  RETURN_IF_ERROR(r.Enum("pooling", kPoolings, c.pooling, false));
  RETURN_IF_ERROR(r.Bool("normalize", c.normalize));
  RETURN_IF_ERROR(r.Bool("lower_case", c.lower_case));
  RETURN_IF_ERROR(r.Enum("pair_mode", kPairModes, c.pair_mode, false));
  RETURN_IF_ERROR(
      r.Int("max_query_length", c.max_query_length, false, 3, 1 << 20));
  RETURN_IF_ERROR(r.String("query_prefix", c.query_prefix, false));
  RETURN_IF_ERROR(r.String("document_prefix", c.document_prefix, false));
  for (const auto& [key, value] :
       {std::pair{"query_prefix", &c.query_prefix},
        std::pair{"document_prefix", &c.document_prefix}}) {
    // Cross-encoders put them before each side of the pair (encoder.cc).
    if (value->size() > 1024) return r.Error(key, "is longer than 1024 bytes");
  }
  if (j.contains("calibration")) {
    r.Skip("calibration");
    const json& cal = j["calibration"];
    if (c.role != Role::kCrossEncoder) {
      return r.Error("calibration", "applies to cross-encoders only");
    }
    if (!cal.is_object() || cal.size() != 2 || !cal.contains("scale") ||
        !cal.contains("bias") || !cal["scale"].is_number() ||
        !cal["bias"].is_number()) {
      return r.Error("calibration",
                     "must be an object {\"scale\": number, \"bias\": number}");
    }
    c.calibration_scale = cal["scale"].get<double>();
    c.calibration_bias = cal["bias"].get<double>();
    if (!std::isfinite(c.calibration_scale) || !(c.calibration_scale > 0) ||
        !std::isfinite(c.calibration_bias)) {
      return r.Error("calibration",
                     "scale must be a positive number and bias finite");
    }
    c.calibrated = true;
  }
  RETURN_IF_ERROR(r.NoUnknownKeys());
  if (c.pair_mode == PairMode::kSegments) {
    if (c.role != Role::kCrossEncoder || c.attention == Attention::kDiffV1) {
      return r.Error("pair_mode",
                     "\"segments\" needs a diffattn-v2 or baseline "
                     "cross-encoder");
    }
    if (c.max_query_length > c.max_length - 3) {
      return r.Error("max_query_length",
                     absl::StrCat("(", c.max_query_length,
                                  ") must leave room for a passage: at most "
                                  "max_length - 3 (",
                                  c.max_length - 3, ")"));
    }
  }

  const int width_heads =
      c.attention == Attention::kDiffV1 ? 2 * c.num_heads : c.num_heads;
  if (c.hidden_size % width_heads != 0) {
    return r.Error(
        "hidden_size",
        absl::StrCat(
            "(", c.hidden_size, ") must be divisible by ",
            c.attention == Attention::kDiffV1 ? "2 * num_heads" : "num_heads",
            " (", width_heads, ")"));
  }
  if (c.num_kv_heads > c.num_heads || c.num_heads % c.num_kv_heads != 0) {
    return r.Error("num_kv_heads",
                   absl::StrCat("(", c.num_kv_heads,
                                ") must divide num_heads (", c.num_heads, ")"));
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ParseModelConfig(ss.str(), path);
}

std::string ModelConfigToJson(const ModelConfig& c) {
  json j = {{"format", "diffrank-model"},
            {"format_version", 1},
            {"model_id", c.model_id},
            {"architecture", NameOf(kAttentions, c.attention)},
            {"role", NameOf(kRoles, c.role)},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.hidden_size},
            {"num_layers", c.num_layers},
            {"num_heads", c.num_heads},
            {"num_kv_heads", c.num_kv_heads},
            {"intermediate_size", c.intermediate_size},
            {"max_position_embeddings", c.max_position_embeddings},
            {"type_vocab_size", c.type_vocab_size},
            {"max_length", c.max_length},
            {"norm", NameOf(kNorms, c.norm)},
            {"layer_norm_eps", c.layer_norm_eps},
            {"activation", NameOf(kActivations, c.activation)},
            {"attention_bias", c.attention_bias},
            {"mlp_bias", c.mlp_bias},
            {"pooling", NameOf(kPoolings, c.pooling)},
            {"normalize", c.normalize},
            {"lower_case", c.lower_case}};
  if (c.segments()) {
    j["pair_mode"] = NameOf(kPairModes, c.pair_mode);
    j["max_query_length"] = c.max_query_length;
  }
  if (!c.query_prefix.empty()) j["query_prefix"] = c.query_prefix;
  if (!c.document_prefix.empty()) j["document_prefix"] = c.document_prefix;
  if (c.calibrated) {
    j["calibration"] = {{"scale", c.calibration_scale},
                        {"bias", c.calibration_bias}};
  }
  return j.dump(2);
}

std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& c) {
  const int64_t d = c.hidden_size, h = c.num_heads, hkv = c.num_kv_heads;
  const int64_t dh = c.head_dim(), inter = c.intermediate_size;
  std::vector<ExpectedTensor> t;
  t.push_back({"embeddings.word.weight", {c.vocab_size, d}});
  t.push_back({"embeddings.position.weight", {c.max_position_embeddings, d}});
  if (c.type_vocab_size > 0) {
    t.push_back({"embeddings.token_type.weight", {c.type_vocab_size, d}});
  }
  t.push_back({"embeddings.norm.weight", {d}});
  t.push_back({"embeddings.norm.bias", {d}});
  int64_t q_out = h * dh, k_out = hkv * dh, v_out = hkv * dh;
  if (c.attention == Attention::kDiffV2) q_out = 2 * h * dh;
  if (c.attention == Attention::kDiffV1) {
    q_out = 2 * h * dh, k_out = 2 * hkv * dh, v_out = hkv * 2 * dh;
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = absl::StrCat("layers.", l, ".");
    for (auto [name, out] : {std::pair<const char*, int64_t>{"q", q_out},
                             {"k", k_out},
                             {"v", v_out},
                             {"o", d}}) {
      t.push_back({absl::StrCat(p, "attn.", name, ".weight"), {out, d}});
      if (c.attention_bias) {
        t.push_back({absl::StrCat(p, "attn.", name, ".bias"), {out}});
      }
    }
    if (c.attention == Attention::kDiffV2) {
      t.push_back({p + "attn.lambda.weight", {h, d}});
    }
    if (c.attention == Attention::kDiffV1) {
      for (const char* n :
           {"lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"}) {
        t.push_back({absl::StrCat(p, "attn.", n), {dh}});
      }
      t.push_back({p + "attn.subln.weight", {2 * dh}});
    }
    if (c.segments()) {
      t.push_back({p + "attn.cross_gate", {c.attention_heads()}});
    }
    t.push_back({p + "attn_norm.weight", {d}});
    t.push_back({p + "attn_norm.bias", {d}});
    t.push_back({p + "ffn.up.weight", {inter, d}});
    if (c.mlp_bias) t.push_back({p + "ffn.up.bias", {inter}});
    t.push_back({p + "ffn.down.weight", {d, inter}});
    if (c.mlp_bias) t.push_back({p + "ffn.down.bias", {d}});
    t.push_back({p + "ffn_norm.weight", {d}});
    t.push_back({p + "ffn_norm.bias", {d}});
  }
  if (c.norm == NormPlacement::kPre) {
    t.push_back({"final_norm.weight", {d}});
    t.push_back({"final_norm.bias", {d}});
  }
  if (c.role == Role::kCrossEncoder) {
    t.push_back({"head.pooler.weight", {d, d}});
    t.push_back({"head.pooler.bias", {d}});
    t.push_back({"head.out.weight", {1, d}});
    t.push_back({"head.out.bias", {1}});
    if (c.segments()) t.push_back({"head.scale", {1}});
  }
  return t;
}

}  // namespace diffrank::encoder
