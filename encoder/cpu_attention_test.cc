// cpu_attention_test.cc: the fused CPU attention against LibTorch ops:
// plain and grouped heads, DiffAttn V2 pairs, padded keys, every sequence
// length from 1 to past the cached ones, concurrent callers, bad layouts.
#include "encoder/cpu_attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <thread>
#include <vector>

namespace diffrank::encoder {
namespace {

struct Shape {
  int64_t q_heads, kv_heads, dh;
  bool pairs;
};

// softmax(q k^T + mask) v per query head (head j uses K/V head j / rep),
// then o_2i - lambda_i o_2i+1 with pairs. With segments [B, T] and gate [Hq]:
// softmax over the own segment's keys + gate_j x softmax over the other's
// (an empty side, a row of NaNs in LibTorch, adds nothing).
torch::Tensor Reference(const torch::Tensor& qkv, const torch::Tensor& mask,
                        const torch::Tensor& lambda, const Shape& s,
                        const torch::Tensor& segments = {},
                        const torch::Tensor& gate = {}) {
  const int64_t b = qkv.size(0), t = qkv.size(1), rep = s.q_heads / s.kv_heads;
  auto heads = [&](int64_t offset, int64_t n) {
    return qkv.narrow(-1, offset, n * s.dh)
        .view({b, t, n, s.dh})
        .transpose(1, 2);
  };
  torch::Tensor q = heads(0, s.q_heads);
  torch::Tensor k =
      heads(s.q_heads * s.dh, s.kv_heads).repeat_interleave(rep, 1);
  torch::Tensor v = heads((s.q_heads + s.kv_heads) * s.dh, s.kv_heads)
                        .repeat_interleave(rep, 1);
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) + mask;
  torch::Tensor p;
  if (segments.defined()) {
    const float inf = std::numeric_limits<float>::infinity();
    const torch::Tensor same =
        segments.unsqueeze(2).eq(segments.unsqueeze(1)).unsqueeze(1);
    const torch::Tensor own =
        torch::zeros_like(scores).masked_fill(same.logical_not(), -inf);
    const torch::Tensor other =
        torch::zeros_like(scores).masked_fill(same, -inf);
    p = (scores + own).softmax(-1).nan_to_num(0) +
        gate.view({1, s.q_heads, 1, 1}) *
            (scores + other).softmax(-1).nan_to_num(0);
  } else {
    p = scores.softmax(-1);
  }
  torch::Tensor o = torch::matmul(p, v).transpose(1, 2);  // [B, T, Hq, dh]
  if (!s.pairs) return o.reshape({b, t, s.q_heads * s.dh});
  o = o.reshape({b, t, s.q_heads / 2, 2, s.dh});
  return (o.select(3, 0) - lambda.unsqueeze(-1) * o.select(3, 1))
      .reshape({b, t, s.q_heads / 2 * s.dh});
}

struct Inputs {
  torch::Tensor qkv, mask, lambda, segments, gate;
};

// Rows padded from a random length on (row 0 never padded; every row keeps
// at least its first key).
Inputs MakeInputs(int64_t b, int64_t t, const Shape& s, int seed) {
  torch::manual_seed(seed);
  Inputs in;
  in.qkv = torch::randn({b, t, (s.q_heads + 2 * s.kv_heads) * s.dh});
  torch::Tensor keep = torch::ones({b, t}, torch::kBool);
  for (int64_t i = 1; i < b; ++i) {
    const int64_t len = 1 + (i * 7 + seed) % t;
    keep[i].narrow(0, len, t - len).fill_(false);
  }
  in.mask = torch::zeros({b, 1, 1, t})
                .masked_fill_(keep.logical_not().view({b, 1, 1, t}),
                              -std::numeric_limits<float>::infinity());
  if (s.pairs) in.lambda = torch::rand({b, t, s.q_heads / 2});
  // A cross-encoder's pair: the query segment first (from 1 to 5 tokens),
  // then the document, padding counted with it (as the encoder does).
  in.segments = torch::ones({b, t}, torch::kLong);
  for (int64_t i = 0; i < b; ++i) {
    in.segments[i]
        .narrow(0, 0, std::min<int64_t>(t, 1 + (i + seed) % 5))
        .fill_(0);
  }
  in.gate = torch::rand({s.q_heads}) * 2 - 0.5;
  return in;
}

double MaxError(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>();
}

class CpuAttentionTest : public ::testing::TestWithParam<Shape> {};

TEST_P(CpuAttentionTest, MatchesLibTorchAtEveryLength) {
  const Shape s = GetParam();
  absl::StatusOr<CpuAttention> a =
      CpuAttention::Create(s.q_heads, s.kv_heads, s.dh, s.pairs);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->Kernel().rfind("diffrank ", 0), 0u) << a->Kernel();
  for (int64_t t : {1, 2, 7, 32, 33, 64, 65, 128, 131}) {
    for (int64_t b : {1, 3}) {
      Inputs in = MakeInputs(b, t, s, static_cast<int>(t + b));
      torch::Tensor got = a->Attend(in.qkv, in.mask, in.lambda);
      torch::Tensor want = Reference(in.qkv, in.mask, in.lambda, s);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_LT(MaxError(got, want), 1e-4) << "b " << b << " t " << t;
    }
  }
}

// bfloat16 activations: computed in float32 from the rounded inputs, so the
// answer is the float32 reference of those inputs, rounded once (half an
// ulp of bfloat16: 2^-9 relative), far closer than LibTorch's bfloat16 ops.
TEST_P(CpuAttentionTest, Bfloat16IsFloat32RoundedOnce) {
  const Shape s = GetParam();
  absl::StatusOr<CpuAttention> a =
      CpuAttention::Create(s.q_heads, s.kv_heads, s.dh, s.pairs);
  ASSERT_TRUE(a.ok()) << a.status();
  for (int64_t t : {1, 7, 33, 128}) {
    for (int64_t b : {1, 3}) {
      Inputs in = MakeInputs(b, t, s, static_cast<int>(t + b));
      const torch::Tensor qkv = in.qkv.to(torch::kBFloat16);
      const torch::Tensor mask = in.mask.to(torch::kBFloat16);
      const torch::Tensor lambda =
          in.lambda.defined() ? in.lambda.to(torch::kBFloat16) : in.lambda;
      torch::Tensor got = a->Attend(qkv, mask, lambda);
      ASSERT_EQ(got.scalar_type(), torch::kBFloat16);
      torch::Tensor want =
          Reference(qkv.to(torch::kFloat32), in.mask,
                    lambda.defined() ? lambda.to(torch::kFloat32) : lambda, s);
      ASSERT_EQ(got.sizes(), want.sizes());
      const torch::Tensor err = (got.to(torch::kFloat32) - want).abs();
      const torch::Tensor bound = want.abs() * (1.0 / 256) + 1e-4;
      EXPECT_TRUE(err.le(bound).all().item<bool>())
          << "b " << b << " t " << t << " max error "
          << err.max().item<double>();
      // Rounded to nearest: the float32 answer rounded is what came out,
      // but for ties and float32 noise at the rounding boundary.
      const double exact = got.eq(want.to(torch::kBFloat16))
                               .to(torch::kFloat32)
                               .mean()
                               .item<double>();
      EXPECT_GT(exact, 0.97) << "b " << b << " t " << t;
    }
  }
}

// The segments layout of the cross-encoders (transformer.h): own-segment
// softmax + gate x other-segment softmax, in float32 and bfloat16; rows whose
// keys are all one segment (short or padded pairs) have an empty side.
TEST_P(CpuAttentionTest, SegmentsMatchLibTorch) {
  const Shape s = GetParam();
  absl::StatusOr<CpuAttention> a =
      CpuAttention::Create(s.q_heads, s.kv_heads, s.dh, s.pairs);
  ASSERT_TRUE(a.ok()) << a.status();
  for (int64_t t : {1, 2, 7, 33, 64, 131}) {
    for (int64_t b : {1, 4}) {
      Inputs in = MakeInputs(b, t, s, static_cast<int>(t * 3 + b));
      torch::Tensor got =
          a->Attend(in.qkv, in.mask, in.lambda, in.segments, in.gate);
      torch::Tensor want =
          Reference(in.qkv, in.mask, in.lambda, s, in.segments, in.gate);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_LT(MaxError(got, want), 1e-4) << "b " << b << " t " << t;
      const torch::Tensor lambda16 =
          in.lambda.defined() ? in.lambda.to(torch::kBFloat16) : in.lambda;
      torch::Tensor got16 =
          a->Attend(in.qkv.to(torch::kBFloat16), in.mask, lambda16, in.segments,
                    in.gate.to(torch::kBFloat16));
      torch::Tensor want16 = Reference(
          in.qkv.to(torch::kBFloat16).to(torch::kFloat32), in.mask,
          lambda16.defined() ? lambda16.to(torch::kFloat32) : lambda16, s,
          in.segments, in.gate.to(torch::kBFloat16).to(torch::kFloat32));
      EXPECT_LT(MaxError(got16.to(torch::kFloat32), want16),
                want16.abs().max().item<double>() / 128 + 1e-3)
          << "bf16 b " << b << " t " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, CpuAttentionTest,
    ::testing::Values(Shape{12, 12, 32, false},  // MiniLM / bge baseline
                      Shape{24, 12, 16, true},   // DiffAttn V2, 12 heads
                      Shape{8, 2, 8, false},     // grouped K/V
                      Shape{8, 2, 8, true}));    // grouped, paired

TEST(CpuAttention, ConcurrentCallersGetTheirOwnAnswers) {
  const Shape s{24, 12, 16, true};
  absl::StatusOr<CpuAttention> a = CpuAttention::Create(24, 12, 16, true);
  ASSERT_TRUE(a.ok()) << a.status();
  std::vector<Inputs> ins;
  std::vector<torch::Tensor> want;
  for (int i = 0; i < 4; ++i) {
    ins.push_back(MakeInputs(2, 20 + 9 * i, s, i));
    want.push_back(Reference(ins[i].qkv, ins[i].mask, ins[i].lambda, s));
  }
  std::vector<double> err(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int r = 0; r < 5; ++r) {
        err[i] = std::max(
            err[i], MaxError(a->Attend(ins[i].qkv, ins[i].mask, ins[i].lambda),
                             want[i]));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 4; ++i) EXPECT_LT(err[i], 1e-4) << i;
}

TEST(CpuAttention, RejectsLayoutsItCannotRun) {
  EXPECT_FALSE(CpuAttention::Create(12, 5, 32, false).ok());  // 12 % 5
  EXPECT_FALSE(CpuAttention::Create(12, 12, 32, true).ok());  // odd pairs
  EXPECT_FALSE(CpuAttention::Create(0, 1, 32, false).ok());
  EXPECT_FALSE(CpuAttention::Create(4, 4, 0, false).ok());
}

TEST(CpuAttention, WrongInputsAreErrorsNotCrashes) {
  absl::StatusOr<CpuAttention> a = CpuAttention::Create(4, 4, 8, false);
  ASSERT_TRUE(a.ok()) << a.status();
  const Shape s{4, 4, 8, false};
  Inputs in = MakeInputs(2, 5, s, 0);
  EXPECT_THROW(a->Attend(in.qkv.narrow(-1, 0, 90), in.mask, {}), c10::Error);
  EXPECT_THROW(a->Attend(in.qkv.to(torch::kDouble), in.mask, {}), c10::Error);
  EXPECT_THROW(a->Attend(in.qkv.to(torch::kHalf), in.mask, {}), c10::Error);
  EXPECT_THROW(a->Attend(in.qkv, in.mask.to(torch::kInt), {}), c10::Error);
  EXPECT_THROW(a->Attend(in.qkv, in.mask.narrow(-1, 0, 4), {}), c10::Error);
  EXPECT_THROW(a->Attend(in.qkv, in.mask, torch::rand({2, 5, 2})), c10::Error);
  // Segments: with their gate, of the right shape, type and ids.
  EXPECT_THROW(a->Attend(in.qkv, in.mask, {}, in.segments, {}), c10::Error);
  EXPECT_THROW(
      a->Attend(in.qkv, in.mask, {}, in.segments.narrow(1, 0, 4), in.gate),
      c10::Error);
  EXPECT_THROW(
      a->Attend(in.qkv, in.mask, {}, in.segments.to(torch::kInt), in.gate),
      c10::Error);
  EXPECT_THROW(a->Attend(in.qkv, in.mask, {}, in.segments + 1, in.gate),
               c10::Error);
  EXPECT_THROW(a->Attend(in.qkv, in.mask, {}, in.segments, torch::rand({3})),
               c10::Error);
}

}  // namespace
}  // namespace diffrank::encoder
