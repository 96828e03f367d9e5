#pragma once
// The SQLite store's tables for credentials and the audit trail: API tokens, users,
// sessions, audit events. Free functions on a connection; REQUIRES: the caller holds the
// store's mutex. Errors as in store/store.h.
#include <sqlite3.h>

#include <vector>

#include "store/store.h"

namespace slipway::sqlite {

Result<ApiToken> CreateToken(sqlite3* db, ApiToken t);
Result<ApiToken> FindTokenByHash(sqlite3* db, const std::string& hash);
Result<std::vector<ApiToken>> ListTokens(sqlite3* db);
Status RevokeToken(sqlite3* db, const std::string& id_or_name, long long now_ms);
Status TouchToken(sqlite3* db, std::int64_t id, long long now_ms);

Result<User> CreateUser(sqlite3* db, User u);
Result<User> GetUser(sqlite3* db, const std::string& name);
Result<std::vector<User>> ListUsers(sqlite3* db);
Status DeleteUser(sqlite3* db, const std::string& name);

Status CreateSession(sqlite3* db, const Session& s);
Result<Session> GetSession(sqlite3* db, const std::string& hash);
Status DeleteSession(sqlite3* db, const std::string& hash);
Status DeleteExpiredSessions(sqlite3* db, long long now_ms);

Status AppendAudit(sqlite3* db, const AuditEvent& e);
Result<std::vector<AuditEvent>> ListAudit(sqlite3* db, const AuditFilter& f);

}  // namespace slipway::sqlite
