// cpu_features_test.cc: the ISA cap, cgroup quota parsing, and the preinit's
// settings as a freshly started process sees them (a child of this test).
#include "encoder/cpu_features.h"

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace diffrank::encoder {
namespace {

TEST(CpuFeatures, ActiveNeverExceedsDetected) {
  EXPECT_LE(int(ActiveIsa()), int(DetectedIsa()));
  EXPECT_FALSE(IsaDescription().empty());
  EXPECT_GE(AvailableCpus(), 1);
  EXPECT_GE(DefaultThreads(), 1);
}

TEST(CpuFeatures, CapLowersButNeverRaises) {
  EXPECT_EQ(LoweredIsa(CpuIsa::kAvx512Bf16, "avx2"), CpuIsa::kAvx2);
  EXPECT_EQ(LoweredIsa(CpuIsa::kAvx512Bf16, "AVX512_VNNI"),
            CpuIsa::kAvx512Vnni);
  EXPECT_EQ(LoweredIsa(CpuIsa::kAvx2, "amx"), CpuIsa::kAvx2);
  EXPECT_EQ(LoweredIsa(CpuIsa::kAvx2, "pentium"), CpuIsa::kAvx2);
  EXPECT_EQ(LoweredIsa(CpuIsa::kAmx, nullptr), CpuIsa::kAmx);
  EXPECT_STREQ(IsaName(CpuIsa::kAvx512Bf16), "avx512_bf16");
}

TEST(CpuFeatures, CgroupQuotaRoundsUp) {
  EXPECT_EQ(CpuMaxCpus("max 100000\n"), 0);
  EXPECT_EQ(CpuMaxCpus("100000 100000\n"), 1);
  EXPECT_EQ(CpuMaxCpus("150000 100000\n"), 2);
  EXPECT_EQ(CpuMaxCpus("50000 100000"), 1);
  EXPECT_EQ(CpuMaxCpus("garbage"), 0);
  EXPECT_EQ(CpuMaxCpus(""), 0);
}

// The child half: writes what it saw at start to DIFFRANK_PREINIT_REPORT.
TEST(PreinitChild, Report) {
  const char* out = std::getenv("DIFFRANK_PREINIT_REPORT");
  if (out == nullptr) GTEST_SKIP() << "run by Preinit.* only";
  std::ofstream f(out);
  for (const char* name : {"OMP_WAIT_POLICY", "OMP_NUM_THREADS",
                           "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"}) {
    const char* v = std::getenv(name);
    f << name << "=" << (v ? v : "") << "\n";
  }
}

// RunChild starts this binary afresh with exactly `env` and returns what
// its preinit set.
std::map<std::string, std::string> RunChild(std::vector<std::string> env) {
  // One file per parent process and test: ctest runs these tests in
  // parallel, and a shared name let one test remove the other's report.
  const std::string report =
      testing::TempDir() + "/preinit_report_" + std::to_string(getpid()) + "_" +
      testing::UnitTest::GetInstance()->current_test_info()->name();
  std::remove(report.c_str());
  env.push_back("DIFFRANK_PREINIT_REPORT=" + report);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=PreinitChild.*";
  char* argv[] = {exe.data(), filter.data(), nullptr};
  pid_t pid;
  EXPECT_EQ(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, envp.data()),
            0);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::map<std::string, std::string> seen;
  std::ifstream f(report);
  std::string line;
  while (std::getline(f, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) seen[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return seen;
}

TEST(Preinit, SetsPassiveWaitThreadsAndTheLoweredIsa) {
  auto seen = RunChild({"DIFFRANK_MAX_CPU_ISA=avx2"});
  EXPECT_EQ(seen["OMP_WAIT_POLICY"], "PASSIVE");
  EXPECT_EQ(seen["OMP_NUM_THREADS"], std::to_string(AvailableCpus()));
  if (DetectedIsa() > CpuIsa::kAvx2) {
    EXPECT_EQ(seen["ONEDNN_MAX_CPU_ISA"], "AVX2");
    EXPECT_EQ(seen["ATEN_CPU_CAPABILITY"], "avx2");
  }
}

TEST(Preinit, NeverOverridesTheUser) {
  auto seen =
      RunChild({"OMP_WAIT_POLICY=ACTIVE", "OMP_NUM_THREADS=3",
                "DIFFRANK_MAX_CPU_ISA=avx2", "ONEDNN_MAX_CPU_ISA=AVX512_CORE"});
  EXPECT_EQ(seen["OMP_WAIT_POLICY"], "ACTIVE");
  EXPECT_EQ(seen["OMP_NUM_THREADS"], "3");
  EXPECT_EQ(seen["ONEDNN_MAX_CPU_ISA"], "AVX512_CORE");
  seen = RunChild({"GOMP_SPINCOUNT=1000"});
  EXPECT_EQ(seen["OMP_WAIT_POLICY"], "");  // the user tuned spinning
  EXPECT_EQ(seen["ONEDNN_MAX_CPU_ISA"], "");
}

}  // namespace
}  // namespace diffrank::encoder
