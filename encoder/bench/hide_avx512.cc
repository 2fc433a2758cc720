// hide_avx512.cc: an LD_PRELOAD library that makes this process see an x86-64
// CPU without AVX-512 (nor AMX), so that programs which cannot be told to
// lower their kernels (ONNX Runtime's MLAS, PyTorch's cpuinfo) run their
// AVX2 paths on an AVX-512 machine: the same-ISA comparison of issue 23.
//
//   LD_PRELOAD=build/encoder/libdiffrank-hide-avx512.so python ...
//
// How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID; /proc/cpuinfo flag
// cpuid_fault) turns every CPUID instruction of the thread, and of the
// threads it starts later, into SIGSEGV; the handler runs the real CPUID with
// faulting briefly off, clears the AVX-512 / AMX feature bits and steps over
// the instruction. XGETBV is not trapped (XCR0 still enables the ZMM state),
// so software that looks at XCR0 alone is not fooled; every library measured
// here checks the CPUID bits too. CPUID run before this library's constructor
// (the dynamic loader's, glibc's string functions, an executable's
// preinit_array) saw the real CPU: diffrank's own binaries are lowered with
// DIFFRANK_MAX_CPU_ISA=avx2 instead.
//
// Where CPUID faulting is missing the library prints why and leaves the
// process as it is; DIFFRANK_HIDE_AVX512_STRICT=1 makes that fatal (exit 3).
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

struct sigaction previous;

// Leaf 7 sub-leaf 0: EBX AVX512F(16) DQ(17) IFMA(21) PF(26) ER(27) CD(28)
// BW(30) VL(31); ECX VBMI(1) VBMI2(6) VNNI(11) BITALG(12) VPOPCNTDQ(14);
// EDX 4VNNIW(2) 4FMAPS(3) VP2INTERSECT(8) AMX-BF16(22) FP16(23) AMX-TILE(24)
// AMX-INT8(25). Sub-leaf 1: EAX AVX512_BF16(5).
const uint32_t kLeaf7Ebx = (1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) |
                           (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31);
const uint32_t kLeaf7Ecx =
    (1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14);
const uint32_t kLeaf7Edx = (1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) |
                           (1u << 23) | (1u << 24) | (1u << 25);
const uint32_t kLeaf7Sub1Eax = 1u << 5;

long SetFaulting(int on) {
  // ARCH_SET_CPUID's argument is "CPUID allowed": 0 makes it fault.
  return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1);
}

void Handler(int sig, siginfo_t* info, void* context) {
  ucontext_t* uc = static_cast<ucontext_t*>(context);
  greg_t* r = uc->uc_mcontext.gregs;
  const unsigned char* ip = reinterpret_cast<const unsigned char*>(r[REG_RIP]);
  if (info->si_code != SI_KERNEL || ip[0] != 0x0F || ip[1] != 0xA2) {
    // Not ours: hand it on (or let the default action kill the process).
    if (previous.sa_flags & SA_SIGINFO) {
      previous.sa_sigaction(sig, info, context);
      return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
      previous.sa_handler(sig);
      return;
    }
    signal(sig, SIG_DFL);
    return;  // the instruction faults again, now fatally
  }
  const uint32_t leaf = static_cast<uint32_t>(r[REG_RAX]),
                 sub = static_cast<uint32_t>(r[REG_RCX]);
  uint32_t a, b, c, d;
  SetFaulting(0);
  __cpuid_count(leaf, sub, a, b, c, d);
  SetFaulting(1);
  if (leaf == 7 && sub == 0) {
    b &= ~kLeaf7Ebx;
    c &= ~kLeaf7Ecx;
    d &= ~kLeaf7Edx;
  } else if (leaf == 7 && sub == 1) {
    a &= ~kLeaf7Sub1Eax;
  }
  r[REG_RAX] = a;
  r[REG_RBX] = b;
  r[REG_RCX] = c;
  r[REG_RDX] = d;
  r[REG_RIP] += 2;
}

}  // namespace

__attribute__((constructor)) static void HideAvx512(void) {
  const char* strict = getenv("DIFFRANK_HIDE_AVX512_STRICT");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = Handler;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &previous) != 0 || SetFaulting(1) != 0) {
    fprintf(stderr,
            "hide_avx512: CPUID faulting unavailable on this machine "
            "(needs Linux's cpuid_fault); the process sees the real CPU\n");
    if (strict != nullptr && strcmp(strict, "1") == 0) _exit(3);
    sigaction(SIGSEGV, &previous, nullptr);
  }
}
