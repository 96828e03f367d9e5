#pragma once
// A prepared SQLite statement with positional binding, shared by the SQLite store's files.
// Not thread-safe: callers hold the store's mutex.
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace slipway::sqlite {

// One prepared statement; binds by position (1-based) and steps.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(std::int64_t v) {
    sqlite3_bind_int64(stmt_, ++n_, v);
    return *this;
  }
  Stmt& Bind(int v) { return Bind(static_cast<std::int64_t>(v)); }
  Stmt& Bind(long long v) { return Bind(static_cast<std::int64_t>(v)); }
  Stmt& Bind(double v) {
    sqlite3_bind_double(stmt_, ++n_, v);
    return *this;
  }
  Stmt& Bind(const std::string& v) {
    sqlite3_bind_text(stmt_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(const std::optional<std::int64_t>& v) {
    if (v) return Bind(*v);
    sqlite3_bind_null(stmt_, ++n_);
    return *this;
  }

  // SQLITE_ROW, SQLITE_DONE, or an error code.
  int Step() { return rc_ == SQLITE_OK ? sqlite3_step(stmt_) : rc_; }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  std::optional<std::int64_t> OptInt(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return Int(col);
  }
  std::string Text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }
  Status Error(int rc) const {
    if (rc == SQLITE_CONSTRAINT) return Conflict(sqlite3_errmsg(db_));
    return Unavailable(std::string("database: ") + sqlite3_errmsg(db_));
  }
  // Runs a statement that returns no rows.
  Status Exec() {
    int rc = Step();
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? Status::Ok() : Error(rc);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
  int n_ = 0;
};

// Runs SQL text that returns no rows (several statements allowed).
inline Status ExecSql(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK) return Status::Ok();
  std::string msg = err ? err : sqlite3_errmsg(db);
  sqlite3_free(err);
  return Unavailable("database: " + msg);
}

// A write transaction begun with BEGIN IMMEDIATE: it takes the database's write lock at once
// (waiting up to the busy timeout), so what it reads cannot change before it commits, even
// from another connection. Rolled back on destruction unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db), begun_(ExecSql(db, "BEGIN IMMEDIATE")) {}
  ~Transaction() {
    if (begun_.ok() && !committed_) (void)ExecSql(db_, "ROLLBACK");
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Not ok when the transaction could not begin (kUnavailable: locked past the timeout).
  const Status& status() const { return begun_; }
  Status Commit() {
    Status s = ExecSql(db_, "COMMIT");
    committed_ = s.ok();
    return s;
  }

 private:
  sqlite3* db_;
  Status begun_;
  bool committed_ = false;
};

// Steps `s` to the end and reads every row with `read(const Stmt&)`.
template <typename T, typename Reader>
Result<std::vector<T>> All(Stmt& s, Reader read) {
  std::vector<T> out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out.push_back(read(s));
  if (rc != SQLITE_DONE) return s.Error(rc);
  return out;
}

// Reads the first row of `s`; kNotFound with `missing` when there is none.
template <typename T, typename Reader>
Result<T> One(Stmt& s, Reader read, const std::string& missing) {
  int rc = s.Step();
  if (rc == SQLITE_ROW) return read(s);
  if (rc == SQLITE_DONE) return NotFound(missing);
  return s.Error(rc);
}

// Runs an INSERT of a record with a unique key; kConflict with `taken` when the key exists.
inline Status InsertUnique(Stmt& s, const std::string& taken) {
  int rc = s.Step();
  if (rc == SQLITE_DONE) return Status::Ok();
  if (rc == SQLITE_CONSTRAINT) return Conflict(taken);
  return s.Error(rc);
}

// Runs an UPDATE or DELETE of one record by its key; kNotFound with `missing` when no row
// changed.
inline Status ChangeOne(sqlite3* db, Stmt& s, const std::string& missing) {
  if (Status st = s.Exec(); !st.ok()) return st;
  if (sqlite3_changes(db) == 0) return NotFound(missing);
  return Status::Ok();
}

}  // namespace slipway::sqlite
