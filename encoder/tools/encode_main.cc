// diffrank-encode: runs a model directory over a file of inputs, offline.
//
//   diffrank-encode --model DIR --input IN --output OUT.safetensors
//                   [--device auto|cpu|cuda] [--precision auto|fp32|bf16|int8]
//                   [--batch_size N] [--threads N (CPU, 0 = all cores)]
//   diffrank-encode --cpu_info   (JSON: the kernel path this CPU gets)
// IN is either JSON lines ({"text": ..., "kind"?: "query"|"document"} for a
// bi-encoder: a kind puts the model's query/document prefix first; {"query":
// ..., "passage": ...} for a cross-encoder) or a safetensors file holding int64
// input_ids, token_type_ids and attention_mask [B, T] (run as one batch).
// OUT holds "output" (float32 [N, d] embeddings or [N] logits) and, for JSON
// input, "truncated" (uint8 [N]). Used by the parity tests and for bulk
// embedding of files without the service.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "encoder/cpu_features.h"
#include "encoder/encoder.h"
#include "encoder/safetensors.h"
#include "nlohmann/json.hpp"

namespace de = diffrank::encoder;

namespace {

int Fail(const std::string& msg) {
  std::cerr << "diffrank-encode: " << msg << "\n";
  return 1;
}

constexpr char kUsage[] =
    "usage: diffrank-encode --model DIR --input FILE --output "
    "FILE.safetensors\n"
    "       [--device auto|cpu|cuda] [--precision auto|fp32|bf16|int8]\n"
    "       [--batch_size N (default 32)] [--threads N (default: all "
    "cores)]\n"
    "       diffrank-encode --cpu_info\n";

}  // namespace

int main(int argc, char** argv) {
  std::string model, input, output, device = "auto", precision = "auto";
  int batch_size = 32;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model")
      model = value();
    else if (a == "--input")
      input = value();
    else if (a == "--output")
      output = value();
    else if (a == "--device")
      device = value();
    else if (a == "--precision")
      precision = value();
    else if (a == "--batch_size")
      batch_size = std::atoi(value().c_str());
    else if (a == "--threads")
      threads = std::atoi(value().c_str());
    else if (a == "--cpu_info") {
      std::cout << nlohmann::json{{"isa", de::IsaName(de::ActiveIsa())},
                                  {"detected", de::IsaName(de::DetectedIsa())},
                                  {"native_bf16", de::NativeBf16()},
                                  {"int8_dot_products", de::Int8DotProducts()},
                                  {"threads", de::DefaultThreads()}}
                       .dump()
                << "\n";
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "unknown flag " << a << "\n" << kUsage;
      return 2;
    }
  }
  if (model.empty() || input.empty() || output.empty() || batch_size <= 0) {
    std::cerr << kUsage;
    return 2;
  }
  de::EncoderOptions opts;
  opts.model_dir = model;
  opts.num_threads = threads;
  if (device == "cpu")
    opts.device = de::Device::kCpu;
  else if (device == "cuda")
    opts.device = de::Device::kCuda;
  else if (device != "auto")
    return Fail("--device must be auto, cpu or cuda");
  if (precision == "fp32")
    opts.precision = de::Precision::kFloat32;
  else if (precision == "bf16")
    opts.precision = de::Precision::kBFloat16;
  else if (precision == "int8")
    opts.precision = de::Precision::kInt8;
  else if (precision != "auto")
    return Fail("--precision must be auto, fp32, bf16 or int8");
  auto enc = de::Encoder::Create(opts);
  if (!enc.ok()) return Fail(std::string(enc.status().message()));
  const de::Encoder& e = **enc;
  std::cerr << "diffrank-encode: " << e.config().model_id << " on "
            << e.device() << "\n";

  std::vector<float> out;
  std::vector<uint8_t> truncated;
  int64_t rows = 0;
  const auto start = std::chrono::steady_clock::now();
  if (absl::EndsWith(input, ".safetensors")) {
    auto file = de::SafetensorsFile::Open(input);
    if (!file.ok()) return Fail(std::string(file.status().message()));
    de::TokenBatch b;
    const char* names[] = {"input_ids", "token_type_ids", "attention_mask"};
    std::vector<int64_t>* dst[] = {&b.ids, &b.type_ids, &b.mask};
    for (int k = 0; k < 3; ++k) {
      const de::TensorView* t = (*file)->Find(names[k]);
      if (t == nullptr || t->dtype != de::DType::kI64 || t->shape.size() != 2) {
        return Fail(input + ": needs int64 [B, T] tensor " + names[k]);
      }
      b.batch = t->shape[0];
      b.seq_len = t->shape[1];
      dst[k]->resize(t->numel());
      std::memcpy(dst[k]->data(), t->data, t->nbytes);
    }
    auto r = e.Run(b);
    if (!r.ok()) return Fail(std::string(r.status().message()));
    out = *std::move(r);
    rows = b.batch;
  } else {
    std::ifstream in(input);
    if (!in) return Fail("cannot open " + input);
    std::vector<de::Encoding> pending;
    auto flush = [&]() -> absl::Status {
      if (pending.empty()) return absl::OkStatus();
      auto r = e.Run(e.tokenizer().Pad(pending));
      if (!r.ok()) return r.status();
      out.insert(out.end(), r->begin(), r->end());
      pending.clear();
      return absl::OkStatus();
    };
    std::string line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        return Fail(input + ":" + std::to_string(lineno) +
                    ": not a JSON object");
      }
      absl::StatusOr<de::Encoding> enc_line;
      if (e.config().role == de::Role::kCrossEncoder) {
        if (!j.contains("query") || !j.contains("passage")) {
          return Fail(input + ":" + std::to_string(lineno) +
                      ": needs \"query\" and \"passage\"");
        }
        enc_line = e.EncodePair(j["query"].get<std::string>(),
                                j["passage"].get<std::string>());
      } else {
        if (!j.contains("text")) {
          return Fail(input + ":" + std::to_string(lineno) +
                      ": needs \"text\"");
        }
        // "kind": "query" | "document" puts the model's prefix first (as
        // the server's Embed does); without it the text is encoded as is.
        std::string text =
            j["text"].is_string() ? j["text"].get<std::string>() : "";
        if (j.contains("kind")) {
          const std::string kind =
              j["kind"].is_string() ? j["kind"].get<std::string>() : "";
          if (kind != "query" && kind != "document") {
            return Fail(input + ":" + std::to_string(lineno) +
                        ": \"kind\" must be \"query\" or \"document\"");
          }
          text = (kind == "query" ? e.config().query_prefix
                                  : e.config().document_prefix) +
                 text;
        }
        enc_line = e.tokenizer().Encode(text);
      }
      if (!enc_line.ok()) {
        return Fail(input + ":" + std::to_string(lineno) + ": " +
                    std::string(enc_line.status().message()));
      }
      truncated.push_back(enc_line->truncated() ? 1 : 0);
      pending.push_back(*std::move(enc_line));
      ++rows;
      if (static_cast<int>(pending.size()) == batch_size) {
        if (auto st = flush(); !st.ok()) return Fail(std::string(st.message()));
      }
    }
    if (auto st = flush(); !st.ok()) return Fail(std::string(st.message()));
  }
  // Throughput line for benchmarks (tokenize + compute, not model load).
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::cerr << "{\"rows\": " << rows << ", \"seconds\": " << secs
            << ", \"rows_per_s\": " << (secs > 0 ? rows / secs : 0) << "}\n";
  std::vector<de::TensorToWrite> tensors;
  std::vector<int64_t> shape{rows};
  if (e.config().role == de::Role::kBiEncoder) shape.push_back(e.dimension());
  tensors.push_back(
      {"output", de::DType::kF32, shape,
       absl::string_view(reinterpret_cast<const char*>(out.data()),
                         out.size() * sizeof(float))});
  if (!truncated.empty()) {
    tensors.push_back(
        {"truncated",
         de::DType::kU8,
         {rows},
         absl::string_view(reinterpret_cast<const char*>(truncated.data()),
                           truncated.size())});
  }
  if (auto st = de::WriteSafetensors(output, tensors); !st.ok()) {
    return Fail(std::string(st.message()));
  }
  return 0;
}
