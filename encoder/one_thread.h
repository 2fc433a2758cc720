// one_thread.h: run the calling thread's small parallel work on that thread.
//
// Owns the rule for when a parallel region is not worth opening. ATen's
// LayerNorm and GELU open an OpenMP region per call whatever the size (13 + 6
// per forward of a 6-layer model on a 32-token query), and waking the other
// threads costs tens of microseconds per region with the passive wait policy
// (cpu_features.h; more on a VM, whose idle vCPUs halt), more than the work.
// OneThreadIf(small) sets the calling thread's OpenMP team size to 1 while in
// scope: omp_set_num_threads changes only the calling thread's setting, so
// forwards running on other threads keep theirs, and ATen and oneDNN (which
// size their teams by omp_get_max_threads at each call) run inline.
#ifndef DIFFRANK_ENCODER_ONE_THREAD_H_
#define DIFFRANK_ENCODER_ONE_THREAD_H_

#include <ATen/Parallel.h>
#include <omp.h>

#include <cstdint>

namespace diffrank::encoder {

// Elements an elementwise op (LayerNorm, GELU, quantize) touches below which
// one thread beats a parallel region: ~10-20 us of work on one core.
inline constexpr int64_t kInlineElements = int64_t{1} << 17;
// Multiply-adds of the fused attention (cpu_attention.cc) below which its
// tasks run on the calling thread: ~20 us on one core. (The linears estimate
// their own from a rate per precision and ISA: cpu_linear.cc.)
inline constexpr int64_t kInlineAttentionMacs = int64_t{1} << 20;

class OneThreadIf {
 public:
  explicit OneThreadIf(bool small) {
    if (!small) return;
    // at::get_num_threads first: it initializes ATen's per-thread setting,
    // which would otherwise overwrite ours on the first ATen call inside.
    saved_ = at::get_num_threads();
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~OneThreadIf() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  OneThreadIf(const OneThreadIf&) = delete;
  OneThreadIf& operator=(const OneThreadIf&) = delete;

 private:
  int saved_ = 0;
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_ONE_THREAD_H_
