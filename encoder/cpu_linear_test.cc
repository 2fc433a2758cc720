// cpu_linear_test.cc: the packed oneDNN linears against at::linear.
#include "encoder/cpu_linear.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <utility>
#include <vector>

#include "encoder/run_tasks.h"

namespace diffrank::encoder {
namespace {

using Type = CpuLinear::Type;

struct Case {
  torch::Tensor w, b;
};

Case MakeCase(int64_t out, int64_t in, bool bias, int seed) {
  torch::manual_seed(seed);
  Case c;
  c.w = torch::randn({out, in}) * 0.05;
  if (bias) c.b = torch::randn({out});
  return c;
}

torch::Tensor Reference(const torch::Tensor& x, const Case& c) {
  return at::linear(x.to(torch::kFloat32), c.w, c.b);
}

// Relative error of the whole output: ||got - want|| / ||want||.
double RelError(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kFloat32) - want).norm() / want.norm()).item<double>();
}

class CpuLinearTest : public ::testing::TestWithParam<Type> {
 protected:
  void SetUp() override {
    if (!CpuLinear::Available()) GTEST_SKIP() << "built without oneDNN";
  }
  torch::ScalarType InputType() const {
    return GetParam() == Type::kBFloat16 ? torch::kBFloat16 : torch::kFloat32;
  }
  // Bounds measured with margin: float32 differs from OpenBLAS only in
  // summation order; bfloat16 rounds inputs and outputs to 8 bits of
  // mantissa; int8 rounds weights per row and activations per token.
  double Bound() const {
    switch (GetParam()) {
      case Type::kFloat32:
        return 1e-5;
      case Type::kBFloat16:
        return 1e-2;
      case Type::kInt8:
        return 2e-2;
    }
    return 0;
  }
};

TEST_P(CpuLinearTest, MatchesAtLinearForEveryRowCount) {
  for (bool bias : {true, false}) {
    const Case c = MakeCase(96, 64, bias, 3);
    auto linear = CpuLinear::Create(c.w, c.b, GetParam());
    if (!linear.ok()) GTEST_SKIP() << linear.status();
    // 1 row (a one-token query), the packing's 32, odd and large counts.
    for (int64_t m : {1, 5, 32, 33, 300, 1000}) {
      const torch::Tensor x = torch::randn({m, 64}).to(InputType());
      const torch::Tensor got = linear->Apply(x);
      ASSERT_EQ(got.sizes(), (std::vector<int64_t>{m, 96}));
      ASSERT_EQ(got.scalar_type(), InputType());
      EXPECT_LT(RelError(got, Reference(x, c)), Bound())
          << "rows " << m << " bias " << bias;
    }
  }
}

TEST_P(CpuLinearTest, KeepsLeadingDimensionsAndTakesViews) {
  const Case c = MakeCase(48, 32, true, 4);
  auto linear = CpuLinear::Create(c.w, c.b, GetParam());
  if (!linear.ok()) GTEST_SKIP() << linear.status();
  // A non-contiguous input (a transposed view), batch x tokens x features.
  const torch::Tensor x =
      torch::randn({7, 32, 3}).to(InputType()).transpose(1, 2);
  const torch::Tensor got = linear->Apply(x);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{7, 3, 48}));
  EXPECT_LT(RelError(got, Reference(x, c)), Bound());
  // No rows: an empty output, no kernel call.
  EXPECT_EQ(linear->Apply(torch::empty({0, 32}, InputType())).size(0), 0);
}

// Callers on different threads (the batcher's workers, concurrent gRPC
// calls) share a projection: each gets what it gets alone, at a toy shape and
// at a model's (hidden 384 -> FFN 1536, where oneDNN's kernels use scratch).
TEST_P(CpuLinearTest, ConcurrentCallsOfDifferentShapesAgree) {
  for (const auto& [out, in] :
       {std::pair<int64_t, int64_t>{64, 64}, {1536, 384}}) {
    const Case c = MakeCase(out, in, true, 5);
    auto linear = CpuLinear::Create(c.w, c.b, GetParam());
    if (!linear.ok()) GTEST_SKIP() << linear.status();
    std::vector<torch::Tensor> inputs, serial;
    for (int i = 0; i < 8; ++i) {
      inputs.push_back(torch::randn({1 + 13 * i, in}).to(InputType()));
      serial.push_back(linear->Apply(inputs.back()));
    }
    std::vector<torch::Tensor> parallel(inputs.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < inputs.size(); ++i) {
      threads.emplace_back([&, i] {
        for (int r = 0; r < 20; ++r) parallel[i] = linear->Apply(inputs[i]);
      });
    }
    for (std::thread& t : threads) t.join();
    for (size_t i = 0; i < inputs.size(); ++i) {
      EXPECT_TRUE(torch::equal(parallel[i], serial[i]))
          << out << " x " << in << ", input " << i;
    }
  }
}

TEST_P(CpuLinearTest, ManyRowCountsFromManyThreadsOutliveThePrimitiveCache) {
  // More distinct row counts than the per-projection primitive cache keeps
  // (512), from 4 threads at once: the cache is cleared while other threads
  // run primitives they got from it.
  const Case c = MakeCase(16, 16, true, 8);
  auto linear = CpuLinear::Create(c.w, c.b, GetParam());
  if (!linear.ok()) GTEST_SKIP() << linear.status();
  std::vector<std::thread> threads;
  std::vector<double> worst(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t m = 1 + t; m <= 700; m += 4) {
        const torch::Tensor x = torch::randn({m, 16}).to(InputType());
        worst[t] =
            std::max(worst[t], RelError(linear->Apply(x), Reference(x, c)));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (double w : worst) EXPECT_LT(w, Bound());
}

// Sets ATen's (OpenMP's) thread count to 2 while in scope, whatever way the
// test leaves.
class TwoThreads {
 public:
  TwoThreads() : saved_(at::get_num_threads()) { at::set_num_threads(2); }
  ~TwoThreads() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

// A query's projections run as row tasks: ApplyRows on groups of kRowGroup
// rows from both threads of one parallel region at once (Apply up to 64 rows,
// and transformer.cc's SublayersByRows). Every group must be right: with
// oneDNN's own scratchpad, random groups of the int8 matmuls' rows came out
// wrong (cpu_linear.cc Scratchpad).
TEST_P(CpuLinearTest, RowTasksMatchAtLinearInAndOutOfARegion) {
  if (GetParam() == Type::kBFloat16) GTEST_SKIP() << "no row tasks";
  TwoThreads two;
  const int64_t g = CpuLinear::kRowGroup;
  // A model's shapes (hidden 384, FFN 1536), large enough that Apply opens a
  // region for them (one_thread.h).
  for (const auto& [out, in] :
       {std::pair<int64_t, int64_t>{1536, 384}, {384, 1536}, {1152, 384}}) {
    const Case c = MakeCase(out, in, true, 9);
    auto linear = CpuLinear::Create(c.w, c.b, GetParam());
    if (!linear.ok()) GTEST_SKIP() << linear.status();
    for (int64_t m : {64, 61, 47, 20, 9, 3}) {
      const torch::Tensor x = torch::randn({m, in});
      const torch::Tensor want = Reference(x, c);
      for (int round = 0; round < 5; ++round) {
        // Apply (row tasks in its own region up to 64 rows).
        const torch::Tensor got = linear->Apply(x);
        // ApplyRows called from a region's threads, as transformer.cc does.
        torch::Tensor rows = torch::full({m, out}, std::nanf(""));
        const float* xp = x.data_ptr<float>();
        float* yp = rows.data_ptr<float>();
        RunRowTasks(m, g, [&](int64_t r0, int64_t r1) {
          linear->ApplyRows(xp, yp, r0, r1, {});
        });
        for (int64_t r = 0; r < m; r += g) {
          const int64_t end = std::min(m, r + g);
          ASSERT_LT(RelError(got.slice(0, r, end), want.slice(0, r, end)),
                    Bound())
              << "Apply, " << out << " x " << in << ", " << m << " rows, rows "
              << r << "-" << end << ", round " << round;
          ASSERT_LT(RelError(rows.slice(0, r, end), want.slice(0, r, end)),
                    Bound())
              << "ApplyRows, " << out << " x " << in << ", " << m
              << " rows, rows " << r << "-" << end << ", round " << round;
        }
      }
    }
  }
}

TEST_P(CpuLinearTest, WrongInputIsAnErrorNotACrash) {
  const Case c = MakeCase(16, 8, false, 6);
  auto linear = CpuLinear::Create(c.w, c.b, GetParam());
  if (!linear.ok()) GTEST_SKIP() << linear.status();
  EXPECT_THROW(linear->Apply(torch::randn({4, 9}).to(InputType())),
               c10::Error);  // wrong feature count
  EXPECT_THROW(linear->Apply(torch::randn({4, 8}).to(torch::kDouble)),
               c10::Error);  // wrong dtype
}

TEST(CpuLinearInt8, OneOutlierTokenDoesNotCoarsenTheOthers) {
  if (!CpuLinear::Available()) GTEST_SKIP() << "built without oneDNN";
  const Case c = MakeCase(64, 64, false, 7);
  auto linear = CpuLinear::Create(c.w, c.b, Type::kInt8);
  if (!linear.ok()) GTEST_SKIP() << linear.status();
  torch::Tensor x = torch::randn({8, 64});
  x[0] *= 1000;  // one token with huge activations
  const torch::Tensor got = linear->Apply(x);
  const torch::Tensor want = Reference(x, c);
  // Per-token scales: the ordinary tokens keep their precision.
  for (int64_t r = 1; r < 8; ++r) {
    EXPECT_LT(RelError(got[r], want[r]), 2e-2) << "row " << r;
  }
}

// Each row's scale comes from its largest |x| (its range without VNNI),
// found 16 lanes at a time with a scalar tail: an outlier anywhere in the
// row, in the vector part or the tail, must set it (else it is clipped).
TEST(CpuLinearInt8, RowScaleSeesEveryColumn) {
  if (!CpuLinear::Available()) GTEST_SKIP() << "built without oneDNN";
  for (int64_t in : {1, 15, 16, 17, 40, 100}) {
    const Case c = MakeCase(24, in, true, 11);
    auto linear = CpuLinear::Create(c.w, c.b, Type::kInt8);
    if (!linear.ok()) GTEST_SKIP() << linear.status();
    for (int64_t col = 0; col < in; col += std::max<int64_t>(1, in / 7)) {
      for (float sign : {1.0f, -1.0f}) {
        torch::Tensor x = torch::randn({3, in});
        x.select(1, col) *= 0;
        x.select(1, col) += sign * 8;  // the row's largest value
        const torch::Tensor got = linear->Apply(x);
        const torch::Tensor want = Reference(x, c);
        EXPECT_LT(RelError(got, want), 2e-2)
            << "in " << in << ", outlier " << sign * 8 << " at " << col;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, CpuLinearTest,
                         ::testing::Values(Type::kFloat32, Type::kBFloat16,
                                           Type::kInt8));

}  // namespace
}  // namespace diffrank::encoder
