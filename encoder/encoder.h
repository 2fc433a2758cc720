// encoder.h: the public face of diffrank's model runtime.
//
// An Encoder owns one model directory loaded on one device: its config, its
// tokenizer and its weights. A bi-encoder turns texts into L2-normalized
// embeddings; a cross-encoder turns (query, passage) pairs into relevance
// logits. This header does not include LibTorch, so callers link the encoder
// without seeing torch (it is linked PRIVATE).
//
// Model directory: config.json (model_config.h), model.safetensors (tensor
// names in model_config.h), vocab.txt (one WordPiece token per line).
// Errors: every load problem is a status naming the file and the field or
// tensor; bad input (invalid UTF-8, ids out of range) is InvalidArgument;
// runtime failures from torch are caught here and mapped (out of memory ->
// ResourceExhausted, anything else -> Internal). Nothing throws.
// Thread-safety: immutable after Create; Run/Embed/Score may be called from
// several threads (weights are read-only). The service still calls it from
// one executor thread per device, which batches work.
#ifndef DIFFRANK_ENCODER_ENCODER_H_
#define DIFFRANK_ENCODER_ENCODER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "encoder/model_config.h"
#include "encoder/tokenizer.h"

namespace diffrank::encoder {

class Transformer;

// Device selects where the model runs.
enum class Device {
  kAuto,  // CUDA (bf16) when this build and the machine have it, else CPU
  kCpu,   // CPU, float32
  kCuda,  // CUDA, bf16; FailedPrecondition if unavailable
};

// Precision selects the compute dtype.
enum class Precision {
  kAuto,      // bfloat16 on CUDA, float32 on CPU
  kFloat32,   // float32 (CPU default; exact parity with the PyTorch reference)
  kBFloat16,  // bfloat16: default on CUDA; on CPU worth it where the CPU has
              // AVX512-BF16 or AMX (about 3x the float32 GEMM rate here)
  kInt8,      // CPU only: int8 dynamic quantization of the projections
              // (int8 weights per output channel, activations quantized per
              // batch, float32 elsewhere; quantized_linear.h). Needs no
              // AVX512-BF16: about 6x the float32 GEMM rate with VNNI here.
};

// EncoderOptions configures Encoder::Create.
struct EncoderOptions {
  std::string model_dir;          // required
  Device device = Device::kAuto;  // default: CUDA when present, else CPU
  Precision precision = Precision::kAuto;
  // CPU threads for LibTorch (a process-wide setting). 0 = the CPUs this
  // process has (affinity mask capped by the cgroup quota; cpu_features.h).
  int num_threads = 0;
  // CPU float32 / bfloat16: run the projections on oneDNN with weights packed
  // once (cpu_linear.h; 1.2-1.9x at::linear's GEMM) where this build has it.
  // false = LibTorch's at::linear (the reference; kept for A/B benchmarks).
  bool packed_cpu_linears = true;
  // CPU float32 / int8 (float32 activations), models without the segments
  // layout, where it measured faster (transformer.h): attention as one fused
  // task per (batch row, K/V group)
  // (cpu_attention.h). false = LibTorch's unfused attention (the reference;
  // kept for A/B benchmarks).
  bool fused_cpu_attention = true;
};

// Embeddings is a row-major [rows, dim] matrix of float32.
struct Embeddings {
  int rows = 0;
  int dim = 0;
  std::vector<float> values;
  std::vector<bool> truncated;  // per row: input exceeded max_length
  const float* row(int i) const { return values.data() + size_t(i) * dim; }
};

class Encoder {
 public:
  // Create loads and validates a model directory.
  static absl::StatusOr<std::unique_ptr<Encoder>> Create(
      const EncoderOptions& options);
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  // device returns "cpu (float32, packed onednn)", "cpu (float32)",
  // "cpu (int8 dynamic, onednn)" or "cuda:N (bfloat16)".
  std::string device() const;
  // kernels names the code path on this machine, for Info and /metrics:
  // "isa avx512_bf16; linears onednn brg:avx512_core_bf16" (CPU) or
  // "linears at::linear" (CUDA).
  std::string kernels() const;
  // dimension is the embedding size (hidden_size) of a bi-encoder.
  int dimension() const { return config_.hidden_size; }
  // TorchVersion is the LibTorch version this build runs on.
  static std::string TorchVersion();
  // FastPrecision resolves "auto" for a latency-bound model (the reranker):
  // on CUDA (`device` cuda, or auto with a CUDA device) `fallback`; on the
  // CPU bfloat16 where it has AVX512-BF16 or AMX, else int8 where the CPU
  // has VNNI (exact int8 dot products) and this build an int8 path, else
  // `fallback`. The quality and speed
  // behind this order are in docs/results.md and docs/benchmarks.md.
  static Precision FastPrecision(Device device, Precision fallback);
  // EmbedderPrecision resolves "auto" for the bi-encoder: on CUDA `kAuto`
  // (bfloat16 there); on the CPU bfloat16 where it has AVX512-BF16 or AMX
  // (1.5x the documents/s; dense / hybrid nDCG@10 on the four collections
  // -0.001 .. +0.008 against float32, docs/results.md), else float32 (int8
  // is opt-in for the embedder: its quality cost is not measured).
  static Precision EmbedderPrecision(Device device);

  // Run computes a padded batch: embeddings [B * d] for a bi-encoder, one
  // logit per row [B] for a cross-encoder. InvalidArgument for an empty
  // batch, ids outside the vocabulary or a sequence longer than positions.
  absl::StatusOr<std::vector<float>> Run(const TokenBatch& batch) const;
  // Embed tokenizes (truncating to max_length) and embeds texts (bi-encoder).
  absl::StatusOr<Embeddings> Embed(const std::vector<std::string>& texts) const;
  // EncodePair tokenizes a (query, passage) pair in this cross-encoder's
  // pair layout (config pair_mode: joint or segments).
  absl::StatusOr<Encoding> EncodePair(absl::string_view query,
                                      absl::string_view passage) const;
  // Score returns a logit for each (query, passage) pair (cross-encoder).
  absl::StatusOr<std::vector<float>> Score(
      absl::string_view query, const std::vector<std::string>& passages) const;

 private:
  Encoder() = default;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Transformer> model_;
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_ENCODER_H_
