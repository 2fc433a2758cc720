// data_dir_lock.h: one process per data directory.
//
// Two servers on one --data_dir would each keep their own FAISS index in
// memory and overwrite each other's snapshots (measured: documents written
// through the first were never found by dense search afterwards). The lock
// is an exclusive flock(2) on <data_dir>/LOCK, held for the process's
// lifetime and released by the kernel when it exits (also on SIGKILL), so a
// crash never leaves a stale lock. The file records the holder's pid for the
// error message.
// Thread-safety: the object is immutable after Acquire.
#ifndef DIFFRANK_PIPELINE_DATA_DIR_LOCK_H_
#define DIFFRANK_PIPELINE_DATA_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace diffrank::pipeline {

class DataDirLock {
 public:
  // Acquire creates `dir` if needed and locks it. FailedPrecondition (naming
  // the holder's pid) when another process holds it.
  static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(
      const std::string& dir);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace diffrank::pipeline

#endif  // DIFFRANK_PIPELINE_DATA_DIR_LOCK_H_
