// encoder.cc: model-directory loading and the torch adapter (the one place
// that turns LibTorch exceptions into statuses).
#include "encoder/encoder.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <thread>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "encoder/cpu_features.h"
#include "encoder/cpu_linear.h"
#include "encoder/quantized_linear.h"
#include "encoder/safetensors.h"
#include "encoder/torch_compat.h"
#include "encoder/transformer.h"

namespace diffrank::encoder {
namespace {

// KeepActivationMemory makes glibc's malloc keep freed activation buffers
// (process-wide, once): by default a buffer above ~32 MiB, or the heap top
// above its trim threshold, goes back to the kernel on free, and the next
// forward pass page-faults the same memory in again (15% of the CPU time at
// 32 x 128 tokens, measured with perf; 1.2-1.5x tokens/s once kept,
// docs/benchmarks.md). Peak memory is kept resident instead, as an inference
// server wants (the effect PyTorch's CPU guide gets from jemalloc/tcmalloc).
void KeepActivationMemory() {
#ifdef __GLIBC__
  static const bool once = [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)once;
#endif
}

}  // namespace

namespace {

absl::Status FromTorchError(const std::exception& e, absl::string_view what) {
  const std::string msg = e.what();
  if (absl::StrContains(msg, "out of memory") ||
      absl::StrContains(msg, "DefaultCPUAllocator: can't allocate")) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", msg));
  }
  return absl::InternalError(absl::StrCat(what, ": ", msg));
}

}  // namespace

Encoder::~Encoder() = default;

std::string Encoder::TorchVersion() { return compat::VersionString(); }

absl::StatusOr<std::unique_ptr<Encoder>> Encoder::Create(
    const EncoderOptions& options) {
  if (options.model_dir.empty()) {
    return absl::InvalidArgumentError("EncoderOptions.model_dir is empty");
  }
  const std::string dir = options.model_dir;
  std::unique_ptr<Encoder> enc(new Encoder());
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir + "/config.json");
  if (!config.ok()) return config.status();
  enc->config_ = *std::move(config);

  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = Tokenizer::ForModel(dir);
  if (!tok.ok()) return tok.status();
  enc->tokenizer_ = *std::move(tok);

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(dir + "/model.safetensors");
  if (!file.ok()) return file.status();

  bool cuda = false;
  try {
    const bool int8 = options.precision == Precision::kInt8;
    if (int8 && options.device == Device::kCuda) {
      return absl::InvalidArgumentError(
          "precision int8 is a CPU path; on CUDA use bfloat16 or float32");
    }
    if (options.device == Device::kCuda && !compat::CudaAvailable()) {
      return absl::FailedPreconditionError(
          "device cuda requested but this LibTorch build or machine has no "
          "CUDA device");
    }
    cuda = !int8 && options.device != Device::kCpu && compat::CudaAvailable();
    if (!cuda) {
      const int threads =
          options.num_threads > 0 ? options.num_threads : DefaultThreads();
      torch::set_num_threads(threads);
      KeepActivationMemory();
      if (options.precision == Precision::kBFloat16 &&
          ActiveIsa() < CpuIsa::kAvx512 && DetectedIsa() >= CpuIsa::kAvx512) {
        // LibTorch's bf16 CPU matmuls go through oneDNN, which (2.6) has no
        // bf16 kernel below AVX-512 once its ISA is capped.
        return absl::FailedPreconditionError(absl::StrCat(
            "precision bfloat16 cannot run on kernel path ", IsaDescription(),
            ": oneDNN has no bfloat16 kernels below avx512; use float32 or "
            "raise DIFFRANK_MAX_CPU_ISA"));
      }
      if (options.precision == Precision::kBFloat16 && !NativeBf16()) {
        std::fprintf(stderr,
                     "diffrank: precision bfloat16 on a CPU without "
                     "AVX512-BF16 or AMX (kernel path %s): emulated, several "
                     "times slower than float32; use float32 or auto\n",
                     IsaDescription().c_str());
      }
    }
    c10::InferenceMode guard;
    const bool bf16 = options.precision == Precision::kBFloat16 ||
                      (options.precision == Precision::kAuto && cuda);
    absl::StatusOr<std::unique_ptr<Transformer>> model = Transformer::Load(
        enc->config_, **file,
        cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU),
        bf16 ? torch::kBFloat16 : torch::kFloat32, int8,
        options.packed_cpu_linears, options.fused_cpu_attention);
    if (!model.ok()) return model.status();
    enc->model_ = *std::move(model);
  } catch (const std::exception& e) {
    return FromTorchError(e, absl::StrCat("loading ", dir));
  }
  return enc;
}

namespace {

bool OnCuda(Device device) {
  return device == Device::kCuda ||
         (device == Device::kAuto && compat::CudaAvailable());
}

}  // namespace

Precision Encoder::FastPrecision(Device device, Precision fallback) {
  if (OnCuda(device)) return fallback;
  if (NativeBf16()) return Precision::kBFloat16;
  return Int8DotProducts() &&
                 (CpuLinear::Available() || QuantizedLinear::Available())
             ? Precision::kInt8
             : fallback;
}

Precision Encoder::EmbedderPrecision(Device device) {
  if (OnCuda(device)) return Precision::kAuto;
  return NativeBf16() ? Precision::kBFloat16 : Precision::kFloat32;
}

std::string Encoder::kernels() const {
  if (!model_->device().is_cpu()) {
    return absl::StrCat("linears ", model_->linear_kernels());
  }
  return absl::StrCat("isa ", IsaDescription(), "; linears ",
                      model_->linear_kernels(), "; attention ",
                      model_->attention_kernels());
}

std::string Encoder::device() const {
  if (model_->int8_linears()) {
    return model_->packed_linears()
               ? absl::StrCat(model_->device().str(),
                              " (int8 dynamic per token, packed onednn)")
               : absl::StrCat(model_->device().str(), " (int8 dynamic, ",
                              QuantizedLinear::Engine(), ")");
  }
  const c10::ScalarType t = model_->dtype();
  const char* name = t == c10::kFloat      ? "float32"
                     : t == c10::kBFloat16 ? "bfloat16"
                     : t == c10::kHalf     ? "float16"
                                           : c10::toString(t);
  const bool emulated =
      t == c10::kBFloat16 && model_->device().is_cpu() && !NativeBf16();
  return absl::StrCat(model_->device().str(), " (", name,
                      emulated ? " emulated" : "",
                      model_->packed_linears() ? ", packed onednn" : "", ")");
}

absl::StatusOr<std::vector<float>> Encoder::Run(const TokenBatch& batch) const {
  const ModelConfig& c = config_;
  if (batch.batch <= 0 || batch.seq_len <= 0) {
    return absl::InvalidArgumentError("batch is empty");
  }
  const size_t n = static_cast<size_t>(batch.batch) * batch.seq_len;
  if (batch.ids.size() != n || batch.type_ids.size() != n ||
      batch.mask.size() != n) {
    return absl::InvalidArgumentError(
        "batch arrays do not match batch x seq_len");
  }
  if (c.segments() != !batch.segments.empty() ||
      (c.segments() &&
       (batch.segments.size() != n || batch.positions.size() != n))) {
    return absl::InvalidArgumentError(
        c.segments() ? "this cross-encoder needs a segments-layout batch "
                       "(positions and segments for every token)"
                     : "a segments-layout batch for a model without segments");
  }
  for (size_t i = 0; i < batch.segments.size(); ++i) {
    if (batch.positions[i] < 0 ||
        batch.positions[i] >= c.max_position_embeddings ||
        (batch.segments[i] != 0 && batch.segments[i] != 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("position or segment at ", i, " is out of range"));
    }
  }
  if (batch.seq_len > c.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequence length ", batch.seq_len, " exceeds max_position_embeddings ",
        c.max_position_embeddings));
  }
  for (size_t i = 0; i < n; ++i) {
    if (batch.ids[i] < 0 || batch.ids[i] >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", batch.ids[i], " at position ", i,
                       " is outside the vocabulary (", c.vocab_size, ")"));
    }
    if (batch.type_ids[i] < 0 ||
        batch.type_ids[i] >= std::max(c.type_vocab_size, 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("token type ", batch.type_ids[i], " at position ", i,
                       " is out of range"));
    }
  }
  try {
    c10::InferenceMode guard;
    const auto shape = std::vector<int64_t>{batch.batch, batch.seq_len};
    auto to_device = [&](const std::vector<int64_t>& v) {
      return torch::from_blob(const_cast<int64_t*>(v.data()), shape,
                              torch::kInt64)
          .to(model_->device());
    };
    torch::Tensor positions, segments;
    if (c.segments()) {
      positions = to_device(batch.positions);
      segments = to_device(batch.segments);
    }
    torch::Tensor out =
        model_
            ->Forward(to_device(batch.ids), to_device(batch.type_ids),
                      to_device(batch.mask), positions, segments)
            .to(torch::kCPU, torch::kFloat32)
            .contiguous();
    return std::vector<float>(out.data_ptr<float>(),
                              out.data_ptr<float>() + out.numel());
  } catch (const std::exception& e) {
    return FromTorchError(e, "encoder forward");
  }
}

absl::StatusOr<Embeddings> Encoder::Embed(
    const std::vector<std::string>& texts) const {
  if (config_.role != Role::kBiEncoder) {
    return absl::FailedPreconditionError(
        "Embed needs a bi-encoder model; this one is a cross-encoder");
  }
  Embeddings out;
  out.dim = config_.hidden_size;
  if (texts.empty()) return out;
  std::vector<Encoding> encodings;
  encodings.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    absl::StatusOr<Encoding> e = tokenizer_->Encode(texts[i]);
    if (!e.ok()) {
      return absl::Status(
          e.status().code(),
          absl::StrCat("texts[", i, "]: ", e.status().message()));
    }
    out.truncated.push_back(e->truncated());
    encodings.push_back(*std::move(e));
  }
  absl::StatusOr<std::vector<float>> v = Run(tokenizer_->Pad(encodings));
  if (!v.ok()) return v.status();
  out.rows = static_cast<int>(texts.size());
  out.values = *std::move(v);
  return out;
}

absl::StatusOr<Encoding> Encoder::EncodePair(absl::string_view query,
                                             absl::string_view passage) const {
  // Instruction-trained sources (e5: "query: " / "passage: ") see their
  // prefixes in the pair too; without prefixes nothing is copied (passages
  // may be long and this runs once per reranked pair).
  std::string q, p;
  if (!config_.query_prefix.empty()) {
    q = absl::StrCat(config_.query_prefix, query);
    query = q;
  }
  if (!config_.document_prefix.empty()) {
    p = absl::StrCat(config_.document_prefix, passage);
    passage = p;
  }
  return config_.segments() ? tokenizer_->EncodeSegments(
                                  query, passage, config_.max_query_length)
                            : tokenizer_->EncodePair(query, passage);
}

absl::StatusOr<std::vector<float>> Encoder::Score(
    absl::string_view query, const std::vector<std::string>& passages) const {
  if (config_.role != Role::kCrossEncoder) {
    return absl::FailedPreconditionError(
        "Score needs a cross-encoder model; this one is a bi-encoder");
  }
  if (passages.empty()) return std::vector<float>{};
  std::vector<Encoding> encodings;
  encodings.reserve(passages.size());
  for (size_t i = 0; i < passages.size(); ++i) {
    absl::StatusOr<Encoding> e = EncodePair(query, passages[i]);
    if (!e.ok()) {
      return absl::Status(
          e.status().code(),
          absl::StrCat("passages[", i, "]: ", e.status().message()));
    }
    encodings.push_back(*std::move(e));
  }
  return Run(tokenizer_->Pad(encodings));
}

}  // namespace diffrank::encoder
