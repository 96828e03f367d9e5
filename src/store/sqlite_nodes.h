#pragma once
// The SQLite store's tables for the cluster: node records and the control plane's term.
// Free functions on a connection; REQUIRES: the caller holds the store's mutex. Errors as in
// store/store.h.
#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>

#include "store/store.h"

namespace slipway::sqlite {

// REQUIRES: n.first_seen_ms and n.last_seen_ms are set (the store fills zeros with now).
Result<NodeRecord> UpsertNode(sqlite3* db, const NodeRecord& n);
Result<NodeRecord> GetNode(sqlite3* db, const std::string& name);
Result<std::vector<NodeRecord>> ListNodes(sqlite3* db);
Status SetNodeDrained(sqlite3* db, const std::string& name, bool drained);
Status TouchNode(sqlite3* db, const std::string& name, long long now_ms);
Status DeleteNode(sqlite3* db, const std::string& name);

Result<std::uint64_t> NextTerm(sqlite3* db);
Result<std::uint64_t> CurrentTerm(sqlite3* db);

}  // namespace slipway::sqlite
