#pragma once
// The SQLite store's port allocator table (migration 9): one row per reserved port, the
// port its primary key. Free functions on a connection; REQUIRES: the caller holds the
// store's mutex. Errors as in store/store.h.
#include <sqlite3.h>

#include <string>
#include <vector>

#include "store/store.h"

namespace slipway::sqlite {

// Reserves the lowest port of [lo, hi] neither reserved nor in `skip` for `r.kind` and
// `r.owner` (r.port is ignored), in one BEGIN IMMEDIATE transaction: the database's write
// lock keeps the choice atomic against every other thread and connection. kInvalid when
// lo > hi or either is outside 1..65535; kUnavailable when no port of the range is free (or
// the database is locked past the busy timeout). REQUIRES: r.created_ms is set.
Result<int> ReservePort(sqlite3* db, const PortReservation& r, int lo, int hi,
                        const std::vector<int>& skip);
Status ReleasePort(sqlite3* db, int port);                    // ok when none was reserved
Status ReleasePorts(sqlite3* db, const std::string& owner);   // ok when none was reserved
Result<std::vector<PortReservation>> ListPorts(sqlite3* db);  // by port

}  // namespace slipway::sqlite
