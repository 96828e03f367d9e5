#include "store/sqlite_auth.h"

#include "store/sqlite_stmt.h"

namespace slipway::sqlite {
namespace {

constexpr const char* kTokenColumns =
    "id, name, role, kind, hash, created_ms, expires_ms, revoked_ms, last_used_ms, created_by";

ApiToken ReadToken(const Stmt& s) {
  ApiToken t;
  t.id = s.Int(0);
  t.name = s.Text(1);
  t.role = s.Text(2);
  t.kind = s.Text(3);
  t.hash = s.Text(4);
  t.created_ms = s.Int(5);
  t.expires_ms = s.Int(6);
  t.revoked_ms = s.Int(7);
  t.last_used_ms = s.Int(8);
  t.created_by = s.Text(9);
  return t;
}

User ReadUser(const Stmt& s) {
  return User{s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Int(5)};
}

}  // namespace

Result<ApiToken> CreateToken(sqlite3* db, ApiToken t) {
  Stmt s(db,
         "INSERT INTO api_tokens (name, role, kind, hash, created_ms, expires_ms, created_by) "
         "VALUES (?, ?, ?, ?, ?, ?, ?)");
  s.Bind(t.name).Bind(t.role).Bind(t.kind).Bind(t.hash).Bind(t.created_ms).Bind(t.expires_ms);
  s.Bind(t.created_by);
  if (int rc = s.Step(); rc != SQLITE_DONE) {
    if (rc == SQLITE_CONSTRAINT) return Conflict("a token named '" + t.name + "' exists");
    return s.Error(rc);
  }
  t.id = sqlite3_last_insert_rowid(db);
  return t;
}

Result<ApiToken> FindTokenByHash(sqlite3* db, const std::string& hash) {
  Stmt s(db, (std::string("SELECT ") + kTokenColumns + " FROM api_tokens WHERE hash = ?").c_str());
  s.Bind(hash);
  return One<ApiToken>(s, ReadToken, "no such token");
}

Result<std::vector<ApiToken>> ListTokens(sqlite3* db) {
  Stmt s(db, (std::string("SELECT ") + kTokenColumns + " FROM api_tokens ORDER BY id").c_str());
  return All<ApiToken>(s, ReadToken);
}

Status RevokeToken(sqlite3* db, const std::string& id_or_name, long long now_ms) {
  Stmt s(db,
         "UPDATE api_tokens SET revoked_ms = ? WHERE (name = ? OR CAST(id AS TEXT) = ?) "
         "AND revoked_ms = 0");
  s.Bind(now_ms).Bind(id_or_name).Bind(id_or_name);
  if (auto st = s.Exec(); !st.ok()) return st;
  if (sqlite3_changes(db) == 0) return NotFound("no valid token '" + id_or_name + "'");
  return Status::Ok();
}

Status TouchToken(sqlite3* db, std::int64_t id, long long now_ms) {
  return Stmt(db, "UPDATE api_tokens SET last_used_ms = ? WHERE id = ?")
      .Bind(now_ms)
      .Bind(id)
      .Exec();
}

Result<User> CreateUser(sqlite3* db, User u) {
  Stmt s(
      db,
      "INSERT INTO users (name, role, source, password_hash, created_ms) VALUES (?, ?, ?, ?, ?)");
  s.Bind(u.name).Bind(u.role).Bind(u.source).Bind(u.password_hash).Bind(u.created_ms);
  if (int rc = s.Step(); rc != SQLITE_DONE) {
    if (rc == SQLITE_CONSTRAINT) return Conflict("user '" + u.name + "' already exists");
    return s.Error(rc);
  }
  u.id = sqlite3_last_insert_rowid(db);
  return u;
}

Result<User> GetUser(sqlite3* db, const std::string& name) {
  Stmt s(db, "SELECT id, name, role, source, password_hash, created_ms FROM users WHERE name = ?");
  s.Bind(name);
  return One<User>(s, ReadUser, "user '" + name + "' does not exist");
}

Result<std::vector<User>> ListUsers(sqlite3* db) {
  Stmt s(db, "SELECT id, name, role, source, password_hash, created_ms FROM users ORDER BY name");
  return All<User>(s, ReadUser);
}

Status DeleteUser(sqlite3* db, const std::string& name) {
  Stmt s(db, "DELETE FROM users WHERE name = ?");
  s.Bind(name);
  if (auto st = s.Exec(); !st.ok()) return st;
  if (sqlite3_changes(db) == 0) return NotFound("user '" + name + "' does not exist");
  return Stmt(db, "DELETE FROM sessions WHERE user = ?").Bind(name).Exec();
}

Status CreateSession(sqlite3* db, const Session& x) {
  Stmt s(db,
         "INSERT INTO sessions (hash, user, role, source, created_ms, expires_ms) "
         "VALUES (?, ?, ?, ?, ?, ?)");
  s.Bind(x.hash).Bind(x.user).Bind(x.role).Bind(x.source).Bind(x.created_ms).Bind(x.expires_ms);
  return s.Exec();
}

Result<Session> GetSession(sqlite3* db, const std::string& hash) {
  Stmt s(db,
         "SELECT hash, user, role, source, created_ms, expires_ms FROM sessions WHERE hash = ?");
  s.Bind(hash);
  return One<Session>(
      s,
      [](const Stmt& r) {
        return Session{r.Text(0), r.Text(1), r.Text(2), r.Text(3), r.Int(4), r.Int(5)};
      },
      "no such session");
}

Status DeleteSession(sqlite3* db, const std::string& hash) {
  return Stmt(db, "DELETE FROM sessions WHERE hash = ?").Bind(hash).Exec();
}

Status DeleteExpiredSessions(sqlite3* db, long long now_ms) {
  return Stmt(db, "DELETE FROM sessions WHERE expires_ms <= ?").Bind(now_ms).Exec();
}

Status AppendAudit(sqlite3* db, const AuditEvent& e) {
  return Stmt(db,
              "INSERT INTO audit_events (ts_ms, actor, action, target, detail_json, source, "
              "outcome, app) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .Bind(e.ts_ms)
      .Bind(e.actor)
      .Bind(e.action)
      .Bind(e.target)
      .Bind(e.detail_json)
      .Bind(e.source)
      .Bind(e.outcome)
      .Bind(e.app)
      .Exec();
}

Result<std::vector<AuditEvent>> ListAudit(sqlite3* db, const AuditFilter& f) {
  std::string sql =
      "SELECT id, ts_ms, actor, action, target, detail_json, source, outcome, app "
      "FROM audit_events WHERE ts_ms >= ?";
  if (!f.app.empty()) sql += " AND app = ?";
  if (!f.actor.empty()) sql += " AND actor = ?";
  sql += " ORDER BY id DESC LIMIT ?";
  Stmt s(db, sql.c_str());
  s.Bind(f.since_ms);
  if (!f.app.empty()) s.Bind(f.app);
  if (!f.actor.empty()) s.Bind(f.actor);
  s.Bind(f.limit);
  return All<AuditEvent>(s, [](const Stmt& r) {
    return AuditEvent{r.Int(0),  r.Int(1),  r.Text(2), r.Text(3), r.Text(4),
                      r.Text(5), r.Text(6), r.Text(7), r.Text(8)};
  });
}

}  // namespace slipway::sqlite
