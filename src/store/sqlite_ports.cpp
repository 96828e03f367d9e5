#include "store/sqlite_ports.h"

#include <set>

#include "store/sqlite_stmt.h"

namespace slipway::sqlite {
namespace {

std::string Range(int lo, int hi) {
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

// The ports of [lo, hi] held by a reservation. REQUIRES: inside the reserving transaction.
Result<std::vector<int>> Reserved(sqlite3* db, int lo, int hi) {
  Stmt q(db, "SELECT port FROM port_allocations WHERE port BETWEEN ? AND ?");
  q.Bind(lo).Bind(hi);
  return All<int>(q, [](const Stmt& r) { return static_cast<int>(r.Int(0)); });
}

}  // namespace

Result<int> ReservePort(sqlite3* db, const PortReservation& r, int lo, int hi,
                        const std::vector<int>& skip) {
  if (lo < 1 || hi > 65535 || lo > hi) return Invalid("bad port range " + Range(lo, hi));
  Transaction tx(db);
  if (!tx.status().ok()) return tx.status();
  auto reserved = Reserved(db, lo, hi);
  if (!reserved.ok()) return reserved.status();
  std::set<int> taken(skip.begin(), skip.end());
  taken.insert(reserved->begin(), reserved->end());
  int port = lo;
  while (port <= hi && taken.count(port)) ++port;
  if (port > hi) return Unavailable("no free port in " + Range(lo, hi));
  Stmt s(db, "INSERT INTO port_allocations (port, kind, owner, created_ms) VALUES (?, ?, ?, ?)");
  if (Status st = s.Bind(port).Bind(r.kind).Bind(r.owner).Bind(r.created_ms).Exec(); !st.ok())
    return st;
  if (Status st = tx.Commit(); !st.ok()) return st;
  return port;
}

Status ReleasePort(sqlite3* db, int port) {
  return Stmt(db, "DELETE FROM port_allocations WHERE port = ?").Bind(port).Exec();
}

Status ReleasePorts(sqlite3* db, const std::string& owner) {
  return Stmt(db, "DELETE FROM port_allocations WHERE owner = ?").Bind(owner).Exec();
}

Result<std::vector<PortReservation>> ListPorts(sqlite3* db) {
  Stmt q(db, "SELECT port, kind, owner, created_ms FROM port_allocations ORDER BY port");
  return All<PortReservation>(q, [](const Stmt& r) {
    return PortReservation{static_cast<int>(r.Int(0)), r.Text(1), r.Text(2), r.Int(3)};
  });
}

}  // namespace slipway::sqlite
