// hide_avx512_check.cc: run under LD_PRELOAD=libdiffrank-hide-avx512.so
// (ctest hide_avx512): CPUID shows no AVX-512 on this thread and on a thread
// started later, AVX2 and FMA stay as /proc/cpuinfo has them, and a real
// segmentation fault still kills the process. Exit 77 (skip) where the
// kernel or CPU has no CPUID faulting, or the process may not turn it on.
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace {

bool HasFlag(const std::string& flags, const std::string& name) {
  std::istringstream in(flags);
  for (std::string f; in >> f;) {
    if (f == name) return true;
  }
  return false;
}

struct Seen {
  bool avx2, fma, avx512f, avx512bw, vnni, bf16;
};

Seen Look() {
  unsigned a, b, c, d;
  Seen s{};
  __cpuid(1, a, b, c, d);
  s.fma = c & (1u << 12);
  __cpuid_count(7, 0, a, b, c, d);
  s.avx2 = b & (1u << 5);
  s.avx512f = b & (1u << 16);
  s.avx512bw = b & (1u << 30);
  s.vnni = c & (1u << 11);
  __cpuid_count(7, 1, a, b, c, d);
  s.bf16 = a & (1u << 5);
  return s;
}

int Check(const char* where, const Seen& s, const std::string& flags) {
  int bad = 0;
  auto expect = [&](const char* what, bool got, bool want) {
    if (got != want) {
      std::fprintf(stderr, "%s: %s is %d, expected %d\n", where, what, got,
                   want);
      ++bad;
    }
  };
  expect("avx2", s.avx2, HasFlag(flags, "avx2"));
  expect("fma", s.fma, HasFlag(flags, "fma"));
  expect("avx512f", s.avx512f, false);
  expect("avx512bw", s.avx512bw, false);
  expect("avx512_vnni", s.vnni, false);
  expect("avx512_bf16", s.bf16, false);
  return bad;
}

}  // namespace

int main() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, flags;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) {
      flags = line.substr(line.find(':') + 1);
      break;
    }
  }
  if (!HasFlag(flags, "cpuid_fault")) {
    std::puts("no cpuid_fault on this machine: skipped");
    return 77;
  }
  // ARCH_GET_CPUID answers 1 while CPUID is allowed: the library could not
  // turn faulting on here (e.g. a seccomp filter); it said why on stderr.
  if (syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0) != 0) {
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) == 0) {  // it can be
      syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
      std::fprintf(stderr,
                   "CPUID faulting works here, but the preloaded library did "
                   "not turn it on\n");
      return 1;
    }
    std::puts("CPUID faulting could not be turned on here: skipped");
    return 77;
  }
  int bad = Check("main thread", Look(), flags);
  Seen later{};
  std::thread([&] { later = Look(); }).join();
  bad += Check("later thread", later, flags);
  const pid_t child = fork();
  if (child == 0) {
    volatile int* null = nullptr;
    *null = 1;  // must still be fatal
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV) {
    std::fprintf(stderr, "a null write did not end in SIGSEGV (status %d)\n",
                 status);
    ++bad;
  }
  if (bad == 0) std::puts("AVX-512 hidden; AVX2/FMA as the CPU has them");
  return bad == 0 ? 0 : 1;
}
