// onednn.h: the process's oneDNN CPU engine and each thread's stream, shared
// by the oneDNN users of encoder/ (cpu_linear.cc, cpu_attention.cc).
// Internal to encoder/; include only under DIFFRANK_HAVE_DNNL.
#ifndef DIFFRANK_ENCODER_ONEDNN_H_
#define DIFFRANK_ENCODER_ONEDNN_H_

#include <dnnl.hpp>

namespace diffrank::encoder::onednn {

inline const dnnl::engine& Engine() {
  static const dnnl::engine* engine =
      new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// One stream per calling thread (a stream is cheap but not free to create).
inline dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

}  // namespace diffrank::encoder::onednn

#endif  // DIFFRANK_ENCODER_ONEDNN_H_
