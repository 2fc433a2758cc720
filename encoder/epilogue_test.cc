// epilogue_test.cc: the fused epilogue rows against LibTorch's ops, and the
// linears that run them.
#include "encoder/epilogue.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "encoder/cpu_linear.h"

namespace diffrank::encoder {
namespace {

using Act = EpilogueActivation;

const char* Name(Act a) {
  switch (a) {
    case Act::kNone:
      return "none";
    case Act::kGelu:
      return "gelu";
    case Act::kGeluTanh:
      return "gelu_tanh";
    case Act::kRelu:
      return "relu";
  }
  return "?";
}

Epilogue Make(Act act, const torch::Tensor& residual, int64_t n, bool norm,
              torch::ScalarType dtype = torch::kFloat32) {
  Epilogue e;
  e.activation = act;
  e.residual = residual;
  if (norm) {
    e.norm_w = (torch::rand({n}) + 0.5).to(dtype);
    e.norm_b = torch::randn({n}).to(dtype);
    e.eps = 1e-12;
  }
  return e;
}

// Rows of every width around the register sizes (tails of 1 to 15), and the
// models' widths; values well into erf's and exp's tails.
TEST(Epilogue, FusedRowsMatchLibTorch) {
  torch::manual_seed(7);
  for (int64_t n : {1, 3, 4, 7, 8, 15, 16, 17, 33, 384, 1536}) {
    for (Act act : {Act::kNone, Act::kGelu, Act::kGeluTanh, Act::kRelu}) {
      for (bool residual : {false, true}) {
        for (bool norm : {false, true}) {
          const int64_t rows = 5;
          torch::Tensor y = torch::randn({rows, n}) * 4;
          y[0][0] = 60;
          y[rows - 1][n - 1] = -60;
          const torch::Tensor r =
              residual ? torch::randn({rows, n}) : torch::Tensor();
          const Epilogue e = Make(act, r, n, norm);
          // LayerNorm over one element is its bias exactly (ATen's float
          // mean leaves a rounding error that 1 / sqrt(eps) blows up).
          const torch::Tensor want =
              n == 1 && norm ? e.norm_b.expand({rows, 1}).contiguous()
                             : Finish(y.clone(), e);
          torch::Tensor got = y.clone();
          CheckRows(e, rows, n);
          FinishRows(got.data_ptr<float>(), n, 0, rows, e);
          const double diff = (got - want).abs().max().item<double>();
          const double scale = std::max(1.0, want.abs().max().item<double>());
          // erf is good to 1.5e-7 absolute, GELU scales it by |x| / 2 (at
          // most 30 here); LayerNorm sums in another order than ATen (float32
          // rounding of a 1536-wide sum: ~1.5e-6 of the output).
          EXPECT_LT(diff, 5e-6 * scale)
              << "n " << n << " " << Name(act) << " residual " << residual
              << " norm " << norm;
        }
      }
    }
  }
}

TEST(Epilogue, ExtremeInputsStayFinite) {
  const std::vector<float> values = {-1e30f, -1e4f,  -88.0f, -10.0f, -0.0f,
                                     0.0f,   1e-30f, 10.0f,  1e4f,   1e30f};
  const int64_t n = static_cast<int64_t>(values.size());
  for (Act act : {Act::kGelu, Act::kGeluTanh, Act::kRelu}) {
    torch::Tensor y = torch::tensor(values).view({1, n});
    const torch::Tensor want = Finish(y.clone(), Make(act, {}, n, false));
    torch::Tensor got = y.clone();
    FinishRows(got.data_ptr<float>(), n, 0, 1, Make(act, {}, n, false));
    for (int64_t j = 0; j < n; ++j) {
      const float g = got[0][j].item<float>(), w = want[0][j].item<float>();
      EXPECT_TRUE(std::isfinite(g)) << Name(act) << " of " << values[j];
      EXPECT_NEAR(g, w, 1e-6 * std::max(1.0f, std::abs(w)))
          << Name(act) << " of " << values[j];
    }
  }
}

TEST(Epilogue, RowsNarrowsTheResidual) {
  const torch::Tensor r = torch::arange(24, torch::kFloat32).view({2, 3, 4});
  Epilogue e;
  e.residual = r;
  const Epilogue part = e.Rows(2, 3);
  ASSERT_EQ(part.residual.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(part.residual[0][0].item<float>(), 8);
  EXPECT_TRUE(e.empty() == false && Epilogue().empty());
}

TEST(Epilogue, MisfitResidualIsAnError) {
  Epilogue e;
  e.residual = torch::zeros({3, 5});
  EXPECT_THROW(CheckRows(e, 3, 4), c10::Error);
  e.residual = torch::zeros({3, 4}, torch::kFloat64);
  EXPECT_THROW(CheckRows(e, 3, 4), c10::Error);
  e.residual = torch::Tensor();
  e.norm_w = torch::ones({4});
  EXPECT_THROW(CheckRows(e, 3, 4), c10::Error);  // no bias
}

// A packed linear with an epilogue equals the linear, then LibTorch's ops:
// every type, a query's rows (inline) and a batch's (parallel), 2-D and 3-D.
TEST(Epilogue, PackedLinearsFuseIt) {
  if (!CpuLinear::Available()) GTEST_SKIP() << "built without oneDNN";
  torch::manual_seed(3);
  const int64_t in = 64, out = 48;
  const torch::Tensor w = torch::randn({out, in}) * 0.1,
                      b = torch::randn({out});
  for (CpuLinear::Type type :
       {CpuLinear::Type::kFloat32, CpuLinear::Type::kInt8,
        CpuLinear::Type::kBFloat16}) {
    absl::StatusOr<CpuLinear> lin = CpuLinear::Create(w, b, type);
    if (!lin.ok()) continue;  // e.g. no bf16 kernel on this CPU
    const torch::ScalarType dt =
        type == CpuLinear::Type::kBFloat16 ? torch::kBFloat16 : torch::kFloat32;
    for (const std::vector<int64_t>& lead :
         {std::vector<int64_t>{1}, std::vector<int64_t>{32},
          std::vector<int64_t>{3, 700}}) {
      std::vector<int64_t> xs = lead, ys = lead;
      xs.push_back(in);
      ys.push_back(out);
      const torch::Tensor x = torch::randn(xs).to(dt);
      for (Act act : {Act::kNone, Act::kGelu}) {
        for (bool norm : {false, true}) {
          const Epilogue e = Make(act, torch::randn(ys).to(dt), out, norm, dt);
          const torch::Tensor want = Finish(lin->Apply(x), e);
          const torch::Tensor got = lin->Apply(x, e);
          ASSERT_EQ(got.sizes(), want.sizes());
          const double rel =
              ((got.to(torch::kFloat32) - want.to(torch::kFloat32)).norm() /
               want.to(torch::kFloat32).norm())
                  .item<double>();
          EXPECT_LT(rel, 1e-6)
              << "type " << static_cast<int>(type) << " " << Name(act)
              << " norm " << norm << " rows " << x.numel() / in;
        }
      }
    }
  }
}

}  // namespace
}  // namespace diffrank::encoder
