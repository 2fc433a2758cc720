// model_config.h: the `config.json` of a diffrank model directory.
//
// A model directory holds `config.json` (this struct), `model.safetensors`
// (tensors named by ExpectedTensors below) and `vocab.txt` (BERT WordPiece).
// Owns: parsing and validating the config, and the table of tensor names and
// shapes that a config implies (the documented on-disk contract, shared with
// train/diffrank_ref/model.py). Does not own: loading tensors (model_loader).
// Thread-safety: plain values.
//
// Tensor names (d = hidden_size, H = num_heads, Hkv = num_kv_heads, I =
// intermediate_size; "?" = present only when the config says so):
//   embeddings.word.weight [vocab_size, d]
//   embeddings.position.weight [max_position_embeddings, d]
//   embeddings.token_type.weight [type_vocab_size, d] (type_vocab_size>0)
//   embeddings.norm.{weight,bias} [d]
//   layers.N.attn.{q,k,v}.weight, .bias?  (attention_bias)
//     baseline:    q [H*dh, d], k/v [Hkv*dh, d], dh = d/H
//     diffattn-v2: q [2H*dh, d], k/v [Hkv*dh, d], dh = d/H
//     diffattn-v1: q [2H*dh, d], k [2Hkv*dh, d], v [Hkv*2dh, d], dh = d/(2H)
//   layers.N.attn.o.weight [d, d], .bias? (attention_bias)
//   layers.N.attn.lambda.weight [H, d]                        (diffattn-v2)
//   layers.N.attn.lambda_{q1,k1,q2,k2} [dh], attn.subln.weight [2dh] (v1)
//   layers.N.attn_norm.{weight,bias} [d]
//   layers.N.ffn.up.weight [I, d], .bias? ; ffn.down.weight [d, I], .bias?
//   layers.N.ffn_norm.{weight,bias} [d]
//   final_norm.{weight,bias} [d]                              (norm = "pre")
//   head.pooler.{weight [d, d], bias [d]}, head.out.{weight [1, d], bias [1]}
//                                                            (cross-encoder)
//   layers.N.attn.cross_gate [Hq], head.scale [1]   (pair_mode "segments";
//     Hq = 2H for diffattn-v2, H for baseline)
//
// Cross-encoder pair layouts ("pair_mode"):
//   joint     [CLS] q [SEP] p [SEP], full attention, logit(tanh(pooler(h_0)));
//   segments  [CLS] q [SEP] (at most max_query_length tokens) then
//             [CLS] p [SEP] with positions restarting at 0, type ids 0; each
//             token attends to its own segment (one softmax) plus cross_gate x
//             the other segment (a second softmax); score = scale * cos(mean
//             of query tokens, mean of passage tokens) + logit(tanh(pooler(
//             h_0))). With gates and logit 0 it is the bi-encoder's cosine.
#ifndef DIFFRANK_ENCODER_MODEL_CONFIG_H_
#define DIFFRANK_ENCODER_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace diffrank::encoder {

enum class Attention { kBaseline, kDiffV1, kDiffV2 };
enum class Role { kBiEncoder, kCrossEncoder };
enum class Pooling { kMean, kCls };
enum class NormPlacement { kPost, kPre };
enum class Activation { kGelu, kGeluTanh, kRelu };
enum class PairMode { kJoint, kSegments };

absl::string_view AttentionName(Attention a);
absl::string_view RoleName(Role r);

// ModelConfig mirrors config.json; field comments give the JSON key.
struct ModelConfig {
  std::string model_id;  // "model_id": free text, reported by Info
  Attention attention = Attention::kDiffV2;  // "architecture"
  Role role = Role::kBiEncoder;     // "role": "bi-encoder" | "cross-encoder"
  int vocab_size = 0;               // "vocab_size": lines of vocab.txt
  int hidden_size = 0;              // "hidden_size"
  int num_layers = 0;               // "num_layers"
  int num_heads = 0;                // "num_heads": output heads H
  int num_kv_heads = 0;             // "num_kv_heads": divides H (default H)
  int intermediate_size = 0;        // "intermediate_size"
  int max_position_embeddings = 0;  // "max_position_embeddings"
  int type_vocab_size = 2;          // "type_vocab_size" (0 = none)
  int max_length = 0;  // "max_length": tokens per input, <= positions
  NormPlacement norm = NormPlacement::kPost;  // "norm": "post" | "pre"
  double layer_norm_eps = 1e-12;              // "layer_norm_eps"
  Activation activation = Activation::kGelu;  // "activation"
  bool attention_bias = true;        // "attention_bias": q/k/v/o biases
  bool mlp_bias = true;              // "mlp_bias": FFN biases
  Pooling pooling = Pooling::kMean;  // "pooling": "mean" | "cls" (bi-encoder)
  bool normalize = true;             // "normalize": L2-normalize embeddings
  bool lower_case = true;            // "lower_case": tokenizer lower-cases
  PairMode pair_mode = PairMode::kJoint;  // "pair_mode": "joint" | "segments"
  int max_query_length = 32;  // "max_query_length": query tokens (segments)
  // "query_prefix" / "document_prefix": text put before each query / document
  // before tokenizing (instruction-trained bi-encoders such as bge and e5, and
  // cross-encoders started from them: each side of the pair);
  // empty by default. The prefix's tokens count toward max_length.
  std::string query_prefix;
  std::string document_prefix;
  // "calibration": {"scale": a, "bias": b} (cross-encoders, optional): the
  // service reports sigmoid(a * logit + b) as a relevance probability
  // (fitted on validation data by train/fit_calibration.py); absent = a 1,
  // b 0 (the plain sigmoid of the logit).
  bool calibrated = false;
  double calibration_scale = 1.0;
  double calibration_bias = 0.0;

  // segments: a cross-encoder with the segments pair layout.
  bool segments() const {
    return role == Role::kCrossEncoder && pair_mode == PairMode::kSegments;
  }
  // attention_heads is the number of softmax query heads (2H for V2).
  int attention_heads() const;
  // head_dim is the query/key head size for this attention kind.
  int head_dim() const;
  // LambdaInit is V1's lambda_init(l) = 0.8 - 0.6 exp(-0.3 l).
  static double LambdaInit(int layer);
};

// ParseModelConfig parses config.json text; `file` names it in errors.
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json,
                                             const std::string& file);
// LoadModelConfig reads and parses a config.json file.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path);
// ModelConfigToJson serializes a config (inverse of ParseModelConfig).
std::string ModelConfigToJson(const ModelConfig& config);

// ExpectedTensor is one entry of the tensor table a config implies.
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};
// ExpectedTensors lists every tensor model.safetensors must hold, no more.
std::vector<ExpectedTensor> ExpectedTensors(const ModelConfig& config);

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_MODEL_CONFIG_H_
