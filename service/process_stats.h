// process_stats.h: what the kernel says about this process (Linux /proc),
// for the standard Prometheus process_* metrics: CPU time, memory, file
// descriptors and start time.
// Not here: exposing them (metrics.h reads these at each scrape).
// Thread-safety: ReadProcessStats is a pure function of /proc; safe.
#ifndef DIFFRANK_SERVICE_PROCESS_STATS_H_
#define DIFFRANK_SERVICE_PROCESS_STATS_H_

#include <string>

#include "absl/status/statusor.h"

namespace diffrank::service {

struct ProcessStats {
  double cpu_seconds = 0;         // user + system
  double resident_bytes = 0;      // RSS
  double virtual_bytes = 0;       // VSZ
  double open_fds = 0;            // entries of /proc/self/fd
  double max_fds = 0;             // RLIMIT_NOFILE soft limit
  double start_time_seconds = 0;  // since the Unix epoch
};

// ReadProcessStats reads /proc/self/stat, /proc/self/fd and /proc/stat
// (`proc` is the mount point; tests pass a fake tree).
absl::StatusOr<ProcessStats> ReadProcessStats(
    const std::string& proc = "/proc");

// ParseProcStat reads the fields of a /proc/<pid>/stat line; `btime` is the
// boot time (seconds since the epoch) and `ticks`, `page` the clock tick
// rate and page size. InvalidArgument for a malformed line.
absl::StatusOr<ProcessStats> ParseProcStat(const std::string& line,
                                           double btime, double ticks,
                                           double page);

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_PROCESS_STATS_H_
