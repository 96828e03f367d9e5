#include "store/sqlite_sandbox.h"

#include <nlohmann/json.hpp>

#include <map>
#include <tuple>
#include <utility>

#include "store/sqlite_seal.h"
#include "store/sqlite_stmt.h"

namespace slipway::sqlite {
namespace {

using nlohmann::json;
using StringMap = std::map<std::string, std::string>;
using crypto::SecretBox;

constexpr const char* kEnvironmentColumns =
    "id, name, vars_json, secrets_json, files_json, created_ms, updated_ms";
constexpr const char* kSandboxColumns =
    "id, name, template_name, environment, entry, port, status, services_json, memory_bytes, "
    "cpus, expire_after_ms, created_by, config_json, created_ms, updated_ms, last_active_ms, "
    "expired_ms";
constexpr const char* kTemplateColumns = "id, name, body_json, created_by, created_ms, updated_ms";
constexpr const char* kSnapshotColumns = "id, sandbox, body_json, created_by, created_ms";

std::string Select(const char* columns, const char* rest) {
  return std::string("SELECT ") + columns + " " + rest;
}

// Serialises `j`; kInvalid when a string in it is not UTF-8, which JSON cannot carry.
Result<std::string> Dump(const json& j, const std::string& what) {
  try {
    return j.dump();
  } catch (const json::exception&) {
    return Invalid(what + " holds text that is not valid UTF-8");
  }
}

Result<StringMap> ParseMap(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Internal(what + " is damaged in the database");
  StringMap out;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) return Internal(what + " is damaged in the database");
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// Decodes each row with `decode` (a Result), stopping at the first error.
template <typename T, typename Row, typename Decode>
Result<std::vector<T>> DecodeAll(Result<std::vector<Row>> rows, Decode decode) {
  if (!rows.ok()) return rows.status();
  std::vector<T> out;
  for (auto& row : *rows) {
    Result<T> one = decode(std::move(row));
    if (!one.ok()) return one.status();
    out.push_back(std::move(*one));
  }
  return out;
}

// ---- Environments: vars in the clear, secrets and files sealed.

struct EnvironmentRow {
  Environment e;
  std::string vars, secrets, files;  // as stored
};

EnvironmentRow ReadEnvironment(const Stmt& s) {
  EnvironmentRow r;
  r.e.id = s.Int(0);
  r.e.name = s.Text(1);
  r.vars = s.Text(2);
  r.secrets = s.Text(3);
  r.files = s.Text(4);
  r.e.created_ms = s.Int(5);
  r.e.updated_ms = s.Int(6);
  return r;
}

Status OpenMap(const SecretBox* box, const std::string& stored, const std::string& what,
               StringMap& out) {
  auto text = OpenColumn(box, stored, what);
  if (!text.ok()) return text.status();
  auto map = ParseMap(*text, what);
  if (!map.ok()) return map.status();
  out = std::move(*map);
  return Status::Ok();
}

Result<Environment> DecodeEnvironment(const SecretBox* box, EnvironmentRow r) {
  std::string what = "environment '" + r.e.name + "'";
  if (Status s = OpenMap(nullptr, r.vars, what + " vars", r.e.vars); !s.ok()) return s;
  if (Status s = OpenMap(box, r.secrets, what + " secrets", r.e.secrets); !s.ok()) return s;
  if (Status s = OpenMap(box, r.files, what + " files", r.e.files); !s.ok()) return s;
  return std::move(r.e);
}

// The vars, secrets and files columns of `e`, the last two sealed.
Result<std::tuple<std::string, std::string, std::string>> EncodeEnvironment(const SecretBox* box,
                                                                            const Environment& e) {
  std::string what = "environment '" + e.name + "'";
  auto vars = Dump(json(e.vars), what);
  auto secrets = Dump(json(e.secrets), what);
  auto files = Dump(json(e.files), what);
  for (const auto* r : {&vars, &secrets, &files})
    if (!r->ok()) return r->status();
  return std::make_tuple(*vars, SealColumn(box, *secrets), SealColumn(box, *files));
}

std::string EnvironmentMissing(const std::string& name) {
  return "environment '" + name + "' does not exist";
}

// ---- Sandboxes: services as one JSON array.

json ServiceJson(const SandboxService& v) {
  return {{"name", v.name}, {"branch", v.branch}, {"route", v.route},
          {"port", v.port}, {"commit", v.commit}, {"memory_bytes", v.memory_bytes},
          {"cpus", v.cpus}};
}

// Missing keys keep SandboxService's defaults. Throws json::exception on a wrong type.
SandboxService ServiceFrom(const json& j) {
  SandboxService v;
  v.name = j.value("name", v.name);
  v.branch = j.value("branch", v.branch);
  v.route = j.value("route", v.route);
  v.port = j.value("port", v.port);
  v.commit = j.value("commit", v.commit);
  v.memory_bytes = j.value("memory_bytes", v.memory_bytes);
  v.cpus = j.value("cpus", v.cpus);
  return v;
}

Result<std::string> EncodeServices(const Sandbox& s) {
  json services = json::array();
  for (const auto& v : s.services) services.push_back(ServiceJson(v));
  return Dump(services, "sandbox '" + s.name + "'");
}

struct SandboxRow {
  Sandbox s;
  std::string services;  // as stored
};

SandboxRow ReadSandbox(const Stmt& q) {
  SandboxRow r;
  Sandbox& s = r.s;
  s.id = q.Int(0);
  s.name = q.Text(1);
  s.template_name = q.Text(2);
  s.environment = q.Text(3);
  s.entry = q.Text(4);
  s.port = static_cast<int>(q.Int(5));
  s.status = q.Text(6);
  r.services = q.Text(7);
  s.memory_bytes = q.Int(8);
  s.cpus = q.Real(9);
  s.expire_after_ms = q.Int(10);
  s.created_by = q.Text(11);
  s.config_json = q.Text(12);
  s.created_ms = q.Int(13);
  s.updated_ms = q.Int(14);
  s.last_active_ms = q.Int(15);
  s.expired_ms = q.Int(16);
  return r;
}

Result<Sandbox> DecodeSandbox(SandboxRow r) {
  json j = json::parse(r.services, nullptr, false);
  Status damaged = Internal("sandbox '" + r.s.name + "' services are damaged in the database");
  if (!j.is_array()) return damaged;
  try {
    for (const auto& v : j) {
      if (!v.is_object()) return damaged;
      r.s.services.push_back(ServiceFrom(v));
    }
  } catch (const json::exception&) {
    return damaged;
  }
  return std::move(r.s);
}

// Binds the columns UpdateSandbox writes, template_name through expired_ms but created_ms.
void BindSandboxState(Stmt& q, const Sandbox& s, const std::string& services) {
  q.Bind(s.template_name)
      .Bind(s.environment)
      .Bind(s.entry)
      .Bind(s.port)
      .Bind(s.status)
      .Bind(services)
      .Bind(s.memory_bytes)
      .Bind(s.cpus)
      .Bind(s.expire_after_ms)
      .Bind(s.created_by)
      .Bind(s.config_json);
}

std::string SandboxMissing(const std::string& name) {
  return "sandbox '" + name + "' does not exist";
}

// ---- Templates and snapshots.

SandboxTemplate ReadTemplate(const Stmt& q) {
  return SandboxTemplate{q.Int(0), q.Text(1), q.Text(2), q.Text(3), q.Int(4), q.Int(5)};
}

std::string TemplateMissing(const std::string& name) {
  return "template '" + name + "' does not exist";
}

SandboxSnapshot ReadSnapshot(const Stmt& q) {  // body_json as stored
  return SandboxSnapshot{q.Int(0), q.Text(1), q.Text(2), q.Text(3), q.Int(4)};
}

Result<SandboxSnapshot> OpenSnapshot(const SecretBox* box, SandboxSnapshot s) {
  auto body = OpenColumn(box, s.body_json, "snapshot " + std::to_string(s.id));
  if (!body.ok()) return body.status();
  s.body_json = std::move(*body);
  return s;
}

std::string SnapshotMissing(std::int64_t id) {
  return "snapshot " + std::to_string(id) + " does not exist";
}

// Seals every value of `column` in `table` still in the clear.
Status SealClearValues(sqlite3* db, const SecretBox& box, const std::string& table,
                       const std::string& column) {
  std::vector<std::pair<std::int64_t, std::string>> clear;
  {
    Stmt q(db, ("SELECT id, " + column + " FROM " + table).c_str());
    auto rows = All<std::pair<std::int64_t, std::string>>(
        q, [](const Stmt& r) { return std::make_pair(r.Int(0), r.Text(1)); });
    if (!rows.ok()) return rows.status();
    for (auto& row : *rows)
      if (!SecretBox::IsSealed(row.second)) clear.push_back(std::move(row));
  }
  std::string sql = "UPDATE " + table + " SET " + column + " = ? WHERE id = ?";
  for (const auto& [id, text] : clear) {
    if (Status st = Stmt(db, sql.c_str()).Bind(box.Seal(text)).Bind(id).Exec(); !st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace

Result<Environment> CreateEnvironment(sqlite3* db, const SecretBox* box, Environment e) {
  auto columns = EncodeEnvironment(box, e);
  if (!columns.ok()) return columns.status();
  const auto& [vars, secrets, files] = *columns;
  Stmt s(db,
         "INSERT INTO environments (name, vars_json, secrets_json, files_json, created_ms, "
         "updated_ms) VALUES (?, ?, ?, ?, ?, ?)");
  s.Bind(e.name).Bind(vars).Bind(secrets).Bind(files).Bind(e.created_ms).Bind(e.updated_ms);
  if (Status st = InsertUnique(s, "environment '" + e.name + "' already exists"); !st.ok())
    return st;
  e.id = sqlite3_last_insert_rowid(db);
  return e;
}

Result<Environment> GetEnvironment(sqlite3* db, const SecretBox* box, const std::string& name) {
  Stmt s(db, Select(kEnvironmentColumns, "FROM environments WHERE name = ?").c_str());
  s.Bind(name);
  auto row = One<EnvironmentRow>(s, ReadEnvironment, EnvironmentMissing(name));
  if (!row.ok()) return row.status();
  return DecodeEnvironment(box, std::move(*row));
}

Result<std::vector<Environment>> ListEnvironments(sqlite3* db, const SecretBox* box) {
  Stmt s(db, Select(kEnvironmentColumns, "FROM environments ORDER BY name").c_str());
  return DecodeAll<Environment>(All<EnvironmentRow>(s, ReadEnvironment), [box](EnvironmentRow r) {
    return DecodeEnvironment(box, std::move(r));
  });
}

Status UpdateEnvironment(sqlite3* db, const SecretBox* box, const Environment& e) {
  auto columns = EncodeEnvironment(box, e);
  if (!columns.ok()) return columns.status();
  const auto& [vars, secrets, files] = *columns;
  Stmt s(db,
         "UPDATE environments SET vars_json = ?, secrets_json = ?, files_json = ?, "
         "updated_ms = ? WHERE name = ?");
  s.Bind(vars).Bind(secrets).Bind(files).Bind(e.updated_ms).Bind(e.name);
  return ChangeOne(db, s, EnvironmentMissing(e.name));
}

Status DeleteEnvironment(sqlite3* db, const std::string& name) {
  Stmt s(db, "DELETE FROM environments WHERE name = ?");
  s.Bind(name);
  return ChangeOne(db, s, EnvironmentMissing(name));
}

Result<Sandbox> CreateSandbox(sqlite3* db, Sandbox s) {
  auto services = EncodeServices(s);
  if (!services.ok()) return services.status();
  Stmt q(db,
         "INSERT INTO sandboxes (template_name, environment, entry, port, status, services_json, "
         "memory_bytes, cpus, expire_after_ms, created_by, config_json, updated_ms, "
         "last_active_ms, expired_ms, name, created_ms) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  BindSandboxState(q, s, *services);
  q.Bind(s.updated_ms).Bind(s.last_active_ms).Bind(s.expired_ms).Bind(s.name).Bind(s.created_ms);
  if (Status st = InsertUnique(q, "sandbox '" + s.name + "' already exists"); !st.ok()) return st;
  s.id = sqlite3_last_insert_rowid(db);
  return s;
}

Result<Sandbox> GetSandbox(sqlite3* db, const std::string& name) {
  Stmt s(db, Select(kSandboxColumns, "FROM sandboxes WHERE name = ?").c_str());
  s.Bind(name);
  auto row = One<SandboxRow>(s, ReadSandbox, SandboxMissing(name));
  if (!row.ok()) return row.status();
  return DecodeSandbox(std::move(*row));
}

Result<std::vector<Sandbox>> ListSandboxes(sqlite3* db) {
  Stmt s(db, Select(kSandboxColumns, "FROM sandboxes ORDER BY name").c_str());
  return DecodeAll<Sandbox>(All<SandboxRow>(s, ReadSandbox), DecodeSandbox);
}

Status UpdateSandbox(sqlite3* db, const Sandbox& s) {
  auto services = EncodeServices(s);
  if (!services.ok()) return services.status();
  Stmt q(db,
         "UPDATE sandboxes SET template_name = ?, environment = ?, entry = ?, port = ?, "
         "status = ?, services_json = ?, memory_bytes = ?, cpus = ?, expire_after_ms = ?, "
         "created_by = ?, config_json = ?, updated_ms = ?, last_active_ms = ?, expired_ms = ? "
         "WHERE name = ?");
  BindSandboxState(q, s, *services);
  q.Bind(s.updated_ms).Bind(s.last_active_ms).Bind(s.expired_ms).Bind(s.name);
  return ChangeOne(db, q, SandboxMissing(s.name));
}

Status DeleteSandbox(sqlite3* db, const std::string& name) {
  Stmt s(db, "DELETE FROM sandboxes WHERE name = ?");
  s.Bind(name);
  return ChangeOne(db, s, SandboxMissing(name));
}

Result<SandboxTemplate> CreateTemplate(sqlite3* db, SandboxTemplate t) {
  Stmt s(db,
         "INSERT INTO sandbox_templates (name, body_json, created_by, created_ms, updated_ms) "
         "VALUES (?, ?, ?, ?, ?)");
  s.Bind(t.name).Bind(t.body_json).Bind(t.created_by).Bind(t.created_ms).Bind(t.updated_ms);
  if (Status st = InsertUnique(s, "template '" + t.name + "' already exists"); !st.ok()) return st;
  t.id = sqlite3_last_insert_rowid(db);
  return t;
}

Result<SandboxTemplate> GetTemplate(sqlite3* db, const std::string& name) {
  Stmt s(db, Select(kTemplateColumns, "FROM sandbox_templates WHERE name = ?").c_str());
  s.Bind(name);
  return One<SandboxTemplate>(s, ReadTemplate, TemplateMissing(name));
}

Result<std::vector<SandboxTemplate>> ListTemplates(sqlite3* db) {
  Stmt s(db, Select(kTemplateColumns, "FROM sandbox_templates ORDER BY name").c_str());
  return All<SandboxTemplate>(s, ReadTemplate);
}

Status UpdateTemplate(sqlite3* db, const SandboxTemplate& t) {
  Stmt s(db, "UPDATE sandbox_templates SET body_json = ?, updated_ms = ? WHERE name = ?");
  s.Bind(t.body_json).Bind(t.updated_ms).Bind(t.name);
  return ChangeOne(db, s, TemplateMissing(t.name));
}

Status DeleteTemplate(sqlite3* db, const std::string& name) {
  Stmt s(db, "DELETE FROM sandbox_templates WHERE name = ?");
  s.Bind(name);
  return ChangeOne(db, s, TemplateMissing(name));
}

Result<SandboxSnapshot> CreateSnapshot(sqlite3* db, const SecretBox* box, SandboxSnapshot s) {
  Stmt q(db,
         "INSERT INTO sandbox_snapshots (sandbox, body_json, created_by, created_ms) "
         "VALUES (?, ?, ?, ?)");
  q.Bind(s.sandbox).Bind(SealColumn(box, s.body_json)).Bind(s.created_by).Bind(s.created_ms);
  if (Status st = q.Exec(); !st.ok()) return st;
  s.id = sqlite3_last_insert_rowid(db);
  return s;
}

Result<SandboxSnapshot> GetSnapshot(sqlite3* db, const SecretBox* box, std::int64_t id) {
  Stmt q(db, Select(kSnapshotColumns, "FROM sandbox_snapshots WHERE id = ?").c_str());
  q.Bind(id);
  auto row = One<SandboxSnapshot>(q, ReadSnapshot, SnapshotMissing(id));
  if (!row.ok()) return row.status();
  return OpenSnapshot(box, std::move(*row));
}

Result<std::vector<SandboxSnapshot>> ListSnapshots(sqlite3* db, const SecretBox* box,
                                                   const std::string& sandbox) {
  Stmt q(db, Select(kSnapshotColumns,
                    sandbox.empty() ? "FROM sandbox_snapshots ORDER BY id DESC"
                                    : "FROM sandbox_snapshots WHERE sandbox = ? ORDER BY id DESC")
                 .c_str());
  if (!sandbox.empty()) q.Bind(sandbox);
  return DecodeAll<SandboxSnapshot>(
      All<SandboxSnapshot>(q, ReadSnapshot),
      [box](SandboxSnapshot s) { return OpenSnapshot(box, std::move(s)); });
}

Status DeleteSnapshot(sqlite3* db, std::int64_t id) {
  Stmt q(db, "DELETE FROM sandbox_snapshots WHERE id = ?");
  q.Bind(id);
  return ChangeOne(db, q, SnapshotMissing(id));
}

Status SealPlaintextSandboxData(sqlite3* db, const SecretBox& box) {
  Transaction tx(db);
  if (!tx.status().ok()) return tx.status();
  for (const auto& [table, column] : {std::make_pair("environments", "secrets_json"),
                                      std::make_pair("environments", "files_json"),
                                      std::make_pair("sandbox_snapshots", "body_json")}) {
    if (Status s = SealClearValues(db, box, table, column); !s.ok()) return s;
  }
  return tx.Commit();
}

}  // namespace slipway::sqlite
