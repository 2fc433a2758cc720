// cpu_features.h: what this x86-64 CPU can run, which kernel path the encoder
// uses on it, and how many threads the process really has.
//
// Owns: CPU feature detection (cpuid + the OS's XSAVE state, so AVX-512 that
// the kernel does not enable counts as absent), the kernel path ("ISA level")
// in use, which an operator or a test can lower with DIFFRANK_MAX_CPU_ISA
// (avx2, avx512, avx512_vnni, avx512_bf16, amx) to run the code a smaller CPU
// gets, and the default thread count (the affinity mask, capped by the cgroup
// CPU quota: a pod with `limits.cpu: 2` on a 64-core node gets 2).
// Before any library starts (an ELF preinit function in cpu_features.cc) the
// same settings are handed to the libraries that read them once at load:
// OMP_NUM_THREADS (the default above), OMP_WAIT_POLICY=PASSIVE (libgomp's
// default spin-wait collapses throughput when another process shares the
// cores), and for a lowered ISA ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY and
// OPENBLAS_CORETYPE. A variable the user set is never overridden. Those
// libraries read the environment the process started with, so the preinit
// re-executes the program once with the missing defaults added (marked by
// DIFFRANK_PREINIT_REEXEC=1); setting OMP_NUM_THREADS and OMP_WAIT_POLICY
// yourself (e.g. under valgrind) skips it.
// Torch-free; thread-safe (computed once).
#ifndef DIFFRANK_ENCODER_CPU_FEATURES_H_
#define DIFFRANK_ENCODER_CPU_FEATURES_H_

#include <string>

namespace diffrank::encoder {

// Kernel paths, each including the ones before it.
enum class CpuIsa {
  kBaseline = 0,  // x86-64 without AVX2/FMA: LibTorch's and oneDNN's SSE code
  kAvx2,          // AVX2 + FMA
  kAvx512,        // AVX-512 F/BW/VL/DQ
  kAvx512Vnni,    // + VNNI (int8 dot products without 16-bit saturation)
  kAvx512Bf16,    // + AVX512-BF16 (native bfloat16 dot products)
  kAmx,           // + AMX tiles (bf16 and int8)
};

// IsaName: "avx2", "avx512_vnni", ... (the DIFFRANK_MAX_CPU_ISA spellings).
const char* IsaName(CpuIsa isa);
// DetectedIsa: the highest path this CPU and OS support.
CpuIsa DetectedIsa();
// ActiveIsa: DetectedIsa lowered to DIFFRANK_MAX_CPU_ISA when that is set (an
// unknown value is ignored and reported by IsaDescription).
CpuIsa ActiveIsa();
// IsaDescription: for Info and logs, e.g. "avx2 (cpu: avx512_bf16, lowered by
// DIFFRANK_MAX_CPU_ISA)" or "avx512_bf16".
std::string IsaDescription();

// NativeBf16: bfloat16 matmuls run on bf16 instructions (else oneDNN and
// LibTorch emulate them, several times slower than float32).
inline bool NativeBf16() { return ActiveIsa() >= CpuIsa::kAvx512Bf16; }
// Int8DotProducts: int8 matmuls accumulate exactly (VNNI). Without it the
// x86 int8 kernels multiply u8 x s8 pairs into saturating 16-bit sums.
inline bool Int8DotProducts() { return ActiveIsa() >= CpuIsa::kAvx512Vnni; }

// AvailableCpus: CPUs in this process's affinity mask, capped by the cgroup
// (v2 cpu.max or v1 cfs quota, the tightest along the path) quota rounded up;
// at least 1.
int AvailableCpus();
// DefaultThreads: OMP_NUM_THREADS when set to a positive number (the
// preinit sets it to AvailableCpus() otherwise), else AvailableCpus().
int DefaultThreads();

// For tests: the pieces above on given inputs.
// LoweredIsa: `detected` capped by a DIFFRANK_MAX_CPU_ISA value (nullptr or
// an unknown name: `detected`).
CpuIsa LoweredIsa(CpuIsa detected, const char* cap);
// CpuMaxCpus: CPUs granted by a cgroup v2 cpu.max line ("max 100000" -> 0,
// unlimited; "150000 100000" -> 2).
int CpuMaxCpus(const char* cpu_max);

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_CPU_FEATURES_H_
