// diffrank-encoder-bench: tokens/s and per-batch latency of a model directory.
//
//   diffrank-encoder-bench --model DIR --batch B --seq T [--iters N]
//                          [--warmup W] [--device auto|cpu|cuda]
//                          [--precision auto|fp32|bf16|int8]
//                          [--linears packed|torch]
// Runs full-length random token batches (fixed seed) through Encoder::Run and
// prints one JSON line: {"impl":"cpp", "batch", "seq", "tokens_per_s",
// "p50_ms", "p90_ms", "mean_ms", "device", "torch"}. train/bench_encoder.py
// runs it next to the PyTorch reference and reports the ratio.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "encoder/encoder.h"

namespace de = diffrank::encoder;

int main(int argc, char** argv) {
  std::string model, device = "auto", precision = "auto";
  std::string linears = "packed";
  std::string attention = "fused";
  int batch = 32, seq = 128, iters = 20, warmup = 3, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model = v;
    else if (a == "--batch")
      batch = std::atoi(v.c_str());
    else if (a == "--seq")
      seq = std::atoi(v.c_str());
    else if (a == "--iters")
      iters = std::atoi(v.c_str());
    else if (a == "--warmup")
      warmup = std::atoi(v.c_str());
    else if (a == "--threads")
      threads = std::atoi(v.c_str());
    else if (a == "--device")
      device = v;
    else if (a == "--precision")
      precision = v;
    else if (a == "--linears")
      linears = v;
    else if (a == "--attention")
      attention = v;
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  if (model.empty() || batch <= 0 || seq < 2 || iters <= 0 ||
      (linears != "packed" && linears != "torch") ||
      (attention != "fused" && attention != "torch")) {
    std::cerr << "usage: diffrank-encoder-bench --model DIR --batch B --seq T "
                 "[--iters N] [--warmup W] [--threads N] [--device D] "
                 "[--precision P] [--linears packed|torch] "
                 "[--attention fused|torch]\n";
    return 2;
  }
  de::EncoderOptions opts;
  opts.model_dir = model;
  opts.num_threads = threads;
  opts.packed_cpu_linears = linears == "packed";
  opts.fused_cpu_attention = attention == "fused";
  opts.device = device == "cpu"    ? de::Device::kCpu
                : device == "cuda" ? de::Device::kCuda
                                   : de::Device::kAuto;
  opts.precision = precision == "fp32"   ? de::Precision::kFloat32
                   : precision == "bf16" ? de::Precision::kBFloat16
                   : precision == "int8" ? de::Precision::kInt8
                                         : de::Precision::kAuto;
  auto enc = de::Encoder::Create(opts);
  if (!enc.ok()) {
    std::cerr << enc.status() << "\n";
    return 1;
  }
  const de::Encoder& e = **enc;
  de::TokenBatch b;
  b.batch = batch;
  b.seq_len = seq;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> tok(1000, e.config().vocab_size - 1);
  for (int r = 0; r < batch; ++r) {
    for (int t = 0; t < seq; ++t) {
      b.ids.push_back(t == 0         ? e.tokenizer().cls_id()
                      : t == seq - 1 ? e.tokenizer().sep_id()
                                     : tok(rng));
      b.type_ids.push_back(0);
      b.mask.push_back(1);
    }
    b.lengths.push_back(seq);
  }
  if (e.config().segments()) {
    // The segments pair layout: a max_query_length query, then the passage.
    const int q = std::min(e.config().max_query_length, seq - 2);
    for (int r = 0; r < batch; ++r) {
      for (int t = 0; t < seq; ++t) {
        b.positions.push_back(t < q ? t : t - q);
        b.segments.push_back(t < q ? 0 : 1);
      }
    }
  }
  std::vector<double> ms;
  for (int i = 0; i < warmup + iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto out = e.Run(b);
    const auto t1 = std::chrono::steady_clock::now();
    if (!out.ok()) {
      std::cerr << out.status() << "\n";
      return 1;
    }
    if (i >= warmup) {
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
  }
  double total = 0;
  for (double m : ms) total += m;
  std::sort(ms.begin(), ms.end());
  const double mean = total / ms.size();
  std::cout << absl::StrFormat(
      "{\"impl\": \"cpp\", \"batch\": %d, \"seq\": %d, \"tokens_per_s\": %.1f, "
      "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"mean_ms\": %.3f, \"device\": "
      "\"%s\", \"kernels\": \"%s\", \"torch\": \"%s\"}\n",
      batch, seq, batch * seq / (mean / 1000.0), ms[ms.size() / 2],
      ms[std::min(ms.size() - 1, ms.size() * 9 / 10)], mean, e.device(),
      e.kernels(), de::Encoder::TorchVersion());
  return 0;
}
