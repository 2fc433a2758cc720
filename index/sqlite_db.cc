// sqlite_db.cc: SQLite connections, statements, error mapping.
#include "index/sqlite_db.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace diffrank::index {

namespace {

// StatementKind names a statement by its first keyword ("SELECT"): error
// messages reach clients, and the SQL itself is internal (and can be huge).
std::string StatementKind(absl::string_view sql) {
  size_t b = 0;
  while (b < sql.size() && !absl::ascii_isalpha(sql[b])) ++b;
  size_t e = b;
  while (e < sql.size() && e - b < 16 && absl::ascii_isalpha(sql[e])) ++e;
  return absl::StrCat(absl::AsciiStrToUpper(sql.substr(b, e - b)),
                      " statement");
}

}  // namespace

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  const std::string msg = absl::StrCat(
      "sqlite: ", what, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(msg);
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

Stmt& Stmt::Bind(int i, absl::string_view text) {
  sqlite3_bind_text(s_, i, text.data(), static_cast<int>(text.size()),
                    SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::Bind(int i, double v) {
  sqlite3_bind_double(s_, i, v);
  return *this;
}
Stmt& Stmt::BindBlob(int i, const void* data, size_t bytes) {
  sqlite3_bind_blob(s_, i, data, static_cast<int>(bytes), SQLITE_TRANSIENT);
  return *this;
}

absl::StatusOr<bool> Stmt::Step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const char* sql = sqlite3_sql(s_);
  return SqliteError(db_, rc, StatementKind(sql ? sql : ""));
}

absl::Status Stmt::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

absl::Status Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
  return absl::OkStatus();
}

std::string Stmt::Text(int col) const {
  const auto* p = sqlite3_column_text(s_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         sqlite3_column_bytes(s_, col))
           : std::string();
}

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path,
                                             const Options& options) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<Db> db(new Db(raw));
  if (rc != SQLITE_OK) return SqliteError(raw, rc, absl::StrCat("open ", path));
  sqlite3_busy_timeout(raw, 10000);
  sqlite3_extended_result_codes(raw, 1);
  if (!options.read_only) {
    if (absl::Status st = db->Exec("PRAGMA journal_mode=WAL"); !st.ok())
      return st;
  }
  if (absl::Status st =
          db->Exec(options.sync_full ? "PRAGMA synchronous=FULL"
                                     : "PRAGMA synchronous=NORMAL");
      !st.ok()) {
    return st;
  }
  return db;
}

Db::~Db() {
  cache_.clear();  // finalize statements before closing
  sqlite3_close_v2(db_);
}

absl::StatusOr<StmtLease> Db::Cached(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    absl::StatusOr<Stmt> s = Prepare(sql);
    if (!s.ok()) return s.status();
    it = cache_.emplace(std::string(sql), std::make_unique<Stmt>(*std::move(s)))
             .first;
  }
  return StmtLease(it->second.get());
}

absl::Status Db::Exec(absl::string_view sql) {
  char* err = nullptr;
  const int rc =
      sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    absl::Status st = SqliteError(db_, rc, StatementKind(sql));
    sqlite3_free(err);
    return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<Stmt> Db::Prepare(absl::string_view sql) {
  sqlite3_stmt* s = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(),
                                    static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, StatementKind(sql));
  return Stmt(s, db_);
}

}  // namespace diffrank::index
