// cpu_linear.cc: oneDNN matmul with a prepacked weight (see cpu_linear.h).
#include "encoder/cpu_linear.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "encoder/cpu_features.h"
#include "encoder/cpu_gemm.h"
#include "encoder/one_thread.h"
#include "encoder/run_tasks.h"

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

// Scratchpad returns this thread's scratch buffer for a matmul, at least
// `size` bytes, 64-byte aligned; it keeps the largest asked for.
//
// The matmuls run with a scratchpad per calling thread (scratchpad_mode::user)
// rather than the library's own. With the library's (oneDNN 2.6, brgemm s8 x s8
// on AVX-512 VNNI, a few kB of scratch per call), int8 matmuls run as row
// tasks, from the threads of one parallel region at once (a query's path up to
// 64 rows, transformer.cc), came out wrong for whole groups of rows, a
// different wrong from run to run; callers on separate threads at more rows,
// and float32 / bfloat16, were right. A buffer per thread passed in made every
// case right (cpu_linear_test RowTasksMatchAtLinearInAndOutOfARegion and
// ConcurrentCallsOfDifferentShapesAgree fail without it).
void* Scratchpad(size_t size) {
  constexpr size_t kAlign = 64;
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < size + kAlign) buffer.resize(size + kAlign);
  const uintptr_t p = reinterpret_cast<uintptr_t>(buffer.data());
  return reinterpret_cast<void*>((p + kAlign - 1) & ~uintptr_t{kAlign - 1});
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

// Activations without VNNI: x86's int8 kernels multiply u8 x s8 pairs into
// a saturating 16-bit sum (vpmaddubsw), which an 8-bit activation overflows
// (255 x 127 x 2 > 32767: the AVX2 path lost 1% cosine). There they are
// quantized to 7 bits, asymmetric per row: u8 = round(x / s) + z in
// [0, 127], s = (max - min) / 127 over the row and 0, so a pair is at most
// 2 x 127 x 127 = 32258: exact. Asymmetric because the FFN's GELU outputs
// are mostly >= -0.17: a symmetric scale would waste half the 7 bits. The
// zero point z[row] is taken out afterwards with the weight's column sums.
constexpr float kLevels7 = 127.0f;

// One register of floats per kernel path (GCC's vector extension), for the
// row loops below: zmm, ymm, xmm. A vector wider than the target's registers
// is lowered through the stack (a 16-float vector on AVX2 made QuantizeRows7
// 13% of an int8 query).
typedef float Floats16 __attribute__((vector_size(64)));
typedef float Floats8 __attribute__((vector_size(32)));
typedef float Floats4 __attribute__((vector_size(16)));

// The row loops, compiled once per kernel path and chosen by ActiveIsa() (so
// DIFFRANK_MAX_CPU_ISA=avx2 runs the AVX2 code on an AVX-512 machine too).
// Plain loops only: a template instantiated under a target pragma could be
// the copy the linker keeps for every caller.
#define DIFFRANK_ROW_KERNELS(SUFFIX, VEC, LANES)                               \
  /* min(0, row) and max(0, row) over its first k / LANES x LANES elements,    \
     one register at a time; returns how far it got. A running scalar max does \
     not vectorize: it was 84% of QuantizeRows at 1 x 32 tokens. */            \
  static inline int64_t RowRange##SUFFIX(const float* row, int64_t k,          \
                                         float* lo, float* hi) {               \
    VEC vlo = {}, vhi = {};                                                    \
    int64_t i = 0;                                                             \
    for (; i + LANES <= k; i += LANES) {                                       \
      VEC v;                                                                   \
      __builtin_memcpy(&v, row + i, sizeof v);                                 \
      vlo = v < vlo ? v : vlo;                                                 \
      vhi = v > vhi ? v : vhi;                                                 \
    }                                                                          \
    for (int j = 0; j < LANES; ++j) {                                          \
      *lo = vlo[j] < *lo ? vlo[j] : *lo;                                       \
      *hi = vhi[j] > *hi ? vhi[j] : *hi;                                       \
    }                                                                          \
    return i;                                                                  \
  }                                                                            \
  /* Rows [begin, end) of x [M, k] to int8, symmetric per row: q = round(x     \
     / s), s = max |x_row| / 127 (1 for an all-zero row). */                   \
  void QuantizeRows##SUFFIX(const float* x, int64_t k, int64_t begin,          \
                            int64_t end, int8_t* q, float* scale) {            \
    for (int64_t m = begin; m < end; ++m) {                                    \
      const float* row = x + m * k;                                            \
      float lo = 0, hi = 0;                                                    \
      int64_t i = RowRange##SUFFIX(row, k, &lo, &hi);                          \
      float amax = hi > -lo ? hi : -lo;                                        \
      for (; i < k; ++i) {                                                     \
        const float a = __builtin_fabsf(row[i]);                               \
        amax = a > amax ? a : amax;                                            \
      }                                                                        \
      const float s = amax > 0 ? amax / 127.0f : 1.0f;                         \
      const float inv = 1.0f / s;                                              \
      int8_t* out = q + m * k;                                                 \
      for (i = 0; i < k; ++i) {                                                \
        const float v = row[i] * inv; /* |v| <= 127 */                         \
        out[i] = static_cast<int8_t>(                                          \
            static_cast<int>(v + (v >= 0 ? 0.5f : -0.5f)));                    \
      }                                                                        \
      scale[m] = s;                                                            \
    }                                                                          \
  }                                                                            \
  /* The same to 7-bit asymmetric u8 (no VNNI), zero points in `zero`. */      \
  void QuantizeRows7##SUFFIX(const float* x, int64_t k, int64_t begin,         \
                             int64_t end, uint8_t* q, float* scale,            \
                             float* zero) {                                    \
    for (int64_t m = begin; m < end; ++m) {                                    \
      const float* row = x + m * k;                                            \
      float lo = 0, hi = 0;                                                    \
      for (int64_t i = RowRange##SUFFIX(row, k, &lo, &hi); i < k; ++i) {       \
        lo = row[i] < lo ? row[i] : lo;                                        \
        hi = row[i] > hi ? row[i] : hi;                                        \
      }                                                                        \
      const float s = hi > lo ? (hi - lo) / kLevels7 : 1.0f;                   \
      const float inv = 1.0f / s;                                              \
      const int z = static_cast<int>(-lo * inv + 0.5f); /* in [0, 127] */      \
      uint8_t* out = q + m * k;                                                \
      for (int64_t i = 0; i < k; ++i) {                                        \
        const float v = row[i] * inv;                                          \
        int u = z + static_cast<int>(v + (v >= 0 ? 0.5f : -0.5f));             \
        u = u < 0 ? 0 : (u > 127 ? 127 : u);                                   \
        out[i] = static_cast<uint8_t>(u);                                      \
      }                                                                        \
      scale[m] = s;                                                            \
      zero[m] = static_cast<float>(z);                                         \
    }                                                                          \
  }                                                                            \
  /* y = (acc - z[row] * colsum[col]) * s_x[row] * s_w[col] (+ b[col]) in      \
     place, rows [begin, end); zero null: no zero points. */                   \
  void DequantizeRows##SUFFIX(float* y, int64_t n, int64_t begin, int64_t end, \
                              const float* row_scale, const float* col_scale,  \
                              const float* bias, const float* zero,            \
                              const float* colsum) {                           \
    for (int64_t m = begin; m < end; ++m) {                                    \
      float* out = y + m * n;                                                  \
      const float s = row_scale[m];                                            \
      if (zero != nullptr) {                                                   \
        const float z = zero[m];                                               \
        for (int64_t j = 0; j < n; ++j) out[j] -= z * colsum[j];               \
      }                                                                        \
      if (bias != nullptr) {                                                   \
        for (int64_t j = 0; j < n; ++j)                                        \
          out[j] = out[j] * (s * col_scale[j]) + bias[j];                      \
      } else {                                                                 \
        for (int64_t j = 0; j < n; ++j) out[j] = out[j] * (s * col_scale[j]);  \
      }                                                                        \
    }                                                                          \
  }

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
DIFFRANK_ROW_KERNELS(Avx512, Floats16, 16)
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma")
DIFFRANK_ROW_KERNELS(Avx2, Floats8, 8)
#pragma GCC pop_options
DIFFRANK_ROW_KERNELS(Baseline, Floats4, 4)
#undef DIFFRANK_ROW_KERNELS

struct RowKernels {
  void (*quantize)(const float*, int64_t, int64_t, int64_t, int8_t*, float*);
  void (*quantize7)(const float*, int64_t, int64_t, int64_t, uint8_t*, float*,
                    float*);
  void (*dequantize)(float*, int64_t, int64_t, int64_t, const float*,
                     const float*, const float*, const float*, const float*);
};

const RowKernels& Kernels() {
  static const RowKernels k =
      ActiveIsa() >= CpuIsa::kAvx512
          ? RowKernels{QuantizeRowsAvx512, QuantizeRows7Avx512,
                       DequantizeRowsAvx512}
      : ActiveIsa() >= CpuIsa::kAvx2
          ? RowKernels{QuantizeRowsAvx2, QuantizeRows7Avx2, DequantizeRowsAvx2}
          : RowKernels{QuantizeRowsBaseline, QuantizeRows7Baseline,
                       DequantizeRowsBaseline};
  return k;
}

// Up to this many rows (a query of up to 64 tokens) RowTasks: tasks of
// kRowGroup whole rows, each taking its rows from quantize to epilogue, so a
// projection is one parallel region (and transformer.cc chains o, up, down
// and the next layer's q|k|v in one), where the projection-at-a-time path runs
// quantize and dequantize + epilogue on the calling thread alone around the
// matmul's region, the other thread asleep through them and woken again after.
// Measured (AMD EPYC, 2 threads, passive wait, 6-layer V2 MiniLM, p50 of a
// 1 x 32 query; docs/benchmarks.md): int8 AVX-512 VNNI 2.90 -> 2.43 ms,
// int8 AVX2 3.75 -> 3.11, float32 AVX2 (packed GEMM) 6.0 -> 5.87. Groups of
// 8 rows: oneDNN's per-call cost made groups of 4 slower on VNNI (2.56 ms).
// Not for oneDNN's float32 (per-call cost: 5.6 -> 8.4 ms; float32 runs the
// packed tile on AVX-512 too since) or bfloat16.
// Above 64 rows, tasks of 64 rows x one panel keep a panel in cache across
// rows, and a region's wake-up is a small part of its work.
constexpr int64_t kRowTaskRows = 64;
static_assert(CpuLinear::kRowGroup % PackedGemmU8S8::kTileRows == 0);

}  // namespace

struct CpuLinear::Impl {
  int64_t in = 0, out = 0;
  Type type = Type::kFloat32;
  dnnl::memory::desc weight_md;
  dnnl::memory weight;         // packed, owns its buffer
  torch::Tensor bias;          // float32 [1, out] or undefined
  dnnl::memory bias_mem;       // the matmul's bias (float types only)
  torch::Tensor weight_scale;  // int8: float32 [out]
  // int8 without VNNI: 7-bit u8 activations; the column sums of the int8
  // weight, float32 [out] (exact integers below 2^24).
  bool seven_bit = false;
  torch::Tensor colsum;
  std::string kernel;  // impl_info_str at kPackRows rows
  // float32 where oneDNN has no brgemm kernel (AVX2): cpu_gemm.h instead.
  std::optional<PackedGemm> gemm;
  std::optional<PackedGemmU8S8> gemm8;  // int8 without VNNI, likewise
  // Below this many multiply-adds (~100 us on one core) the matmul and its
  // quantize/dequantize run on the calling thread (one_thread.h): a query's
  // projections, where waking a second thread costs about what it saves.
  // Measured on a 32-token query of a 6-layer model (AVX-512 VNNI, 2 cores,
  // passive wait): int8 all inline 3.85 vs 4.17 ms, float32 level at 5M.
  int64_t inline_macs = 0;
  mutable std::shared_mutex mu;
  // A matmul primitive and the scratchpad it asks its caller for.
  struct Primitive {
    dnnl::matmul matmul;
    dnnl::memory::desc scratchpad;
  };
  mutable std::unordered_map<int64_t, Primitive> primitives;

  dt SrcType() const {
    return type == Type::kFloat32    ? dt::f32
           : type == Type::kBFloat16 ? dt::bf16
           : seven_bit               ? dt::u8
                                     : dt::s8;
  }
  dt DstType() const { return type == Type::kBFloat16 ? dt::bf16 : dt::f32; }
  dt WeightType() const { return type == Type::kInt8 ? dt::s8 : SrcType(); }
  // int8 adds the bias after dequantization, not in the matmul.
  bool MatmulBias() const { return bias.defined() && type != Type::kInt8; }

  dnnl::matmul::primitive_desc Describe(int64_t m,
                                        const dnnl::memory::desc& w) const {
    const dnnl::memory::desc src({m, in}, SrcType(), tag::ab);
    const dnnl::memory::desc dst({m, out}, DstType(), tag::ab);
    const dnnl::memory::desc b =
        MatmulBias() ? dnnl::memory::desc({1, out}, dt::f32, tag::ab)
                     : dnnl::memory::desc();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, w, b, dst),
                                        attr, Engine());
  }

  // Get returns a copy of the primitive (a shared handle): the map may be
  // cleared by another thread while this one executes it.
  Primitive Get(int64_t m) const {
    {
      std::shared_lock lock(mu);
      auto it = primitives.find(m);
      if (it != primitives.end()) return it->second;
    }
    const dnnl::matmul::primitive_desc pd = Describe(m, weight_md);
    Primitive p{dnnl::matmul(pd), pd.scratchpad_desc()};
    std::unique_lock lock(mu);
    if (primitives.size() >= kMaxPrimitives) primitives.clear();
    return primitives.emplace(m, std::move(p)).first->second;
  }

  void Execute(int64_t m, void* src, void* dst) const {
    const Primitive p = Get(m);
    dnnl::memory s({{m, in}, SrcType(), tag::ab}, Engine(), src);
    dnnl::memory d({{m, out}, DstType(), tag::ab}, Engine(), dst);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, weight}, {DNNL_ARG_DST, d}};
    if (MatmulBias()) args.emplace(DNNL_ARG_BIAS, bias_mem);
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 dnnl::memory(p.scratchpad, Engine(),
                              Scratchpad(p.scratchpad.get_size())));
    p.matmul.execute(Stream(), args);
    Stream().wait();
  }
};

bool CpuLinear::Available() { return true; }

const std::string& CpuLinear::Kernel() const { return impl_->kernel; }

absl::StatusOr<CpuLinear> CpuLinear::Create(const torch::Tensor& weight,
                                            const torch::Tensor& bias,
                                            Type type) {
  auto impl = std::make_shared<Impl>();
  impl->out = weight.size(0);
  impl->in = weight.size(1);
  impl->type = type;
  impl->seven_bit = type == Type::kInt8 && !Int8DotProducts();
  {
    // One core's rough rate in multiply-adds per microsecond: float32 FMAs
    // (16 lanes x 2 ports on AVX-512, 8 on AVX2), twice that for bf16 dot
    // products (emulated: a quarter), 4x for VNNI int8, 2x for int8 pairs
    // without VNNI.
    const int64_t f32 = ActiveIsa() >= CpuIsa::kAvx512 ? 50'000 : 25'000;
    const int64_t rate = type == Type::kFloat32 ? f32
                         : type == Type::kBFloat16
                             ? (NativeBf16() ? 2 * f32 : f32 / 4)
                         : impl->seven_bit ? 2 * f32
                                           : 4 * f32;
    impl->inline_macs = 100 * rate;
  }
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
    impl->kernel = pd.impl_info_str();
    if (type == Type::kFloat32 && PackedGemm::Available()) {
      // On AVX2 oneDNN's gemm:jit re-packs a plain weight on every call; on
      // AVX-512 its brgemm is level with the packed tile at 32 x 128 but
      // costs too much per call for a query's row tasks (cpu_gemm.h).
      const torch::Tensor w = weight.to(torch::kFloat32).contiguous();
      impl->gemm.emplace(
          w.data_ptr<float>(),
          impl->bias.defined() ? impl->bias.data_ptr<float>() : nullptr,
          impl->out, impl->in);
      impl->kernel = absl::StrCat("diffrank ", impl->gemm->IsaName(),
                                  " packed sgemm (oneDNN: ", impl->kernel, ")");
      impl->inline_macs = 100 * 50'000;  // ~56k MACs/us measured on Zen 4
      CpuLinear linear;
      linear.impl_ = std::move(impl);
      return linear;
    }
    if (impl->seven_bit) impl->kernel += " (7-bit activations: no VNNI)";
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
      if (impl->seven_bit) {
        impl->colsum =
            w.to(torch::kInt).sum(1).to(torch::kFloat32).contiguous();
      }
    } else if (type == Type::kBFloat16) {
      w = w.to(torch::kBFloat16);
    }
    if (impl->seven_bit && PackedGemmU8S8::Available() &&
        impl->kernel.rfind("brg", 0) != 0) {
      // As for float32: oneDNN's gemm:jit re-packs the weight per call.
      const torch::Tensor wc = w.contiguous();
      impl->gemm8.emplace(wc.data_ptr<int8_t>(), impl->out, impl->in);
      impl->kernel = absl::StrCat(
          "diffrank avx2 packed u8s8 gemm, 7-bit activations (oneDNN: ",
          pd.impl_info_str(), ")");
      impl->inline_macs = 100 * 100'000;  // ~2x the float32 kernel
      CpuLinear linear;
      linear.impl_ = std::move(impl);
      return linear;
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

torch::Tensor CpuLinear::Apply(const torch::Tensor& x,
                               const Epilogue& epilogue) const {
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
  if (m == 0 || impl.out == 0) return y;
  OneThreadIf small(m * impl.in * impl.out < impl.inline_macs);
  if (impl.type == Type::kBFloat16) {
    impl.Execute(m, xc.data_ptr(), y.data_ptr());
    return Finish(std::move(y), epilogue);
  }
  Epilogue e = epilogue;
  if (e.residual.defined()) e.residual = e.residual.contiguous();
  CheckRows(e, m, impl.out);
  float* yp = y.data_ptr<float>();
  const int64_t out_grain = std::max<int64_t>(1, kInlineElements / impl.out);
  const float* xp = xc.data_ptr<float>();
  if (RowTasks(m)) {
    RunRowTasks(m, kRowGroup,
                [&](int64_t r0, int64_t r1) { ApplyRows(xp, yp, r0, r1, e); });
    return y;
  }
  if (impl.gemm) {
    RunTasks(impl.gemm->Tasks(m), [&](int64_t b, int64_t end) {
      impl.gemm->Run(xp, m, yp, b, end);
    });
  } else if (impl.type == Type::kFloat32) {
    impl.Execute(m, xc.data_ptr(), y.data_ptr());
  }
  if (impl.type == Type::kFloat32) {
    if (!e.empty()) {
      at::parallel_for(0, m, out_grain, [&](int64_t begin, int64_t end) {
        FinishRows(yp, impl.out, begin, end, e);
      });
    }
    return y;
  }
  const RowKernels& kernels = Kernels();
  const torch::Tensor q =
      torch::empty({m, impl.in}, impl.seven_bit ? torch::kByte : torch::kChar);
  const torch::Tensor row_scale = torch::empty({m}, torch::kFloat32);
  const torch::Tensor row_zero =
      impl.seven_bit ? torch::empty({m}, torch::kFloat32) : torch::Tensor();
  float* sp = row_scale.data_ptr<float>();
  float* zp = impl.seven_bit ? row_zero.data_ptr<float>() : nullptr;
  const float* ws = impl.weight_scale.data_ptr<float>();
  const float* bp = impl.bias.defined() ? impl.bias.data_ptr<float>() : nullptr;
  const float* cs = impl.seven_bit ? impl.colsum.data_ptr<float>() : nullptr;
  const auto quantize = [&](int64_t begin, int64_t end) {
    if (impl.seven_bit) {
      kernels.quantize7(xp, impl.in, begin, end, q.data_ptr<uint8_t>(), sp, zp);
    } else {
      kernels.quantize(xp, impl.in, begin, end, q.data_ptr<int8_t>(), sp);
    }
  };
  // The epilogue on each block of rows right after it is dequantized, while
  // it is in cache.
  const auto finish = [&](int64_t begin, int64_t end) {
    kernels.dequantize(yp, impl.out, begin, end, sp, ws, bp, zp, cs);
    FinishRows(yp, impl.out, begin, end, e);
  };
  const int64_t grain = std::max<int64_t>(1, kInlineElements / impl.in);
  at::parallel_for(0, m, grain, quantize);
  if (impl.gemm8) {
    const uint8_t* qp = q.data_ptr<uint8_t>();
    RunTasks(impl.gemm8->Tasks(m), [&](int64_t b, int64_t end) {
      impl.gemm8->Run(qp, m, yp, b, end);
    });
  } else {
    impl.Execute(m, q.data_ptr(), y.data_ptr());
  }
  at::parallel_for(0, m, out_grain, finish);
  return y;
}

int64_t CpuLinear::in() const { return impl_->in; }
int64_t CpuLinear::out() const { return impl_->out; }
int64_t CpuLinear::InlineMacs() const { return impl_->inline_macs; }

bool CpuLinear::RowTasks(int64_t m) const {
  const Impl& impl = *impl_;
  return m <= kRowTaskRows &&
         (impl.type == Type::kInt8 || impl.gemm.has_value());
}

void CpuLinear::ApplyRows(const float* x, float* y, int64_t r0, int64_t r1,
                          const Epilogue& e) const {
  const Impl& impl = *impl_;
  TORCH_CHECK(impl.type != Type::kBFloat16,
              "ApplyRows takes float32 rows; this projection runs bfloat16");
  const int64_t rows = r1 - r0;
  if (rows <= 0) return;
  const float* xr = x + r0 * impl.in;
  float* yr = y + r0 * impl.out;
  if (impl.type == Type::kFloat32) {
    if (impl.gemm) {
      impl.gemm->RunRows(xr, yr, 0, rows);
    } else {
      impl.Execute(rows, const_cast<float*>(xr), yr);
    }
  } else {
    // Scratch for the rows' quantized activations, kept per thread.
    thread_local std::vector<uint8_t> q;
    thread_local std::vector<float> scale, zero;
    q.resize(rows * impl.in);
    scale.resize(rows);
    zero.resize(rows);
    const RowKernels& kernels = Kernels();
    if (impl.seven_bit) {
      kernels.quantize7(xr, impl.in, 0, rows, q.data(), scale.data(),
                        zero.data());
    } else {
      kernels.quantize(xr, impl.in, 0, rows,
                       reinterpret_cast<int8_t*>(q.data()), scale.data());
    }
    if (impl.gemm8) {
      impl.gemm8->RunRows(q.data(), yr, 0, rows);
    } else {
      impl.Execute(rows, q.data(), yr);
    }
    kernels.dequantize(
        yr, impl.out, 0, rows, scale.data(),
        impl.weight_scale.data_ptr<float>(),
        impl.bias.defined() ? impl.bias.data_ptr<float>() : nullptr,
        impl.seven_bit ? zero.data() : nullptr,
        impl.seven_bit ? impl.colsum.data_ptr<float>() : nullptr);
  }
  FinishRows(y, impl.out, r0, r1, e);
}

#else  // !DIFFRANK_HAVE_DNNL

struct CpuLinear::Impl {
  std::string kernel;
};

bool CpuLinear::Available() { return false; }

const std::string& CpuLinear::Kernel() const { return impl_->kernel; }

absl::StatusOr<CpuLinear> CpuLinear::Create(const torch::Tensor&,
                                            const torch::Tensor&, Type) {
  return absl::FailedPreconditionError("this build has no oneDNN");
}

torch::Tensor CpuLinear::Apply(const torch::Tensor&, const Epilogue&) const {
  TORCH_CHECK(false, "CpuLinear without oneDNN");
  return {};
}

bool CpuLinear::RowTasks(int64_t) const { return false; }
int64_t CpuLinear::in() const { return 0; }
int64_t CpuLinear::out() const { return 0; }
int64_t CpuLinear::InlineMacs() const { return 0; }

void CpuLinear::ApplyRows(const float*, float*, int64_t, int64_t,
                          const Epilogue&) const {
  TORCH_CHECK(false, "CpuLinear without oneDNN");
}

#endif  // DIFFRANK_HAVE_DNNL

}  // namespace diffrank::encoder
