// run_tasks.h: hand a parallel loop's tasks to the OpenMP team a few at a
// time.
//
// Owns RunTasks (tasks from a shared counter) and RunRowTasks (rows in
// groups), which cpu_linear.cc and transformer.cc run their projections'
// work with. Why a counter: with the passive wait policy (cpu_features.h)
// the other threads wake tens of microseconds late, or not at all beside a
// busy process, and a static split would leave the caller waiting for their
// halves; with a counter the caller takes what they have not started.
// Internal to encoder/.
#ifndef DIFFRANK_ENCODER_RUN_TASKS_H_
#define DIFFRANK_ENCODER_RUN_TASKS_H_

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace diffrank::encoder {

// RunTasks runs fn(begin, end) over [0, tasks) on the calling thread's
// OpenMP team (one thread where OneThreadIf made it so).
template <typename Fn>
void RunTasks(int64_t tasks, const Fn& fn) {
  const int64_t threads = at::get_num_threads();
  const int64_t chunk = std::max<int64_t>(1, tasks / (8 * threads));
  std::atomic<int64_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    for (int64_t b; (b = next.fetch_add(chunk)) < tasks;) {
      fn(b, std::min(tasks, b + chunk));
    }
  });
}

// RunRowTasks runs fn(r0, r1) over the rows [0, m) in groups of `group`
// rows (the last one shorter), handed out as RunTasks does.
template <typename Fn>
void RunRowTasks(int64_t m, int64_t group, const Fn& fn) {
  RunTasks((m + group - 1) / group, [&](int64_t b, int64_t end) {
    fn(b * group, std::min(m, end * group));
  });
}

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_RUN_TASKS_H_
