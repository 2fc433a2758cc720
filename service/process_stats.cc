// process_stats.cc: /proc parsing for the process_* metrics (see the header).
#include "service/process_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace diffrank::service {

absl::StatusOr<ProcessStats> ParseProcStat(const std::string& line,
                                           double btime, double ticks,
                                           double page) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields start after the last ')'. Field numbers as in proc(5).
  const size_t close = line.rfind(')');
  if (close == std::string::npos) {
    return absl::InvalidArgumentError("stat line has no \"(comm)\"");
  }
  std::vector<std::string> f =
      absl::StrSplit(line.substr(close + 1), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state): field n is f[n - 3].
  auto field = [&](int n, double& out) {
    return n - 3 < static_cast<int>(f.size()) &&
           absl::SimpleAtod(f[n - 3], &out);
  };
  double utime, stime, start, vsize, rss;
  if (!field(14, utime) || !field(15, stime) || !field(22, start) ||
      !field(23, vsize) || !field(24, rss)) {
    return absl::InvalidArgumentError("stat line has too few fields");
  }
  ProcessStats s;
  s.cpu_seconds = (utime + stime) / ticks;
  s.start_time_seconds = btime + start / ticks;
  s.virtual_bytes = vsize;
  s.resident_bytes = rss * page;
  return s;
}

absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc) {
  std::ifstream stat(proc + "/self/stat");
  std::string line;
  if (!stat || !std::getline(stat, line)) {
    return absl::UnavailableError(
        absl::StrCat("cannot read ", proc, "/self/stat"));
  }
  double btime = 0;
  std::ifstream global(proc + "/stat");
  for (std::string l; std::getline(global, l);) {
    if (absl::StartsWith(l, "btime ")) {
      (void)absl::SimpleAtod(l.substr(6), &btime);
    }
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  absl::StatusOr<ProcessStats> s = ParseProcStat(line, btime, ticks, page);
  if (!s.ok()) return s;
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator(proc + "/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  s->open_fds = fds;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    s->max_fds = static_cast<double>(lim.rlim_cur);
  }
  return s;
}

}  // namespace diffrank::service
