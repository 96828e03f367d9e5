#pragma once
// The SQLite store's table of deployment notifications (migration 8). Free functions on a
// connection; REQUIRES: the caller holds the store's mutex. Errors as in store/store.h.
#include <sqlite3.h>

#include <cstdint>
#include <vector>

#include "store/store.h"

namespace slipway::sqlite {

// REQUIRES: n.created_ms and n.updated_ms are set (the store fills zeros with now).
Result<NotificationRecord> CreateNotification(sqlite3* db, NotificationRecord n);
Status UpdateNotification(sqlite3* db, const NotificationRecord& n);
Result<std::vector<NotificationRecord>> ListNotifications(sqlite3* db, std::int64_t deployment_id,
                                                          int limit);

}  // namespace slipway::sqlite
