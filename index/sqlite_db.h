// sqlite_db.h: a small RAII layer over the SQLite C API.
//
// Owns: opening a database file with the pragmas diffrank relies on (WAL,
// synchronous, busy timeout), prepared statements with typed binding and
// reading, and turning SQLite result codes into absl::Status (the one place
// SQLite errors are converted). Does not own: the schema (doc_store.h).
// Thread-safety: a Db and its statements belong to one thread at a time
// (connections are opened SQLITE_OPEN_NOMUTEX and pooled by the caller).
#ifndef DIFFRANK_INDEX_SQLITE_DB_H_
#define DIFFRANK_INDEX_SQLITE_DB_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace diffrank::index {

class Stmt {
 public:
  Stmt(sqlite3_stmt* s, sqlite3* db) : s_(s), db_(db) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_), db_(o.db_) { o.s_ = nullptr; }
  Stmt(const Stmt&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }

  // Bind* use 1-based parameter indexes.
  Stmt& Bind(int i, absl::string_view text);
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, double v);
  Stmt& BindBlob(int i, const void* data, size_t bytes);
  // Step returns true for a row, false when done, or an error.
  absl::StatusOr<bool> Step();
  // Run steps to completion (for statements without rows).
  absl::Status Run();
  absl::Status Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  double Double(int col) const { return sqlite3_column_double(s_, col); }
  std::string Text(int col) const;
  const void* Blob(int col) const { return sqlite3_column_blob(s_, col); }
  int Bytes(int col) const { return sqlite3_column_bytes(s_, col); }
  bool IsNull(int col) const {
    return sqlite3_column_type(s_, col) == SQLITE_NULL;
  }

 private:
  sqlite3_stmt* s_;
  sqlite3* db_;
};

// StmtLease is a cached statement borrowed from its Db; it is reset (ending
// any read it holds) when the lease ends.
class StmtLease {
 public:
  explicit StmtLease(Stmt* s) : s_(s) {}
  StmtLease(StmtLease&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  StmtLease(const StmtLease&) = delete;
  ~StmtLease() {
    if (s_) s_->Reset().IgnoreError();
  }
  Stmt* operator->() { return s_; }
  Stmt& operator*() { return *s_; }

 private:
  Stmt* s_;
};

class Db {
 public:
  struct Options {
    bool create = false;     // create the file if missing
    bool read_only = false;  // open read-only (reader pool)
    bool sync_full = true;   // synchronous=FULL: commits survive power loss
  };
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path,
                                                  const Options& options);
  ~Db();

  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Stmt> Prepare(absl::string_view sql);
  // Cached prepares `sql` once per connection and lends it out (hot paths).
  absl::StatusOr<StmtLease> Cached(absl::string_view sql);
  int64_t Changes() const { return sqlite3_changes64(db_); }
  sqlite3* raw() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  absl::flat_hash_map<std::string, std::unique_ptr<Stmt>> cache_;
};

// SqliteError turns a result code into a status naming `what`.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what);

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_SQLITE_DB_H_
