#include "store/sqlite_nodes.h"

#include "store/sqlite_stmt.h"

namespace slipway::sqlite {
namespace {

constexpr const char* kNodeColumns =
    "name, labels_json, address, agent_version, capabilities_json, token_id, drained, "
    "first_seen_ms, last_seen_ms";

NodeRecord ReadNode(const Stmt& s) {
  NodeRecord n;
  n.name = s.Text(0);
  n.labels_json = s.Text(1);
  n.address = s.Text(2);
  n.agent_version = s.Text(3);
  n.capabilities_json = s.Text(4);
  n.token_id = s.Int(5);
  n.drained = s.Int(6) != 0;
  n.first_seen_ms = s.Int(7);
  n.last_seen_ms = s.Int(8);
  return n;
}

// Runs a statement whose RETURNING clause yields at most one row: reads it and steps to the
// end, so that the write is complete (and any error seen) before returning. kNotFound with
// `missing` when no row was written.
template <typename T, typename Reader>
Result<T> WriteReturning(Stmt& s, Reader read, const std::string& missing) {
  Result<T> out = One<T>(s, read, missing);
  if (!out.ok()) return out;
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return s.Error(rc);
  return out;
}

// Maps "no row changed" after an UPDATE or DELETE of one node to kNotFound.
Status ChangedOneNode(sqlite3* db, Stmt& s, const std::string& name) {
  if (auto st = s.Exec(); !st.ok()) return st;
  if (sqlite3_changes(db) == 0) return NotFound("node '" + name + "' does not exist");
  return Status::Ok();
}

}  // namespace

Result<NodeRecord> UpsertNode(sqlite3* db, const NodeRecord& n) {
  Stmt s(db, (std::string("INSERT INTO nodes (") + kNodeColumns +
              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
              "labels_json = excluded.labels_json, address = excluded.address, "
              "agent_version = excluded.agent_version, "
              "capabilities_json = excluded.capabilities_json, token_id = excluded.token_id, "
              "last_seen_ms = excluded.last_seen_ms RETURNING " +
              kNodeColumns)
                 .c_str());
  s.Bind(n.name)
      .Bind(n.labels_json)
      .Bind(n.address)
      .Bind(n.agent_version)
      .Bind(n.capabilities_json)
      .Bind(n.token_id)
      .Bind(n.drained ? 1 : 0)
      .Bind(n.first_seen_ms)
      .Bind(n.last_seen_ms);
  return WriteReturning<NodeRecord>(s, ReadNode, "node '" + n.name + "' was not written");
}

Result<NodeRecord> GetNode(sqlite3* db, const std::string& name) {
  Stmt s(db, (std::string("SELECT ") + kNodeColumns + " FROM nodes WHERE name = ?").c_str());
  s.Bind(name);
  return One<NodeRecord>(s, ReadNode, "node '" + name + "' does not exist");
}

Result<std::vector<NodeRecord>> ListNodes(sqlite3* db) {
  Stmt s(db, (std::string("SELECT ") + kNodeColumns + " FROM nodes ORDER BY name").c_str());
  return All<NodeRecord>(s, ReadNode);
}

Status SetNodeDrained(sqlite3* db, const std::string& name, bool drained) {
  Stmt s(db, "UPDATE nodes SET drained = ? WHERE name = ?");
  s.Bind(drained ? 1 : 0).Bind(name);
  return ChangedOneNode(db, s, name);
}

Status TouchNode(sqlite3* db, const std::string& name, long long now_ms) {
  Stmt s(db, "UPDATE nodes SET last_seen_ms = ? WHERE name = ?");
  s.Bind(now_ms).Bind(name);
  return ChangedOneNode(db, s, name);
}

Status DeleteNode(sqlite3* db, const std::string& name) {
  Stmt s(db, "DELETE FROM nodes WHERE name = ?");
  s.Bind(name);
  return ChangedOneNode(db, s, name);
}

Result<std::uint64_t> NextTerm(sqlite3* db) {
  // One statement, so one write transaction: SQLite serialises it against every other
  // writer of the file, and no two callers read the same old value.
  Stmt s(db, "UPDATE control_state SET value = value + 1 WHERE key = 'term' RETURNING value");
  auto term = WriteReturning<std::uint64_t>(
      s, [](const Stmt& r) { return static_cast<std::uint64_t>(r.Int(0)); }, "");
  if (!term.ok() && term.status().code() == Code::kNotFound)
    return Internal("control_state has no term row");
  return term;
}

Result<std::uint64_t> CurrentTerm(sqlite3* db) {
  Stmt s(db, "SELECT value FROM control_state WHERE key = 'term'");
  auto term = One<std::uint64_t>(
      s, [](const Stmt& r) { return static_cast<std::uint64_t>(r.Int(0)); }, "");
  if (!term.ok() && term.status().code() == Code::kNotFound)
    return Internal("control_state has no term row");
  return term;
}

}  // namespace slipway::sqlite
