// fuzz_util.h: helpers shared by the fuzz targets: a fresh temporary
// directory per process, and Expect, which turns a broken promise into a
// crash libFuzzer reports (an INTERNAL status on user input is a bug).
#ifndef DIFFRANK_FUZZ_FUZZ_UTIL_H_
#define DIFFRANK_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/status/status.h"

namespace diffrank::fuzz {

inline std::string TempDir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() /
                 ("diffrank_fuzz_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

// NotInternal aborts when user input produced an internal error.
inline void NotInternal(const absl::Status& s, const char* what) {
  if (s.code() == absl::StatusCode::kInternal ||
      s.code() == absl::StatusCode::kUnknown ||
      s.code() == absl::StatusCode::kDataLoss) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::abort();
  }
}

inline void Expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "broken: %s\n", what);
    std::abort();
  }
}

}  // namespace diffrank::fuzz

#endif  // DIFFRANK_FUZZ_FUZZ_UTIL_H_
