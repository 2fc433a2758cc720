// torch_compat.h: the one place that knows LibTorch version differences.
//
// diffrank builds against Debian's LibTorch 1.13 (CPU) and against the
// LibTorch 2.x inside the PyPI torch wheel (CUDA). Everything that differs
// between them lives here. Internal to encoder/; includes torch.
#ifndef DIFFRANK_ENCODER_TORCH_COMPAT_H_
#define DIFFRANK_ENCODER_TORCH_COMPAT_H_

#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace diffrank::encoder::compat {

// ChunkRows is how many batch rows of attention scores fit in ~2 MiB.
inline int64_t ChunkRows(const torch::Tensor& q, int64_t keys) {
  const int64_t bytes_per_row = q.size(1) * q.size(2) * keys * q.element_size();
  return std::max<int64_t>(
      1, (int64_t{2} << 20) / std::max<int64_t>(1, bytes_per_row));
}

// ByBatchChunks returns core(first_row, rows) over the batch in chunks of
// ChunkRows(q, keys) rows, concatenated along the batch (one call when the
// whole batch fits).
template <typename Core>
torch::Tensor ByBatchChunks(const torch::Tensor& q, int64_t keys, Core core) {
  const int64_t b = q.size(0);
  const int64_t rows = ChunkRows(q, keys);
  if (rows >= b) return core(0, b);
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < b; i += rows) {
    parts.push_back(core(i, std::min(rows, b - i)));
  }
  return torch::cat(parts, 0);
}

// AttendUnfused is attention as three ops (scores, softmax, weighted sum).
inline torch::Tensor AttendUnfused(const torch::Tensor& q,
                                   const torch::Tensor& k,
                                   const torch::Tensor& v,
                                   const torch::Tensor& key_mask) {
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1));
  scores.add_(key_mask);
  return torch::matmul(scores.softmax(-1), v);
}

// Attend computes softmax(q k^T + mask) v for grouped heads, with the
// softmax scale already folded into q. q: [B, G, R*T, dh] (the R query heads
// of each K/V group stacked along the sequence), k, v: [B, G, T, dh],
// additive key mask [B, 1, 1, T] (0 or -inf). Grouping this way serves GQA
// and DiffAttn V2 without copying K/V per query head.
inline torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k,
                            const torch::Tensor& v,
                            const torch::Tensor& key_mask) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, key_mask, 0.0, false,
                                          /*scale=*/1.0);
#else
  // LibTorch 1.13 has no fused attention. Doing the batch a few rows at a
  // time keeps the score matrix in cache: 3x faster at 32 x 128 (measured).
  return ByBatchChunks(q, k.size(2), [&](int64_t i, int64_t n) {
    return AttendUnfused(q.narrow(0, i, n), k.narrow(0, i, n),
                         v.narrow(0, i, n), key_mask.narrow(0, i, n));
  });
#endif
}

// Probabilities returns softmax(q k^T + mask), scale folded into q (for
// DiffAttn V1, which subtracts two attention maps before multiplying by V).
inline torch::Tensor Probabilities(const torch::Tensor& q,
                                   const torch::Tensor& k,
                                   const torch::Tensor& key_mask) {
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1));
  scores.add_(key_mask);
  return scores.softmax(-1);
}

// CudaAvailable reports whether this LibTorch build can use a CUDA device.
inline bool CudaAvailable() { return torch::cuda::is_available(); }

// VersionString is "major.minor.patch" of the LibTorch in use.
inline const char* VersionString() { return TORCH_VERSION; }

}  // namespace diffrank::encoder::compat

#endif  // DIFFRANK_ENCODER_TORCH_COMPAT_H_
