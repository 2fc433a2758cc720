// torch_compat.h: the one place that knows LibTorch version differences.
//
// diffrank builds against Debian's LibTorch 1.13 (CPU) and against the
// LibTorch 2.x inside the PyPI torch wheel (CUDA). Everything that differs
// between them lives here. Internal to encoder/; includes torch.
#ifndef DIFFRANK_ENCODER_TORCH_COMPAT_H_
#define DIFFRANK_ENCODER_TORCH_COMPAT_H_

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>

namespace diffrank::encoder::compat {

// Attend computes softmax(q k^T / sqrt(dh) + mask) v with a boolean key mask
// (true = attend) broadcastable to [B, heads, Tq, Tk]. q: [B, Hq, T, dh];
// k, v: [B, Hq, T, dh] (already expanded for GQA).
inline torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k,
                            const torch::Tensor& v,
                            const torch::Tensor& key_mask) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, key_mask);
#else
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor scores = torch::matmul(q * scale, k.transpose(-2, -1));
  scores.masked_fill_(key_mask.logical_not(),
                      -std::numeric_limits<float>::infinity());
  return torch::matmul(scores.softmax(-1), v);
#endif
}

// Probabilities returns softmax(q k^T / sqrt(dh) + mask) (for DiffAttn V1,
// which subtracts two attention maps before multiplying by V).
inline torch::Tensor Probabilities(const torch::Tensor& q,
                                   const torch::Tensor& k,
                                   const torch::Tensor& key_mask) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor scores = torch::matmul(q * scale, k.transpose(-2, -1));
  scores.masked_fill_(key_mask.logical_not(),
                      -std::numeric_limits<float>::infinity());
  return scores.softmax(-1);
}

// CudaAvailable reports whether this LibTorch build can use a CUDA device.
inline bool CudaAvailable() { return torch::cuda::is_available(); }

// VersionString is "major.minor.patch" of the LibTorch in use.
inline const char* VersionString() { return TORCH_VERSION; }

}  // namespace diffrank::encoder::compat

#endif  // DIFFRANK_ENCODER_TORCH_COMPAT_H_
