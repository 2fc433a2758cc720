// reader_pool.h: a bounded pool of read-only SQLite connections.
// Internal to index/. Thread-safety: thread-safe; each leased connection is
// used by one thread until the lease ends.
#ifndef DIFFRANK_INDEX_READER_POOL_H_
#define DIFFRANK_INDEX_READER_POOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/sqlite_db.h"

namespace diffrank::index {

// ReaderPool hands out read-only connections, one thread at a time each.
class ReaderPool {
 public:
  ReaderPool(std::string path, int max, bool sync_full)
      : path_(std::move(path)), max_(max), sync_full_(sync_full) {}

  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<Db> db)
        : pool_(pool), db_(std::move(db)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (db_) pool_->Release(std::move(db_));
    }
    Db& operator*() { return *db_; }
    Db* operator->() { return db_.get(); }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Db> db_;
  };

  // OpenAll opens every connection now, so reads never open the files by
  // path later (the path may hold a newer version by then:
  // Collections::Publish calls it through Collection::PinReaders).
  absl::Status OpenAll() {
    std::vector<Lease> held;
    for (int i = 0; i < max_; ++i) {
      absl::StatusOr<Lease> l = Acquire();
      if (!l.ok()) return l.status();
      // A first read opens the -wal and -shm files too (kept open after).
      if (absl::Status s = (*l)->Exec("SELECT count(*) FROM sqlite_master");
          !s.ok()) {
        return s;
      }
      held.push_back(*std::move(l));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Lease> Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty() || open_ < max_; });
    if (!free_.empty()) {
      std::unique_ptr<Db> db = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(db));
    }
    ++open_;
    lock.unlock();
    Db::Options o;
    o.read_only = true;
    o.sync_full = sync_full_;
    absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path_, o);
    if (!db.ok()) {
      std::lock_guard<std::mutex> g(mu_);
      --open_;
      cv_.notify_one();
      return db.status();
    }
    return Lease(this, *std::move(db));
  }

 private:
  void Release(std::unique_ptr<Db> db) {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(std::move(db));
    cv_.notify_one();
  }
  const std::string path_;
  const int max_;
  const bool sync_full_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Db>> free_;
  int open_ = 0;
};

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_READER_POOL_H_
