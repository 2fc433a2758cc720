// cpu_features.cc: CPU detection, the ISA cap, CPU quota and the preinit
// that hands them to libgomp, oneDNN, ATen and OpenBLAS (see cpu_features.h).
//
// Everything reachable from Preinit uses only the C library and static
// buffers: it runs before any shared library's constructors (and
// libstdc++'s), which is the point.
#include "encoder/cpu_features.h"

#include <cpuid.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

namespace diffrank::encoder {
namespace {

constexpr const char* kIsaNames[] = {"baseline",    "avx2",        "avx512",
                                     "avx512_vnni", "avx512_bf16", "amx"};

uint64_t Xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}

CpuIsa Detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return CpuIsa::kBaseline;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27),
             avx = c & (1u << 28);
  if (!osxsave || !avx) return CpuIsa::kBaseline;
  const uint64_t xcr0 = Xcr0();
  if ((xcr0 & 0x6) != 0x6) return CpuIsa::kBaseline;  // SSE + AVX state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return CpuIsa::kBaseline;
  const bool avx2 = b & (1u << 5);
  if (!avx2 || !fma) return CpuIsa::kBaseline;
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) &&  // F, DQ
                      (b & (1u << 30)) && (b & (1u << 31)) &&  // BW, VL
                      (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM state
  if (!avx512) return CpuIsa::kAvx2;
  const bool vnni = c & (1u << 11);
  if (!vnni) return CpuIsa::kAvx512;
  const bool amx = (d & (1u << 22)) && (d & (1u << 24)) &&  // AMX-BF16, TILE
                   (d & (1u << 25)) &&                      // AMX-INT8
                   (xcr0 & 0x60000) == 0x60000;  // XTILECFG + XTILEDATA
  unsigned a1 = 0, b1, c1, d1;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  const bool bf16 = a1 & (1u << 5);
  if (!bf16) return CpuIsa::kAvx512Vnni;
  return amx ? CpuIsa::kAmx : CpuIsa::kAvx512Bf16;
}

// ParseIsa: DIFFRANK_MAX_CPU_ISA's value; -1 when unknown.
int ParseIsa(const char* s) {
  if (s == nullptr) return -1;
  for (int i = 0; i < 6; ++i) {
    if (strcasecmp(s, kIsaNames[i]) == 0) return i;
  }
  if (strcasecmp(s, "avx512_core") == 0) return int(CpuIsa::kAvx512);
  return -1;
}

CpuIsa Lower(CpuIsa detected, const char* value) {
  const int cap = ParseIsa(value);
  return cap >= 0 && cap < int(detected) ? CpuIsa(cap) : detected;
}

CpuIsa Active(CpuIsa detected) {
  return Lower(detected, getenv("DIFFRANK_MAX_CPU_ISA"));
}

// ReadSmall: up to n-1 bytes of a /proc or /sys file, NUL-terminated.
bool ReadSmall(const char* path, char* buf, size_t n) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t got = 0;
  while (got + 1 < n) {
    const ssize_t r = read(fd, buf + got, n - 1 - got);
    if (r <= 0) break;
    got += size_t(r);
  }
  close(fd);
  buf[got] = '\0';
  return got > 0;
}

// QuotaCpus: the CPU quota as a count of CPUs (rounded up) from "quota
// period"; 0 when unlimited or unreadable.
int QuotaCpus(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return 0;
  return int((quota + period - 1) / period);
}

// CpuMax: a cgroup v2 cpu.max line as a count of CPUs; 0 when unlimited.
int CpuMax(const char* buf) {
  if (strncmp(buf, "max", 3) == 0) return 0;
  long long quota = 0, period = 0;
  return sscanf(buf, "%lld %lld", &quota, &period) == 2
             ? QuotaCpus(quota, period)
             : 0;
}

int Min0(int a, int b) { return a == 0 ? b : (b == 0 ? a : (a < b ? a : b)); }

// CgroupV2Cpus: the tightest cpu.max from this process's cgroup up to the
// root of the (possibly namespaced) hierarchy.
int CgroupV2Cpus() {
  char line[4096];
  if (!ReadSmall("/proc/self/cgroup", line, sizeof line)) return 0;
  const char* p = strstr(line, "0::");
  if (p == nullptr) return 0;
  char dir[4096];
  snprintf(dir, sizeof dir, "/sys/fs/cgroup%s", p + 3);
  char* nl = strchr(dir, '\n');
  if (nl != nullptr) *nl = '\0';
  int cpus = 0;
  for (;;) {
    char path[4200], buf[128];
    snprintf(path, sizeof path, "%s/cpu.max", dir);
    if (ReadSmall(path, buf, sizeof buf)) cpus = Min0(cpus, CpuMax(buf));
    char* slash = strrchr(dir, '/');
    if (slash == nullptr || slash - dir <= int(strlen("/sys/fs/cgroup"))) break;
    *slash = '\0';
  }
  return cpus;
}

int CgroupV1Cpus() {
  char q[64], p[64];
  for (const char* base :
       {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"}) {
    char qp[128], pp[128];
    snprintf(qp, sizeof qp, "%s/cpu.cfs_quota_us", base);
    snprintf(pp, sizeof pp, "%s/cpu.cfs_period_us", base);
    if (ReadSmall(qp, q, sizeof q) && ReadSmall(pp, p, sizeof p)) {
      return QuotaCpus(atoll(q), atoll(p));
    }
  }
  return 0;
}

int ComputeAvailableCpus() {
  int cpus = 0;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = int(sysconf(_SC_NPROCESSORS_ONLN));
  cpus = Min0(cpus, Min0(CgroupV2Cpus(), CgroupV1Cpus()));
  return cpus > 0 ? cpus : 1;
}

// EnvLookup: NAME's value in `envp`, or nullptr. (At preinit time glibc has
// not yet set `environ`, so getenv and setenv cannot be used: a setenv there
// is overwritten when the C library initializes.)
const char* EnvLookup(char** envp, const char* name) {
  const size_t n = strlen(name);
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  }
  return nullptr;
}

// Preinit runs before every shared library's initializer (DT_PREINIT_ARRAY of
// the executable), but libgomp and OpenBLAS read their settings from the
// environment they were started with, and no setenv can reach them. So when
// a default is missing it re-executes the program (/proc/self/exe, same
// arguments) with the defaults added: once, a few milliseconds at start. A
// user who sets OMP_NUM_THREADS and OMP_WAIT_POLICY (or GOMP_SPINCOUNT)
// avoids it. Uses static buffers only.
void Preinit(int argc, char** argv, char** envp) {
  if (argv == nullptr || envp == nullptr ||
      EnvLookup(envp, "DIFFRANK_PREINIT_REEXEC") != nullptr) {
    return;
  }
  static char add[8][64];
  int n_add = 0;
  auto set_default = [&](const char* name, const char* value) {
    if (EnvLookup(envp, name) != nullptr || n_add >= 7) return;
    snprintf(add[n_add++], sizeof add[0], "%s=%s", name, value);
  };
  char threads[16];
  snprintf(threads, sizeof threads, "%d", ComputeAvailableCpus());
  set_default("OMP_NUM_THREADS", threads);
  if (EnvLookup(envp, "GOMP_SPINCOUNT") == nullptr) {
    set_default("OMP_WAIT_POLICY", "PASSIVE");
  }
  const CpuIsa detected = Detect();
  const CpuIsa active =
      Lower(detected, EnvLookup(envp, "DIFFRANK_MAX_CPU_ISA"));
  if (active != detected) {
    static constexpr const char* kOnednn[] = {"SSE41",
                                              "AVX2",
                                              "AVX512_CORE",
                                              "AVX512_CORE_VNNI",
                                              "AVX512_CORE_BF16",
                                              "AVX512_CORE_AMX"};
    set_default("ONEDNN_MAX_CPU_ISA", kOnednn[int(active)]);
    set_default("DNNL_MAX_CPU_ISA", kOnednn[int(active)]);
    if (active < CpuIsa::kAvx512) {
      set_default("ATEN_CPU_CAPABILITY",
                  active == CpuIsa::kAvx2 ? "avx2" : "default");
      set_default("OPENBLAS_CORETYPE",
                  active == CpuIsa::kAvx2 ? "Haswell" : "Nehalem");
    }
  }
  if (n_add == 0) return;
  static char* env[4096];
  int n = 0;
  for (char** e = envp; *e != nullptr; ++e) {
    if (n >= 4096 - 10) return;  // an environment this large: leave it be
    env[n++] = *e;
  }
  for (int i = 0; i < n_add; ++i) env[n++] = add[i];
  static char marker[] = "DIFFRANK_PREINIT_REEXEC=1";
  env[n++] = marker;
  env[n] = nullptr;
  (void)argc;
  execve("/proc/self/exe", argv, env);  // returns only on failure (no /proc)
}

}  // namespace

// In .preinit_array of every executable that links this file (the encoder
// references it, so every binary that runs a model does).
__attribute__((section(".preinit_array"),
               used)) void (*const kDiffrankPreinit)(int, char**,
                                                     char**) = &Preinit;

const char* IsaName(CpuIsa isa) { return kIsaNames[int(isa)]; }

CpuIsa DetectedIsa() {
  static const CpuIsa isa = Detect();
  return isa;
}

CpuIsa ActiveIsa() {
  static const CpuIsa isa = Active(DetectedIsa());
  return isa;
}

std::string IsaDescription() {
  std::string s = IsaName(ActiveIsa());
  const char* cap = getenv("DIFFRANK_MAX_CPU_ISA");
  if (ActiveIsa() != DetectedIsa()) {
    s += std::string(" (cpu: ") + IsaName(DetectedIsa()) +
         ", lowered by DIFFRANK_MAX_CPU_ISA)";
  } else if (cap != nullptr && ParseIsa(cap) < 0) {
    s += std::string(" (DIFFRANK_MAX_CPU_ISA=") + cap +
         " ignored: not one of baseline, avx2, avx512, avx512_vnni, "
         "avx512_bf16, amx)";
  }
  return s;
}

CpuIsa LoweredIsa(CpuIsa detected, const char* cap) {
  return Lower(detected, cap);
}

int CpuMaxCpus(const char* cpu_max) { return CpuMax(cpu_max); }

int AvailableCpus() {
  static const int cpus = ComputeAvailableCpus();
  return cpus;
}

int DefaultThreads() {
  const char* env = getenv("OMP_NUM_THREADS");
  const int n = env != nullptr ? atoi(env) : 0;
  return n > 0 ? n : AvailableCpus();
}

}  // namespace diffrank::encoder
