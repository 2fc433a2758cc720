// Unit tests of the encoder runtime on tiny random model directories written
// here (no Python needed): loading and its errors, padding invariance for
// every attention kind and role, and the DiffAttn V2 retrofit identity.
#include "encoder/encoder.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "encoder/cpu_features.h"
#include "encoder/safetensors.h"
#include "gtest/gtest.h"

namespace diffrank::encoder {
namespace {

namespace fs = std::filesystem;
using Weights = std::map<std::string, std::vector<float>>;

ModelConfig TinyConfig(Attention a, Role r) {
  ModelConfig c;
  c.model_id = "tiny";
  c.attention = a;
  c.role = r;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.intermediate_size = 48;
  c.max_position_embeddings = 24;
  c.max_length = 24;
  return c;
}

Weights RandomWeights(const ModelConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0, 1);
  Weights w;
  for (const ExpectedTensor& t : ExpectedTensors(c)) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    std::vector<float>& v = w[t.name];
    const bool norm = t.name.find("norm.weight") != std::string::npos ||
                      t.name.find("subln") != std::string::npos;
    for (int64_t i = 0; i < numel; ++i) {
      v.push_back(norm ? 1 + 0.1f * n(rng) : 0.2f * n(rng));
    }
  }
  return w;
}

std::vector<std::string> Vocab(int n) {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]"};
  for (int i = 4; i < n; ++i) v.push_back(absl::StrCat("w", i));
  return v;
}

// WriteModel writes config `c` with weights `w`, whose shapes follow
// `shapes_from` (default: `c`).
std::string WriteModel(const std::string& name, const ModelConfig& c,
                       const Weights& w,
                       const ModelConfig* shapes_from = nullptr) {
  // Per process: ctest -j runs this binary's tests, and their avx2/ copies,
  // side by side.
  const std::string dir =
      absl::StrCat(testing::TempDir(), "/", name, "_", getpid());
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json") << ModelConfigToJson(c);
  std::ofstream vocab(dir + "/vocab.txt");
  for (const std::string& t : Vocab(c.vocab_size)) vocab << t << "\n";
  vocab.close();
  std::vector<TensorToWrite> tensors;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const ExpectedTensor& t :
       ExpectedTensors(shapes_from ? *shapes_from : c)) {
    shapes[t.name] = t.shape;
  }
  for (const auto& [tname, v] : w) {
    std::vector<int64_t> shape = shapes.count(tname)
                                     ? shapes[tname]
                                     : std::vector<int64_t>{int64_t(v.size())};
    tensors.push_back(
        {tname, DType::kF32, shape,
         absl::string_view(reinterpret_cast<const char*>(v.data()),
                           v.size() * sizeof(float))});
  }
  EXPECT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
  return dir;
}

std::unique_ptr<Encoder> Load(const std::string& dir,
                              Precision precision = Precision::kAuto,
                              bool fused_attention = true) {
  EncoderOptions o;
  o.model_dir = dir;
  o.device = Device::kCpu;
  o.precision = precision;
  o.fused_cpu_attention = fused_attention;
  auto e = Encoder::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

absl::Status LoadStatus(const std::string& dir) {
  EncoderOptions o;
  o.model_dir = dir;
  o.device = Device::kCpu;
  return Encoder::Create(o).status();
}

class AllKinds : public testing::TestWithParam<std::tuple<Attention, Role>> {
 protected:
  // A tiny random model of this test's attention kind and role, written under
  // a name unique to the test and kind.
  std::string WriteKindModel(const std::string& prefix, uint32_t seed) {
    const auto [attention, role] = GetParam();
    const ModelConfig c = TinyConfig(attention, role);
    return WriteModel(absl::StrCat(prefix, "_", AttentionName(attention), "_",
                                   RoleName(role)),
                      c, RandomWeights(c, seed));
  }
};

TEST_P(AllKinds, MixedLengthBatchEqualsEachTextAlone) {
  const Role role = std::get<1>(GetParam());
  const std::string dir = WriteKindModel("kinds", 7);
  auto enc = Load(dir);
  ASSERT_NE(enc, nullptr);
  const std::vector<std::string> texts = {"w5 w6 w7 w8 w9 w10 w11", "w12",
                                          "w13 w14 w15"};
  auto run = [&](const std::vector<std::string>& batch) {
    if (role == Role::kBiEncoder) {
      auto e = enc->Embed(batch);
      EXPECT_TRUE(e.ok()) << e.status();
      return e->values;
    }
    auto s = enc->Score("w20 w21", batch);
    EXPECT_TRUE(s.ok()) << s.status();
    return *s;
  };
  const std::vector<float> together = run(texts);
  const size_t per = together.size() / texts.size();
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<float> alone = run({texts[i]});
    ASSERT_EQ(alone.size(), per);
    for (size_t k = 0; k < per; ++k) {
      EXPECT_NEAR(together[i * per + k], alone[k], 1e-5) << i << "," << k;
    }
  }
  if (role == Role::kBiEncoder) {
    double norm = 0;
    for (size_t k = 0; k < per; ++k) norm += together[k] * together[k];
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
}

// Up to 64 rows the output projection, the FFN and the next layer's q|k|v
// run as row tasks (transformer.h SublayersByRows); a batch of more rows
// runs them a projection at a time. Each text gets the same result either way,
// post-norm and pre-norm, in float32 and int8 (on AVX2 the packed GEMMs: the
// avx2/ copy of this test).
TEST_P(AllKinds, RowTasksGiveTheProjectionAtATimeAnswer) {
  const auto [attention, role] = GetParam();
  std::vector<std::string> texts;
  for (int i = 0; i < 12; ++i) {
    std::string t;
    for (int k = 0; k < 7; ++k)
      absl::StrAppend(&t, "w", 4 + (i * 7 + k) % 36, " ");
    texts.push_back(t);
  }
  for (const NormPlacement norm : {NormPlacement::kPost, NormPlacement::kPre}) {
    ModelConfig c = TinyConfig(attention, role);
    c.norm = norm;
    const std::string dir = WriteModel(
        absl::StrCat("rows_", AttentionName(attention), "_", RoleName(role),
                     norm == NormPlacement::kPre ? "_pre" : "_post"),
        c, RandomWeights(c, 11));
    for (const Precision precision : {Precision::kFloat32, Precision::kInt8}) {
      auto enc = Load(dir, precision);
      ASSERT_NE(enc, nullptr);
      auto run = [&](const std::vector<std::string>& batch) {
        if (role == Role::kBiEncoder) {
          auto e = enc->Embed(batch);
          EXPECT_TRUE(e.ok()) << e.status();
          return e.ok() ? e->values : std::vector<float>();
        }
        auto s = enc->Score("w20 w21", batch);
        EXPECT_TRUE(s.ok()) << s.status();
        return s.ok() ? *s : std::vector<float>();
      };
      // 12 texts of 9 tokens (a pair: 12): 108 rows together, 9 alone.
      const std::vector<float> together = run(texts);
      ASSERT_EQ(together.size() % texts.size(), 0u);
      const size_t per = together.size() / texts.size();
      for (size_t i = 0; i < texts.size(); ++i) {
        const std::vector<float> alone = run({texts[i]});
        ASSERT_EQ(alone.size(), per);
        for (size_t k = 0; k < per; ++k) {
          EXPECT_NEAR(together[i * per + k], alone[k], 1e-5)
              << (norm == NormPlacement::kPre ? "pre" : "post") << " "
              << enc->device() << " text " << i << " value " << k;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Encoder, AllKinds,
    testing::Combine(testing::Values(Attention::kBaseline, Attention::kDiffV1,
                                     Attention::kDiffV2),
                     testing::Values(Role::kBiEncoder, Role::kCrossEncoder)));

TEST(Encoder, RetrofittedV2StartsEqualToBaseline) {
  // DIFFATTN.md: duplicate each query head into the pair, W_lambda = 0,
  // W_o *= 2. The V2 model must then compute what the baseline computes.
  ModelConfig base = TinyConfig(Attention::kBaseline, Role::kBiEncoder);
  Weights wb = RandomWeights(base, 11);
  ModelConfig v2 = base;
  v2.attention = Attention::kDiffV2;
  Weights wv = wb;
  const int dh = base.head_dim(), d = base.hidden_size, h = base.num_heads;
  for (int l = 0; l < base.num_layers; ++l) {
    const std::string p = absl::StrCat("layers.", l, ".attn.");
    std::vector<float> q, qb;
    for (int head = 0; head < h; ++head) {
      for (int copy = 0; copy < 2; ++copy) {
        q.insert(q.end(), wb[p + "q.weight"].begin() + head * dh * d,
                 wb[p + "q.weight"].begin() + (head + 1) * dh * d);
        qb.insert(qb.end(), wb[p + "q.bias"].begin() + head * dh,
                  wb[p + "q.bias"].begin() + (head + 1) * dh);
      }
    }
    wv[p + "q.weight"] = q;
    wv[p + "q.bias"] = qb;
    wv[p + "lambda.weight"] = std::vector<float>(h * d, 0.0f);
    for (float& x : wv[p + "o.weight"]) x *= 2;
  }
  auto eb = Load(WriteModel("retro_base", base, wb));
  auto ev = Load(WriteModel("retro_v2", v2, wv));
  ASSERT_NE(eb, nullptr);
  ASSERT_NE(ev, nullptr);
  auto a = eb->Embed({"w4 w9 w30 w31", "w7"});
  auto b = ev->Embed({"w4 w9 w30 w31", "w7"});
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < a->values.size(); ++i) {
    EXPECT_NEAR(a->values[i], b->values[i], 1e-5);
  }
}

// int8 dynamic quantization stays close to float32 for every attention kind:
// embeddings by cosine, logits relative to their spread.
TEST_P(AllKinds, Int8IsCloseToFloat32) {
  const Role role = std::get<1>(GetParam());
  const std::string dir = WriteKindModel("int8", 9);
  auto f32 = Load(dir);
  auto i8 = Load(dir, Precision::kInt8);
  ASSERT_NE(f32, nullptr);
  ASSERT_NE(i8, nullptr);
  EXPECT_NE(i8->device().find("int8"), std::string::npos) << i8->device();
  std::vector<std::string> texts;
  for (int i = 0; i < 12; ++i) {
    std::string t;
    for (int k = 0; k <= i % 7 + 2; ++k)
      absl::StrAppend(&t, "w", 4 + (i * 5 + k * 3) % 36, " ");
    texts.push_back(t);
  }
  if (role == Role::kBiEncoder) {
    auto a = f32->Embed(texts);
    auto b = i8->Embed(texts);
    ASSERT_TRUE(a.ok() && b.ok());
    for (int r = 0; r < a->rows; ++r) {
      double dot = 0;
      for (int k = 0; k < a->dim; ++k) dot += a->row(r)[k] * b->row(r)[k];
      EXPECT_GT(dot, 0.99) << "row " << r;  // both L2-normalized
    }
  } else {
    auto a = f32->Score("w20 w21", texts);
    auto b = i8->Score("w20 w21", texts);
    ASSERT_TRUE(a.ok() && b.ok());
    const auto [lo, hi] = std::minmax_element(a->begin(), a->end());
    const float spread = *hi - *lo;
    ASSERT_GT(spread, 0);
    // A wiring error (bias, layout, scale) moves logits by the spread or
    // more; quantization noise of these random 32-wide layers by a few %.
    for (size_t i = 0; i < a->size(); ++i) {
      EXPECT_NEAR((*a)[i], (*b)[i], 0.1 * spread) << "pair " << i;
    }
    EXPECT_NE(*a, *b) << "int8 gave float32's exact logits: not quantized?";
  }
}

// The fused CPU attention (cpu_attention.h) gives LibTorch's answer in every
// precision it takes: float32 to rounding, int8 the same (its activations are
// float32), bfloat16 within bfloat16's rounding (the fused loops compute in
// float32, LibTorch's ops round each intermediate). Where the model or the
// CPU does not take the fused path both loads are LibTorch's, and equal.
// Either way a text's result does not depend on its batch (one path per
// model for every batch size).
TEST_P(AllKinds, FusedAttentionGivesLibTorchsAnswer) {
  const auto [attention, role] = GetParam();
  std::vector<std::string> dirs = {WriteKindModel("fused", 11)};
  if (role == Role::kCrossEncoder && attention != Attention::kDiffV1) {
    // and the segments layout (not defined for V1)
    ModelConfig c = TinyConfig(attention, role);
    c.pair_mode = PairMode::kSegments;
    c.max_query_length = 8;
    dirs.push_back(
        WriteModel(absl::StrCat("fused_seg_", AttentionName(attention)), c,
                   RandomWeights(c, 12)));
  }
  std::vector<std::string> texts;
  for (int i = 0; i < 9; ++i) {
    std::string t;
    for (int k = 0; k <= (i * 5) % 17; ++k)
      absl::StrAppend(&t, "w", 4 + (i * 7 + k * 3) % 36, " ");
    texts.push_back(t);
  }
  std::vector<std::pair<Precision, double>> cases = {
      {Precision::kFloat32, 1e-5}};
  if (Int8DotProducts()) cases.push_back({Precision::kInt8, 1e-4});
  if (NativeBf16()) cases.push_back({Precision::kBFloat16, 0.02});
  for (const std::string& dir : dirs) {
    for (const auto& [precision, tolerance] : cases) {
      auto fused = Load(dir, precision, true);
      auto torch_ops = Load(dir, precision, false);
      ASSERT_NE(fused, nullptr);
      ASSERT_NE(torch_ops, nullptr);
      EXPECT_NE(torch_ops->kernels().find("attention torch"), std::string::npos)
          << torch_ops->kernels();
      // DiffAttn V2 takes the fused path wherever AVX2 runs, in bfloat16
      // only with the segments layout (transformer.cc).
      const bool segments = dir.find("fused_seg_") != std::string::npos;
      if (attention == Attention::kDiffV2 && ActiveIsa() >= CpuIsa::kAvx2 &&
          (precision != Precision::kBFloat16 || segments)) {
        EXPECT_NE(fused->kernels().find("attention diffrank"),
                  std::string::npos)
            << fused->kernels();
      }
      // The whole batch, its first three texts and its fourth alone.
      std::vector<float> batch_row3;
      for (size_t n : {texts.size(), size_t{3}, size_t{1}}) {
        const std::vector<std::string> batch =
            n == 1 ? std::vector<std::string>{texts[3]}
                   : std::vector<std::string>(texts.begin(), texts.begin() + n);
        std::vector<float> a, b;
        if (role == Role::kBiEncoder) {
          auto x = fused->Embed(batch);
          auto y = torch_ops->Embed(batch);
          ASSERT_TRUE(x.ok() && y.ok());
          a = x->values;
          b = y->values;
        } else {
          auto x = fused->Score("w20 w21", batch);
          auto y = torch_ops->Score("w20 w21", batch);
          ASSERT_TRUE(x.ok() && y.ok());
          a = *x;
          b = *y;
        }
        ASSERT_EQ(a.size(), b.size());
        double worst = 0, scale = 0;
        for (size_t i = 0; i < a.size(); ++i) {
          worst = std::max(worst, double(std::abs(a[i] - b[i])));
          scale = std::max(scale, double(std::abs(b[i])));
        }
        EXPECT_LE(worst, tolerance * std::max(1.0, scale))
            << dir << ", " << n << " texts, precision "
            << static_cast<int>(precision) << ": " << fused->kernels();
        const size_t per = a.size() / n;
        if (n == texts.size()) {
          batch_row3.assign(a.begin() + 3 * per, a.begin() + 4 * per);
        } else if (n == 1) {
          ASSERT_EQ(a.size(), batch_row3.size());
          for (size_t i = 0; i < a.size(); ++i) {
            EXPECT_NEAR(a[i], batch_row3[i], 1e-5)
                << dir << ", precision " << static_cast<int>(precision)
                << ": text 3 alone vs in its batch, value " << i;
          }
        }
      }
    }
  }
}

TEST(Encoder, Int8OnCudaIsRejected) {
  ModelConfig c = TinyConfig(Attention::kDiffV2, Role::kCrossEncoder);
  EncoderOptions o;
  o.model_dir = WriteModel("int8_cuda", c, RandomWeights(c, 2));
  o.device = Device::kCuda;
  o.precision = Precision::kInt8;
  absl::Status st = Encoder::Create(o).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("int8"), std::string::npos) << st;
}

TEST(Encoder, FastPrecisionPicksAFastCpuPathAndLeavesCudaAlone) {
  EXPECT_EQ(Encoder::FastPrecision(Device::kCuda, Precision::kFloat32),
            Precision::kFloat32);
  // bf16 where it is native, int8 where its dot products are exact (VNNI;
  // this LibTorch has a quantized engine: the int8 tests above load), else
  // float32 (int8 without VNNI is accurate but not faster: docs/benchmarks).
  EXPECT_EQ(Encoder::FastPrecision(Device::kCpu, Precision::kFloat32),
            NativeBf16()        ? Precision::kBFloat16
            : Int8DotProducts() ? Precision::kInt8
                                : Precision::kFloat32);
}

class LoadErrors : public testing::Test {
 protected:
  ModelConfig c_ = TinyConfig(Attention::kDiffV2, Role::kBiEncoder);
  Weights w_ = RandomWeights(c_, 3);
  void ExpectError(const std::string& dir, absl::string_view needle) {
    absl::Status st = LoadStatus(dir);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st;
  }
};

TEST_F(LoadErrors, MissingTensorIsNamed) {
  w_.erase("layers.1.attn.lambda.weight");
  ExpectError(WriteModel("e_missing", c_, w_), "layers.1.attn.lambda.weight");
}

TEST_F(LoadErrors, ExtraTensorIsNamed) {
  w_["layers.0.attn.gate"] = {1, 2, 3};
  ExpectError(WriteModel("e_extra", c_, w_), "layers.0.attn.gate");
}

TEST_F(LoadErrors, WrongShapeIsNamed) {
  ModelConfig other = c_;
  other.intermediate_size = 40;
  Weights w = RandomWeights(other, 3);
  ExpectError(WriteModel("e_shape", c_, w, &other), "layers.0.ffn.up.weight");
}

TEST_F(LoadErrors, ConfigThatDisagreesWithWeightsIsCaught) {
  const std::string dir = WriteModel("e_arch", c_, w_);
  ModelConfig v1 = c_;
  v1.attention = Attention::kBaseline;
  std::ofstream(dir + "/config.json") << ModelConfigToJson(v1);
  ExpectError(dir, "layers.0.attn.q.weight");
}

TEST_F(LoadErrors, WrongDtypeIsNamed) {
  const std::string dir = WriteModel("e_dtype", c_, w_);
  auto file = SafetensorsFile::Open(dir + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  std::vector<TensorToWrite> tensors;
  std::vector<int64_t> ints(c_.hidden_size, 1);
  for (const auto& [name, t] : (*file)->tensors()) {
    if (name == "embeddings.norm.bias") {
      tensors.push_back({name, DType::kI64, t.shape,
                         absl::string_view(reinterpret_cast<char*>(ints.data()),
                                           ints.size() * 8)});
    } else {
      tensors.push_back(
          {name, t.dtype, t.shape, absl::string_view(t.data, t.nbytes)});
    }
  }
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors).ok());
  ExpectError(dir, "embeddings.norm.bias");
}

TEST_F(LoadErrors, NonFiniteWeightsAreRejected) {
  w_["embeddings.norm.weight"][3] = std::nanf("");
  ExpectError(WriteModel("e_nan", c_, w_), "embeddings.norm.weight");
}

TEST_F(LoadErrors, VocabularySizeMismatchIsCaught) {
  const std::string dir = WriteModel("e_vocab", c_, w_);
  std::ofstream(dir + "/vocab.txt", std::ios::app) << "extra\n";
  ExpectError(dir, "vocab_size");
}

TEST_F(LoadErrors, TruncatedWeightsFileIsCaught) {
  const std::string dir = WriteModel("e_trunc", c_, w_);
  const std::string path = dir + "/model.safetensors";
  fs::resize_file(path, fs::file_size(path) - 100);
  ExpectError(dir, "model.safetensors");
}

TEST_F(LoadErrors, CorruptWeightsFileIsCaught) {
  const std::string dir = WriteModel("e_corrupt", c_, w_);
  std::ofstream(dir + "/model.safetensors") << "this is not a model";
  ExpectError(dir, "model.safetensors");
}

TEST_F(LoadErrors, UnknownArchitectureIsNamed) {
  const std::string dir = WriteModel("e_unknown", c_, w_);
  std::string json = ModelConfigToJson(c_);
  json.replace(json.find("diffattn-v2"), 11, "mamba");
  std::ofstream(dir + "/config.json") << json;
  ExpectError(dir, "architecture");
}

TEST_F(LoadErrors, MissingFilesAreNotFound) {
  EXPECT_EQ(LoadStatus(testing::TempDir() + "/no_such_model").code(),
            absl::StatusCode::kNotFound);
  const std::string dir = WriteModel("e_novocab", c_, w_);
  fs::remove(dir + "/vocab.txt");
  EXPECT_EQ(LoadStatus(dir).code(), absl::StatusCode::kNotFound);
}

TEST(Encoder, BadInputIsInvalidArgumentNotACrash) {
  ModelConfig c = TinyConfig(Attention::kDiffV2, Role::kBiEncoder);
  auto enc = Load(WriteModel("bad_input", c, RandomWeights(c, 5)));
  ASSERT_NE(enc, nullptr);
  auto e = enc->Embed({"w5", "bad \xFF utf8"});
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("texts[1]"), std::string::npos);
  TokenBatch b;
  b.batch = 1;
  b.seq_len = 2;
  b.ids = {2, 4000};
  b.type_ids = {0, 0};
  b.mask = {1, 1};
  EXPECT_EQ(enc->Run(b).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(enc->Score("q", {"p"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Long input is truncated to max_length and reported.
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "w7 ";
  auto t = enc->Embed({long_text});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->truncated[0]);
}

// A cross-encoder started from an instruction-trained bi-encoder (e5) sees
// its query / document prefixes on each side of the pair, in both layouts:
// the same ids and logits as the prefixed texts through a model without them.
TEST(Encoder, PairPrefixesAreAppliedToEachSide) {
  for (PairMode mode : {PairMode::kSegments, PairMode::kJoint}) {
    ModelConfig plain = TinyConfig(Attention::kDiffV2, Role::kCrossEncoder);
    plain.pair_mode = mode;
    plain.max_query_length = 8;
    plain.num_kv_heads = plain.num_heads;
    ModelConfig prefixed = plain;
    prefixed.query_prefix = "w5 ";
    prefixed.document_prefix = "w6 w6 ";
    const Weights w = RandomWeights(plain, 8);
    const std::string tag = mode == PairMode::kSegments ? "seg" : "joint";
    auto a =
        Load(WriteModel("pair_plain_" + tag, plain, w), Precision::kFloat32);
    auto b = Load(WriteModel("pair_prefixed_" + tag, prefixed, w),
                  Precision::kFloat32);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    auto want = a->EncodePair("w5 w7 w8", "w6 w6 w9 w10");
    auto got = b->EncodePair("w7 w8", "w9 w10");
    ASSERT_TRUE(want.ok() && got.ok());
    EXPECT_EQ(got->ids, want->ids) << tag;
    EXPECT_EQ(got->split, want->split) << tag;
    auto sw = a->Score("w5 w7 w8", {"w6 w6 w9 w10", "w6 w6 w11"});
    auto sg = b->Score("w7 w8", {"w9 w10", "w11"});
    ASSERT_TRUE(sw.ok() && sg.ok());
    ASSERT_EQ(sg->size(), 2u);
    for (int i = 0; i < 2; ++i) EXPECT_FLOAT_EQ((*sg)[i], (*sw)[i]) << tag;
    // Without prefixes the ids differ: the test can fail.
    auto bare = a->EncodePair("w7 w8", "w9 w10");
    ASSERT_TRUE(bare.ok());
    EXPECT_NE(bare->ids, got->ids);
  }
}

}  // namespace
}  // namespace diffrank::encoder
