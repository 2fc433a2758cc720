// cpu_linear.cc: oneDNN matmul with a prepacked weight (see cpu_linear.h).
#include "encoder/cpu_linear.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"

#ifdef DIFFRANK_HAVE_DNNL
#include <dnnl.hpp>
#endif

namespace diffrank::encoder {

#ifdef DIFFRANK_HAVE_DNNL
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

const dnnl::engine& Engine() {
  static const dnnl::engine* engine =
      new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// One stream per calling thread (a stream is cheap but not free to create).
dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

// The row count the weight layout is chosen for: a query of 32 tokens. The
// brgemm kernels of every other M read the same blocked layout (checked at
// Create for M = 1 and a large M: no fallback to a reference kernel).
constexpr int64_t kPackRows = 32;
// Primitives kept per projection; beyond this the map starts over (oneDNN's
// own primitive cache still makes re-creation a lookup of a few us).
constexpr size_t kMaxPrimitives = 512;

const char* TypeName(CpuLinear::Type t) {
  switch (t) {
    case CpuLinear::Type::kFloat32:
      return "float32";
    case CpuLinear::Type::kBFloat16:
      return "bfloat16";
    case CpuLinear::Type::kInt8:
      return "int8";
  }
  return "?";
}

// Rows [begin, end) of x [M, k] to int8, symmetric per row: q = round(x / s),
// s = max |x_row| / 127 (1 for an all-zero row). Compiled for AVX-512 and a
// baseline, chosen at load (the build itself targets plain x86-64).
__attribute__((target_clones("avx512f", "avx2", "default"))) void QuantizeRows(
    const float* x, int64_t k, int64_t begin, int64_t end, int8_t* q,
    float* scale) {
  for (int64_t m = begin; m < end; ++m) {
    const float* row = x + m * k;
    float amax = 0;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(row[i]));
    const float s = amax > 0 ? amax / 127.0f : 1.0f;
    const float inv = 1.0f / s;
    int8_t* out = q + m * k;
    for (int64_t i = 0; i < k; ++i) {
      const float v = row[i] * inv;  // |v| <= 127
      out[i] =
          static_cast<int8_t>(static_cast<int>(v + (v >= 0 ? 0.5f : -0.5f)));
    }
    scale[m] = s;
  }
}

// y = acc * s_x[row] * s_w[col] (+ b[col]) in place, rows [begin, end).
__attribute__((target_clones("avx512f", "avx2", "default"))) void
DequantizeRows(float* y, int64_t n, int64_t begin, int64_t end,
               const float* row_scale, const float* col_scale,
               const float* bias) {
  for (int64_t m = begin; m < end; ++m) {
    float* out = y + m * n;
    const float s = row_scale[m];
    if (bias != nullptr) {
      for (int64_t j = 0; j < n; ++j)
        out[j] = out[j] * (s * col_scale[j]) + bias[j];
    } else {
      for (int64_t j = 0; j < n; ++j) out[j] = out[j] * (s * col_scale[j]);
    }
  }
}

}  // namespace

struct CpuLinear::Impl {
  int64_t in = 0, out = 0;
  Type type = Type::kFloat32;
  dnnl::memory::desc weight_md;
  dnnl::memory weight;         // packed, owns its buffer
  torch::Tensor bias;          // float32 [1, out] or undefined
  dnnl::memory bias_mem;       // the matmul's bias (float types only)
  torch::Tensor weight_scale;  // int8: float32 [out]
  mutable std::shared_mutex mu;
  mutable std::unordered_map<int64_t, dnnl::matmul> primitives;

  dt SrcType() const {
    return type == Type::kFloat32    ? dt::f32
           : type == Type::kBFloat16 ? dt::bf16
                                     : dt::s8;
  }
  dt DstType() const { return type == Type::kBFloat16 ? dt::bf16 : dt::f32; }
  dt WeightType() const { return SrcType(); }
  // int8 adds the bias after dequantization, not in the matmul.
  bool MatmulBias() const { return bias.defined() && type != Type::kInt8; }

  dnnl::matmul::primitive_desc Describe(int64_t m,
                                        const dnnl::memory::desc& w) const {
    const dnnl::memory::desc src({m, in}, SrcType(), tag::ab);
    const dnnl::memory::desc dst({m, out}, DstType(), tag::ab);
    const dnnl::memory::desc b =
        MatmulBias() ? dnnl::memory::desc({1, out}, dt::f32, tag::ab)
                     : dnnl::memory::desc();
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, w, b, dst),
                                        Engine());
  }

  // Get returns a copy of the primitive (a shared handle): the map may be
  // cleared by another thread while this one executes it.
  dnnl::matmul Get(int64_t m) const {
    {
      std::shared_lock lock(mu);
      auto it = primitives.find(m);
      if (it != primitives.end()) return it->second;
    }
    dnnl::matmul p(Describe(m, weight_md));
    std::unique_lock lock(mu);
    if (primitives.size() >= kMaxPrimitives) primitives.clear();
    return primitives.emplace(m, std::move(p)).first->second;
  }

  void Execute(int64_t m, void* src, void* dst) const {
    const dnnl::matmul p = Get(m);
    dnnl::memory s({{m, in}, SrcType(), tag::ab}, Engine(), src);
    dnnl::memory d({{m, out}, DstType(), tag::ab}, Engine(), dst);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, weight}, {DNNL_ARG_DST, d}};
    if (MatmulBias()) args.emplace(DNNL_ARG_BIAS, bias_mem);
    p.execute(Stream(), args);
    Stream().wait();
  }
};

bool CpuLinear::Available() { return true; }

absl::StatusOr<CpuLinear> CpuLinear::Create(const torch::Tensor& weight,
                                            const torch::Tensor& bias,
                                            Type type) {
  auto impl = std::make_shared<Impl>();
  impl->out = weight.size(0);
  impl->in = weight.size(1);
  impl->type = type;
  try {
    if (bias.defined()) {
      impl->bias = bias.to(torch::kFloat32).contiguous().view({1, impl->out});
      impl->bias_mem = dnnl::memory({{1, impl->out}, dt::f32, tag::ab},
                                    Engine(), impl->bias.data_ptr());
    }
    const dnnl::memory::desc any({impl->in, impl->out}, impl->WeightType(),
                                 tag::any);
    const dnnl::matmul::primitive_desc pd = impl->Describe(kPackRows, any);
    // Only the JIT kernels are worth it; a reference kernel would be far
    // slower than at::linear.
    for (int64_t m : {int64_t{1}, kPackRows, int64_t{4096}}) {
      const std::string kernel =
          impl->Describe(m, pd.weights_desc()).impl_info_str();
      if (kernel.rfind("ref", 0) == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("oneDNN has only a reference kernel (", kernel,
                         ") for ", TypeName(type), " matmul on this CPU"));
      }
    }
    impl->weight_md = pd.weights_desc();
    // W [out, in] row-major is the {in, out} matrix in layout "ba".
    torch::Tensor w = weight.to(torch::kFloat32).contiguous();
    if (type == Type::kInt8) {
      // Symmetric per output row; the scale keeps the row's range exactly.
      impl->weight_scale = (w.abs().amax(1) / 127.0).clamp_min(1e-12);
      w = (w / impl->weight_scale.unsqueeze(1))
              .round()
              .clamp(-127, 127)
              .to(torch::kChar);
      impl->weight_scale = impl->weight_scale.contiguous();
    } else if (type == Type::kBFloat16) {
      w = w.to(torch::kBFloat16);
    }
    dnnl::memory plain({{impl->in, impl->out}, impl->WeightType(), tag::ba},
                       Engine(), w.data_ptr());
    impl->weight = dnnl::memory(impl->weight_md, Engine());
    dnnl::reorder(plain, impl->weight).execute(Stream(), plain, impl->weight);
    Stream().wait();
  } catch (const dnnl::error& e) {
    return absl::FailedPreconditionError(absl::StrCat(
        "oneDNN ", TypeName(type), " matmul unavailable: ", e.what()));
  }
  CpuLinear linear;
  linear.impl_ = std::move(impl);
  return linear;
}

torch::Tensor CpuLinear::Apply(const torch::Tensor& x) const {
  const Impl& impl = *impl_;
  TORCH_CHECK(x.size(-1) == impl.in, "linear input has ", x.size(-1),
              " features; the weight expects ", impl.in);
  const torch::ScalarType want =
      impl.type == Type::kBFloat16 ? torch::kBFloat16 : torch::kFloat32;
  TORCH_CHECK(x.scalar_type() == want, "linear input is ", x.scalar_type(),
              "; this projection runs on ", want);
  const torch::Tensor xc = x.contiguous();
  std::vector<int64_t> shape = xc.sizes().vec();
  shape.back() = impl.out;
  torch::Tensor y = torch::empty(shape, xc.options());
  const int64_t m = impl.in == 0 ? 0 : xc.numel() / impl.in;
  if (m == 0) return y;
  if (impl.type != Type::kInt8) {
    impl.Execute(m, xc.data_ptr(), y.data_ptr());
    return y;
  }
  const torch::Tensor q = torch::empty({m, impl.in}, torch::kChar);
  const torch::Tensor row_scale = torch::empty({m}, torch::kFloat32);
  const float* xp = xc.data_ptr<float>();
  int8_t* qp = q.data_ptr<int8_t>();
  float* sp = row_scale.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, 32768 / impl.in);
  at::parallel_for(0, m, grain, [&](int64_t begin, int64_t end) {
    QuantizeRows(xp, impl.in, begin, end, qp, sp);
  });
  impl.Execute(m, q.data_ptr(), y.data_ptr());
  float* yp = y.data_ptr<float>();
  const float* ws = impl.weight_scale.data_ptr<float>();
  const float* bp = impl.bias.defined() ? impl.bias.data_ptr<float>() : nullptr;
  at::parallel_for(0, m, std::max<int64_t>(1, 32768 / impl.out),
                   [&](int64_t begin, int64_t end) {
                     DequantizeRows(yp, impl.out, begin, end, sp, ws, bp);
                   });
  return y;
}

#else  // !DIFFRANK_HAVE_DNNL

struct CpuLinear::Impl {};

bool CpuLinear::Available() { return false; }

absl::StatusOr<CpuLinear> CpuLinear::Create(const torch::Tensor&,
                                            const torch::Tensor&, Type) {
  return absl::FailedPreconditionError("this build has no oneDNN");
}

torch::Tensor CpuLinear::Apply(const torch::Tensor&) const {
  TORCH_CHECK(false, "CpuLinear without oneDNN");
  return {};
}

#endif  // DIFFRANK_HAVE_DNNL

}  // namespace diffrank::encoder
