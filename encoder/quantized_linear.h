// quantized_linear.h: int8 dynamic quantization of one linear projection.
//
// Owns: quantizing a float32 weight [out, in] per output channel (symmetric
// int8, zero point 0), prepacking it once for LibTorch's quantized CPU engine
// (oneDNN on x86), and applying it with the activations quantized per call
// (quantized::linear_dynamic, float32 in and out). This is the standard CPU
// "dynamic quantization" of transformer linears (PyTorch's quantize_dynamic
// with per_channel_dynamic_qconfig). Internal to encoder/ (transformer.cc).
// Thread-safety: immutable after Create; Apply is safe concurrently.
#ifndef DIFFRANK_ENCODER_QUANTIZED_LINEAR_H_
#define DIFFRANK_ENCODER_QUANTIZED_LINEAR_H_

#include <ATen/core/ivalue.h>
#include <torch/torch.h>

#include <string>

#include "absl/status/statusor.h"

namespace diffrank::encoder {

class QuantizedLinear {
 public:
  // Create quantizes `weight` [out, in] and keeps `bias` [out] (or undefined)
  // in float32. FailedPrecondition when this LibTorch build has no quantized
  // CPU engine (it then names the engines it has).
  static absl::StatusOr<QuantizedLinear> Create(const torch::Tensor& weight,
                                                const torch::Tensor& bias);
  // Apply computes x W^T + b for float32 x [..., in] on the CPU.
  torch::Tensor Apply(const torch::Tensor& x) const;
  // Engine names the quantized engine in use ("onednn", "fbgemm", ...).
  static std::string Engine();
  // Available: this LibTorch build has a quantized CPU engine.
  static bool Available();

 private:
  c10::IValue packed_;  // the engine's prepacked int8 weight and bias
  bool reduce_range_ = false;
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_QUANTIZED_LINEAR_H_
