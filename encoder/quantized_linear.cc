// quantized_linear.cc: per-channel int8 weights, prepacked, applied through
// LibTorch's dispatcher (the quantized ops have no C++ API of their own).
#include "encoder/quantized_linear.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"

namespace diffrank::encoder {
namespace {

const char* EngineName(at::QEngine e) {
  switch (e) {
    case at::QEngine::FBGEMM:
      return "fbgemm";
    case at::QEngine::QNNPACK:
      return "qnnpack";
    case at::QEngine::ONEDNN:
      return "onednn";
    case at::QEngine::X86:
      return "x86";
    default:
      return "none";
  }
}

// Picks the fastest engine this build has, once per process: oneDNN / x86 /
// FBGEMM use VNNI or AVX2 int8 kernels; QNNPACK is the ARM path (slow on x86).
absl::Status SelectEngine() {
  static absl::Status status = [] {
    const auto& have = at::globalContext().supportedQEngines();
    auto has = [&](at::QEngine e) {
      return std::find(have.begin(), have.end(), e) != have.end();
    };
    for (at::QEngine e : {at::QEngine::ONEDNN, at::QEngine::X86,
                          at::QEngine::FBGEMM, at::QEngine::QNNPACK}) {
      if (has(e)) {
        at::globalContext().setQEngine(e);
        return absl::OkStatus();
      }
    }
    return absl::FailedPreconditionError(
        "precision int8 needs a LibTorch built with a quantized CPU engine "
        "(oneDNN, FBGEMM or QNNPACK); this one has none: use float32 or "
        "bfloat16");
  }();
  return status;
}

c10::OperatorHandle Op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

}  // namespace

bool QuantizedLinear::Available() { return SelectEngine().ok(); }

std::string QuantizedLinear::Engine() {
  return EngineName(at::globalContext().qEngine());
}

absl::StatusOr<QuantizedLinear> QuantizedLinear::Create(
    const torch::Tensor& weight, const torch::Tensor& bias) {
  if (absl::Status s = SelectEngine(); !s.ok()) return s;
  const torch::Tensor w = weight.to(torch::kFloat32).contiguous();
  // Symmetric per output row: scale = max |w_row| / 127, zero point 0.
  const torch::Tensor scales =
      (w.abs().amax(1) / 127.0).clamp_min(1e-12).to(torch::kDouble);
  const torch::Tensor zeros = torch::zeros({w.size(0)}, torch::kLong);
  const torch::Tensor qw =
      at::quantize_per_channel(w, scales, zeros, 0, at::kQInt8);
  c10::optional<at::Tensor> b;  // c10, not std: LibTorch 1.13 IValues
  if (bias.defined()) b = bias.to(torch::kFloat32).contiguous();
  torch::jit::Stack stack{qw, b};
  Op("quantized::linear_prepack").callBoxed(&stack);
  QuantizedLinear q;
  q.packed_ = std::move(stack.at(0));
  // FBGEMM's AVX2 kernels can saturate 16-bit sums: quantize activations to
  // 7 bits there, as PyTorch does; oneDNN needs no reduced range.
  const at::QEngine e = at::globalContext().qEngine();
  q.reduce_range_ = e == at::QEngine::FBGEMM || e == at::QEngine::X86;
  return q;
}

torch::Tensor QuantizedLinear::Apply(const torch::Tensor& x) const {
  torch::jit::Stack stack{x.contiguous(), packed_, reduce_range_};
  static const c10::OperatorHandle op = Op("quantized::linear_dynamic");
  op.callBoxed(&stack);
  return stack.at(0).toTensor();
}

}  // namespace diffrank::encoder
