#include "store/sqlite_notify.h"

#include <algorithm>

#include "store/sqlite_stmt.h"

namespace slipway::sqlite {
namespace {

constexpr const char* kNotificationColumns =
    "id, deployment_id, app, event, target, status, attempts, http_status, last_error, "
    "created_ms, updated_ms";

NotificationRecord ReadNotification(const Stmt& s) {
  NotificationRecord n;
  n.id = s.Int(0);
  n.deployment_id = s.Int(1);
  n.app = s.Text(2);
  n.event = s.Text(3);
  n.target = s.Text(4);
  n.status = s.Text(5);
  n.attempts = static_cast<int>(s.Int(6));
  n.http_status = static_cast<int>(s.Int(7));
  n.last_error = s.Text(8);
  n.created_ms = s.Int(9);
  n.updated_ms = s.Int(10);
  return n;
}

}  // namespace

Result<NotificationRecord> CreateNotification(sqlite3* db, NotificationRecord n) {
  Stmt s(db,
         "INSERT INTO notifications (deployment_id, app, event, target, status, attempts, "
         "http_status, last_error, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s.Bind(n.deployment_id)
      .Bind(n.app)
      .Bind(n.event)
      .Bind(n.target)
      .Bind(n.status)
      .Bind(n.attempts)
      .Bind(n.http_status)
      .Bind(n.last_error)
      .Bind(n.created_ms)
      .Bind(n.updated_ms);
  if (Status st = s.Exec(); !st.ok()) {
    // The only constraint a row can break is its deployment's foreign key.
    if (st.code() == Code::kConflict)
      return NotFound("deployment " + std::to_string(n.deployment_id) + " does not exist");
    return st;
  }
  n.id = sqlite3_last_insert_rowid(db);
  return n;
}

Status UpdateNotification(sqlite3* db, const NotificationRecord& n) {
  Stmt s(db,
         "UPDATE notifications SET status = ?, attempts = ?, http_status = ?, last_error = ?, "
         "updated_ms = ? WHERE id = ?");
  s.Bind(n.status)
      .Bind(n.attempts)
      .Bind(n.http_status)
      .Bind(n.last_error)
      .Bind(n.updated_ms)
      .Bind(n.id);
  if (Status st = s.Exec(); !st.ok()) return st;
  if (sqlite3_changes(db) == 0)
    return NotFound("notification " + std::to_string(n.id) + " does not exist");
  return Status::Ok();
}

Result<std::vector<NotificationRecord>> ListNotifications(sqlite3* db, std::int64_t deployment_id,
                                                          int limit) {
  Stmt s(db, (std::string("SELECT ") + kNotificationColumns +
              " FROM notifications WHERE deployment_id = ? ORDER BY id LIMIT ?")
                 .c_str());
  s.Bind(deployment_id).Bind(std::clamp(limit, 1, 1000));
  return All<NotificationRecord>(s, ReadNotification);
}

}  // namespace slipway::sqlite
