#include "store/sqlite_store.h"

#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include <mutex>
#include <tuple>

#include "store/migrations.h"
#include "store/sqlite_auth.h"
#include "store/sqlite_nodes.h"
#include "store/sqlite_notify.h"
#include "store/sqlite_ports.h"
#include "store/sqlite_sandbox.h"
#include "store/sqlite_stmt.h"

namespace slipway {
namespace {
using sqlite::Stmt;

constexpr const char* kAppColumns =
    "id, name, repo, branch, secret, hosts, path_prefix, current_release_id, created_ms, stopped, "
    "gateway_mode, gateway_max_ms, gateway_message, upstream, environment, sandbox";
constexpr const char* kDeploymentColumns =
    "d.id, d.app_id, a.name, d.type, d.environment, d.status, d.stage, d.git_commit, d.git_ref, "
    "d.git_branch, d.git_repository, d.config_json, d.error, d.release_id, d.rollback_from, "
    "d.created_ms, d.updated_ms, d.completed_ms";
constexpr const char* kReleaseColumns =
    "id, app_id, number, git_commit, path, manifest_json, deployment_id, pruned, created_ms, node";
constexpr const char* kInstanceColumns =
    "id, app_id, release_id, runtime, pid, start_ticks, port, state, created_ms, container_id, "
    "node";

App ReadApp(const Stmt& s) {
  App a;
  a.id = s.Int(0);
  a.name = s.Text(1);
  a.repo = s.Text(2);
  a.branch = s.Text(3);
  a.secret = s.Text(4);
  a.hosts = nlohmann::json::parse(s.Text(5), nullptr, false).get<std::vector<std::string>>();
  a.path_prefix = s.Text(6);
  a.current_release_id = s.OptInt(7);
  a.created_ms = s.Int(8);
  a.stopped = s.Int(9) != 0;
  // A mode this build does not know (written by a newer one) serves normally.
  a.gateway.mode = GatewayModeFromString(s.Text(10)).value_or(GatewayMode::kOpen);
  a.gateway.max_ms = s.Int(11);
  a.gateway.message = s.Text(12);
  a.upstream = s.Text(13);
  a.environment = s.Text(14);
  a.sandbox = s.Text(15);
  return a;
}

Deployment ReadDeployment(const Stmt& s) {
  Deployment d;
  d.id = s.Int(0);
  d.app_id = s.Int(1);
  d.app = s.Text(2);
  d.type = s.Text(3);
  d.environment = s.Text(4);
  d.status = DeployStatusFromString(s.Text(5)).value_or(DeployStatus::kFailed);
  d.stage = StageFromString(s.Text(6)).value_or(Stage::kQueued);
  d.commit = s.Text(7);
  d.ref = s.Text(8);
  d.branch = s.Text(9);
  d.repository = s.Text(10);
  d.config_json = s.Text(11);
  d.error = s.Text(12);
  d.release_id = s.OptInt(13);
  d.rollback_from = s.OptInt(14);
  d.created_ms = s.Int(15);
  d.updated_ms = s.Int(16);
  d.completed_ms = s.Int(17);
  return d;
}

Release ReadRelease(const Stmt& s) {
  Release r;
  r.id = s.Int(0);
  r.app_id = s.Int(1);
  r.number = s.Int(2);
  r.commit = s.Text(3);
  r.path = s.Text(4);
  r.manifest_json = s.Text(5);
  r.deployment_id = s.Int(6);
  r.pruned = s.Int(7) != 0;
  r.created_ms = s.Int(8);
  r.nodes = SplitNodes(s.Text(9));
  return r;
}

Instance ReadInstance(const Stmt& s) {
  Instance i;
  i.id = s.Int(0);
  i.app_id = s.Int(1);
  i.release_id = s.Int(2);
  i.runtime = s.Text(3);
  i.pid = static_cast<int>(s.Int(4));
  i.start_ticks = s.Int(5);
  i.port = static_cast<int>(s.Int(6));
  i.state = s.Text(7);
  i.created_ms = s.Int(8);
  i.container_id = s.Text(9);
  i.node = s.Text(10);
  return i;
}

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, Clock& clock, const crypto::SecretBox* box)
      : db_(db), clock_(clock), box_(box) {}
  ~SqliteStore() override { sqlite3_close(db_); }

  Status Migrate() {
    std::lock_guard lock(mu_);
    if (auto s =
            ExecSql("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON; "
                    "CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER PRIMARY KEY, "
                    "applied_ms INTEGER NOT NULL);");
        !s.ok())
      return s;
    Stmt q(db_, "SELECT COALESCE(MAX(number), 0) FROM schema_migrations");
    if (q.Step() != SQLITE_ROW) return Unavailable("cannot read schema_migrations");
    std::int64_t applied = q.Int(0);
    for (const auto& m : SqliteMigrations()) {
      if (m.number <= applied) continue;
      if (auto s = ExecSql("BEGIN IMMEDIATE"); !s.ok()) return s;
      Status s = ExecSql(m.sql);
      if (s.ok()) {
        s = Stmt(db_, "INSERT INTO schema_migrations VALUES (?, ?)")
                .Bind(m.number)
                .Bind(clock_.WallMillis())
                .Exec();
      }
      if (!s.ok()) {
        (void)ExecSql("ROLLBACK");
        return Unavailable("migration " + std::to_string(m.number) + " failed: " + s.message());
      }
      if (auto c = ExecSql("COMMIT"); !c.ok()) return c;
    }
    return Status::Ok();
  }

  Result<App> CreateApp(App app) override {
    std::lock_guard lock(mu_);
    app.created_ms = clock_.WallMillis();
    Stmt s(db_,
           "INSERT INTO apps (name, repo, branch, secret, hosts, path_prefix, created_ms, "
           "upstream, environment, sandbox) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.Bind(app.name)
        .Bind(Seal(app.repo))
        .Bind(app.branch)
        .Bind(Seal(app.secret))
        .Bind(nlohmann::json(app.hosts).dump())
        .Bind(app.path_prefix)
        .Bind(app.created_ms)
        .Bind(app.upstream)
        .Bind(app.environment)
        .Bind(app.sandbox);
    if (int rc = s.Step(); rc != SQLITE_DONE) {
      if (rc == SQLITE_CONSTRAINT) return Conflict("app '" + app.name + "' already exists");
      return s.Error(rc);
    }
    app.id = sqlite3_last_insert_rowid(db_);
    return app;
  }

  Result<App> GetApp(const std::string& name) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, (std::string("SELECT ") + kAppColumns + " FROM apps WHERE name = ?").c_str());
    s.Bind(name);
    int rc = s.Step();
    if (rc == SQLITE_ROW) return Unseal(ReadApp(s));
    if (rc == SQLITE_DONE) return NotFound("app '" + name + "' does not exist");
    return s.Error(rc);
  }

  Result<App> GetAppById(std::int64_t id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, (std::string("SELECT ") + kAppColumns + " FROM apps WHERE id = ?").c_str());
    s.Bind(id);
    int rc = s.Step();
    if (rc == SQLITE_ROW) return Unseal(ReadApp(s));
    if (rc == SQLITE_DONE) return NotFound("app " + std::to_string(id) + " does not exist");
    return s.Error(rc);
  }

  Result<std::vector<App>> ListApps() override {
    std::lock_guard lock(mu_);
    Stmt s(db_, (std::string("SELECT ") + kAppColumns + " FROM apps ORDER BY name").c_str());
    std::vector<App> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      auto app = Unseal(ReadApp(s));
      if (!app.ok()) return app.status();
      out.push_back(*app);
    }
    if (rc != SQLITE_DONE) return s.Error(rc);
    return out;
  }

  Status DeleteApp(std::int64_t id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "DELETE FROM apps WHERE id = ?");
    s.Bind(id);
    if (auto st = s.Exec(); !st.ok()) return st;
    if (sqlite3_changes(db_) == 0) return NotFound("app " + std::to_string(id) + " does not exist");
    return Status::Ok();
  }

  Status SetCurrentRelease(std::int64_t app_id, std::optional<std::int64_t> release_id) override {
    std::lock_guard lock(mu_);
    return Stmt(db_, "UPDATE apps SET current_release_id = ? WHERE id = ?")
        .Bind(release_id)
        .Bind(app_id)
        .Exec();
  }

  Status SetAppStopped(std::int64_t app_id, bool stopped) override {
    std::lock_guard lock(mu_);
    return Stmt(db_, "UPDATE apps SET stopped = ? WHERE id = ?")
        .Bind(stopped ? 1 : 0)
        .Bind(app_id)
        .Exec();
  }

  Status SetAppGateway(std::int64_t app_id, const GatewayState& gateway) override {
    std::lock_guard lock(mu_);
    auto st = Stmt(db_,
                   "UPDATE apps SET gateway_mode = ?, gateway_max_ms = ?, gateway_message = ? "
                   "WHERE id = ?")
                  .Bind(std::string(ToString(gateway.mode)))
                  .Bind(gateway.max_ms)
                  .Bind(gateway.message)
                  .Bind(app_id)
                  .Exec();
    if (!st.ok()) return st;
    if (sqlite3_changes(db_) == 0)
      return NotFound("app " + std::to_string(app_id) + " does not exist");
    return Status::Ok();
  }

  Status UpdateAppSettings(const App& app) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "UPDATE apps SET upstream = ?, environment = ? WHERE id = ?");
    s.Bind(app.upstream).Bind(app.environment).Bind(app.id);
    return sqlite::ChangeOne(db_, s, "app " + std::to_string(app.id) + " does not exist");
  }

  Result<Deployment> CreateDeployment(Deployment d) override {
    std::lock_guard lock(mu_);
    return InsertDeployment(std::move(d));
  }

  Result<Deployment> CreateDeploymentForDelivery(Deployment d, WebhookDelivery delivery) override {
    std::lock_guard lock(mu_);
    if (auto s = ExecSql("BEGIN IMMEDIATE"); !s.ok()) return s;
    Status st = InsertDelivery(delivery);
    Result<Deployment> created = st.ok() ? InsertDeployment(std::move(d)) : Result<Deployment>(st);
    if (created.ok()) {
      st = Stmt(db_,
                "UPDATE webhook_deliveries SET deployment_id = ? WHERE provider = ? AND "
                "delivery_id = ?")
               .Bind(created->id)
               .Bind(delivery.provider)
               .Bind(delivery.delivery_id)
               .Exec();
      if (st.ok()) st = ExecSql("COMMIT");
      if (st.ok()) return created;
    }
    (void)ExecSql("ROLLBACK");
    return created.ok() ? Result<Deployment>(st) : created;
  }

  // REQUIRES: mu_ held.
  Result<Deployment> InsertDeployment(Deployment d) {
    d.created_ms = d.updated_ms = clock_.WallMillis();
    Stmt s(db_,
           "INSERT INTO deployments (app_id, type, name, environment, status, stage, git_commit, "
           "git_ref, git_branch, git_repository, config_json, error, release_id, rollback_from, "
           "created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.Bind(d.app_id)
        .Bind(d.type)
        .Bind(d.app)
        .Bind(d.environment)
        .Bind(std::string(ToString(d.status)))
        .Bind(std::string(ToString(d.stage)))
        .Bind(d.commit)
        .Bind(d.ref)
        .Bind(d.branch)
        .Bind(d.repository)
        .Bind(d.config_json)
        .Bind(d.error)
        .Bind(d.release_id)
        .Bind(d.rollback_from)
        .Bind(d.created_ms)
        .Bind(d.updated_ms);
    if (auto st = s.Exec(); !st.ok()) return st;
    d.id = sqlite3_last_insert_rowid(db_);
    return d;
  }

  Result<Deployment> GetDeployment(std::int64_t id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, (std::string("SELECT ") + kDeploymentColumns +
                 " FROM deployments d JOIN apps a ON a.id = d.app_id WHERE d.id = ?")
                    .c_str());
    s.Bind(id);
    int rc = s.Step();
    if (rc == SQLITE_ROW) return ReadDeployment(s);
    if (rc == SQLITE_DONE) return NotFound("deployment " + std::to_string(id) + " does not exist");
    return s.Error(rc);
  }

  Result<std::vector<Deployment>> ListDeployments(const DeploymentFilter& f) override {
    std::lock_guard lock(mu_);
    std::string sql = std::string("SELECT ") + kDeploymentColumns +
                      " FROM deployments d JOIN apps a ON a.id = d.app_id WHERE 1=1";
    if (f.app_id) sql += " AND d.app_id = ?";
    if (f.status) sql += " AND d.status = ?";
    sql += " ORDER BY d.id DESC LIMIT ?";
    Stmt s(db_, sql.c_str());
    if (f.app_id) s.Bind(*f.app_id);
    if (f.status) s.Bind(std::string(ToString(*f.status)));
    s.Bind(f.limit);
    std::vector<Deployment> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadDeployment(s));
    if (rc != SQLITE_DONE) return s.Error(rc);
    return out;
  }

  Status UpdateDeployment(const Deployment& d) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "UPDATE deployments SET status = ?, stage = ?, git_commit = ?, config_json = ?, "
           "error = ?, release_id = ?, rollback_from = ?, updated_ms = ?, completed_ms = ? "
           "WHERE id = ?");
    s.Bind(std::string(ToString(d.status)))
        .Bind(std::string(ToString(d.stage)))
        .Bind(d.commit)
        .Bind(d.config_json)
        .Bind(d.error)
        .Bind(d.release_id)
        .Bind(d.rollback_from)
        .Bind(clock_.WallMillis())
        .Bind(d.completed_ms)
        .Bind(d.id);
    return s.Exec();
  }

  Result<Event> AppendEvent(Event e) override {
    std::lock_guard lock(mu_);
    // One statement computes the next seq and inserts, so seqs stay dense without a
    // separate transaction.
    Stmt s(db_,
           "INSERT INTO deployment_events (deployment_id, seq, ts_ms, stage, state, stream, text) "
           "SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ? FROM deployment_events "
           "WHERE deployment_id = ? RETURNING seq");
    if (e.ts_ms == 0) e.ts_ms = clock_.WallMillis();
    s.Bind(e.deployment_id)
        .Bind(e.ts_ms)
        .Bind(e.stage)
        .Bind(e.state)
        .Bind(e.stream)
        .Bind(e.text)
        .Bind(e.deployment_id);
    int rc = s.Step();
    if (rc != SQLITE_ROW) return s.Error(rc);
    e.seq = s.Int(0);
    while (s.Step() == SQLITE_ROW) {
    }
    return e;
  }

  Result<std::vector<Event>> ListEvents(std::int64_t deployment_id, std::int64_t after_seq,
                                        int limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "SELECT deployment_id, seq, ts_ms, stage, state, stream, text FROM deployment_events "
           "WHERE deployment_id = ? AND seq > ? ORDER BY seq LIMIT ?");
    s.Bind(deployment_id).Bind(after_seq).Bind(limit);
    std::vector<Event> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      out.push_back(
          Event{s.Int(0), s.Int(1), s.Int(2), s.Text(3), s.Text(4), s.Text(5), s.Text(6)});
    }
    if (rc != SQLITE_DONE) return s.Error(rc);
    return out;
  }

  Result<Release> CreateRelease(Release r) override {
    std::lock_guard lock(mu_);
    r.created_ms = clock_.WallMillis();
    Stmt s(db_,
           "INSERT INTO releases (app_id, number, git_commit, path, manifest_json, deployment_id, "
           "created_ms, node) SELECT ?, COALESCE(MAX(number), 0) + 1, ?, ?, ?, ?, ?, ? FROM "
           "releases WHERE app_id = ? RETURNING id, number");
    s.Bind(r.app_id)
        .Bind(r.commit)
        .Bind(r.path)
        .Bind(r.manifest_json)
        .Bind(r.deployment_id)
        .Bind(r.created_ms)
        .Bind(JoinNodes(r.nodes))
        .Bind(r.app_id);
    int rc = s.Step();
    if (rc != SQLITE_ROW) return s.Error(rc);
    r.id = s.Int(0);
    r.number = s.Int(1);
    while (s.Step() == SQLITE_ROW) {
    }
    return r;
  }

  Result<Release> GetRelease(std::int64_t id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, (std::string("SELECT ") + kReleaseColumns + " FROM releases WHERE id = ?").c_str());
    s.Bind(id);
    int rc = s.Step();
    if (rc == SQLITE_ROW) return ReadRelease(s);
    if (rc == SQLITE_DONE) return NotFound("release " + std::to_string(id) + " does not exist");
    return s.Error(rc);
  }

  Result<std::vector<Release>> ListReleases(std::int64_t app_id, bool include_pruned) override {
    std::lock_guard lock(mu_);
    std::string sql = std::string("SELECT ") + kReleaseColumns + " FROM releases WHERE app_id = ?";
    if (!include_pruned) sql += " AND pruned = 0";
    sql += " ORDER BY number DESC";
    Stmt s(db_, sql.c_str());
    s.Bind(app_id);
    std::vector<Release> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadRelease(s));
    if (rc != SQLITE_DONE) return s.Error(rc);
    return out;
  }

  Status MarkReleasePruned(std::int64_t id) override {
    std::lock_guard lock(mu_);
    return Stmt(db_, "UPDATE releases SET pruned = 1 WHERE id = ?").Bind(id).Exec();
  }

  Status SetReleasePath(std::int64_t id, const std::string& path) override {
    std::lock_guard lock(mu_);
    return Stmt(db_, "UPDATE releases SET path = ? WHERE id = ?").Bind(path).Bind(id).Exec();
  }

  Status SetReleaseNodes(std::int64_t id, const std::vector<std::string>& nodes) override {
    std::lock_guard lock(mu_);
    return Stmt(db_, "UPDATE releases SET node = ? WHERE id = ?")
        .Bind(JoinNodes(nodes))
        .Bind(id)
        .Exec();
  }

  Result<Instance> CreateInstance(Instance i) override {
    std::lock_guard lock(mu_);
    i.created_ms = clock_.WallMillis();
    Stmt s(db_,
           "INSERT INTO instances (app_id, release_id, runtime, pid, start_ticks, port, state, "
           "created_ms, container_id, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.Bind(i.app_id)
        .Bind(i.release_id)
        .Bind(i.runtime)
        .Bind(i.pid)
        .Bind(i.start_ticks)
        .Bind(i.port)
        .Bind(i.state)
        .Bind(i.created_ms)
        .Bind(i.container_id)
        .Bind(i.node);
    if (auto st = s.Exec(); !st.ok()) return st;
    i.id = sqlite3_last_insert_rowid(db_);
    return i;
  }

  Status UpdateInstance(const Instance& i) override {
    std::lock_guard lock(mu_);
    return Stmt(db_,
                "UPDATE instances SET pid = ?, start_ticks = ?, port = ?, state = ?, container_id "
                "= ? "
                "WHERE id = ?")
        .Bind(i.pid)
        .Bind(i.start_ticks)
        .Bind(i.port)
        .Bind(i.state)
        .Bind(i.container_id)
        .Bind(i.id)
        .Exec();
  }

  Result<std::vector<Instance>> ListLiveInstances(std::int64_t app_id) override {
    std::lock_guard lock(mu_);
    std::string sql =
        std::string("SELECT ") + kInstanceColumns + " FROM instances WHERE state != 'stopped'";
    if (app_id) sql += " AND app_id = ?";
    sql += " ORDER BY id";
    Stmt s(db_, sql.c_str());
    if (app_id) s.Bind(app_id);
    std::vector<Instance> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back(ReadInstance(s));
    if (rc != SQLITE_DONE) return s.Error(rc);
    return out;
  }

  Status RecordDelivery(const WebhookDelivery& d) override {
    std::lock_guard lock(mu_);
    return InsertDelivery(d);
  }

  // REQUIRES: mu_ held.
  Status InsertDelivery(const WebhookDelivery& d) {
    Stmt s(db_, "INSERT INTO webhook_deliveries VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.Bind(d.provider)
        .Bind(d.delivery_id)
        .Bind(d.app)
        .Bind(d.event)
        .Bind(d.outcome)
        .Bind(d.deployment_id)
        .Bind(d.received_ms ? d.received_ms : clock_.WallMillis());
    int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT) {
      return Conflict("delivery " + d.delivery_id + " was already received");
    }
    return rc == SQLITE_DONE ? Status::Ok() : s.Error(rc);
  }

  Status AppendAudit(AuditEvent e) override {
    std::lock_guard lock(mu_);
    if (e.ts_ms == 0) e.ts_ms = clock_.WallMillis();
    return sqlite::AppendAudit(db_, e);
  }

  Result<std::vector<AuditEvent>> ListAudit(const AuditFilter& filter) override {
    std::lock_guard lock(mu_);
    return sqlite::ListAudit(db_, filter);
  }

  Result<ApiToken> CreateToken(ApiToken t) override {
    std::lock_guard lock(mu_);
    if (t.created_ms == 0) t.created_ms = clock_.WallMillis();
    return sqlite::CreateToken(db_, std::move(t));
  }
  Result<ApiToken> FindTokenByHash(const std::string& hash) override {
    std::lock_guard lock(mu_);
    return sqlite::FindTokenByHash(db_, hash);
  }
  Result<std::vector<ApiToken>> ListTokens() override {
    std::lock_guard lock(mu_);
    return sqlite::ListTokens(db_);
  }
  Status RevokeToken(const std::string& id_or_name, long long now_ms) override {
    std::lock_guard lock(mu_);
    return sqlite::RevokeToken(db_, id_or_name, now_ms);
  }
  Status TouchToken(std::int64_t id, long long now_ms) override {
    std::lock_guard lock(mu_);
    return sqlite::TouchToken(db_, id, now_ms);
  }
  Result<User> CreateUser(User u) override {
    std::lock_guard lock(mu_);
    if (u.created_ms == 0) u.created_ms = clock_.WallMillis();
    return sqlite::CreateUser(db_, std::move(u));
  }
  Result<User> GetUser(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::GetUser(db_, name);
  }
  Result<std::vector<User>> ListUsers() override {
    std::lock_guard lock(mu_);
    return sqlite::ListUsers(db_);
  }
  Status DeleteUser(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::DeleteUser(db_, name);
  }
  Status CreateSession(const Session& session) override {
    std::lock_guard lock(mu_);
    return sqlite::CreateSession(db_, session);
  }
  Result<Session> GetSession(const std::string& hash) override {
    std::lock_guard lock(mu_);
    return sqlite::GetSession(db_, hash);
  }
  Status DeleteSession(const std::string& hash) override {
    std::lock_guard lock(mu_);
    return sqlite::DeleteSession(db_, hash);
  }
  Status DeleteExpiredSessions(long long now_ms) override {
    std::lock_guard lock(mu_);
    return sqlite::DeleteExpiredSessions(db_, now_ms);
  }

  Result<NodeRecord> UpsertNode(const NodeRecord& n) override {
    std::lock_guard lock(mu_);
    NodeRecord row = n;
    long long now = clock_.WallMillis();
    if (row.first_seen_ms == 0) row.first_seen_ms = now;
    if (row.last_seen_ms == 0) row.last_seen_ms = now;
    return sqlite::UpsertNode(db_, row);
  }
  Result<NodeRecord> GetNode(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::GetNode(db_, name);
  }
  Result<std::vector<NodeRecord>> ListNodes() override {
    std::lock_guard lock(mu_);
    return sqlite::ListNodes(db_);
  }
  Status SetNodeDrained(const std::string& name, bool drained) override {
    std::lock_guard lock(mu_);
    return sqlite::SetNodeDrained(db_, name, drained);
  }
  Status TouchNode(const std::string& name, long long now_ms) override {
    std::lock_guard lock(mu_);
    return sqlite::TouchNode(db_, name, now_ms);
  }
  Status DeleteNode(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::DeleteNode(db_, name);
  }
  Result<std::uint64_t> NextTerm() override {
    std::lock_guard lock(mu_);
    return sqlite::NextTerm(db_);
  }
  Result<std::uint64_t> CurrentTerm() override {
    std::lock_guard lock(mu_);
    return sqlite::CurrentTerm(db_);
  }

  Result<NotificationRecord> CreateNotification(NotificationRecord n) override {
    std::lock_guard lock(mu_);
    long long now = clock_.WallMillis();
    if (n.created_ms == 0) n.created_ms = now;
    if (n.updated_ms == 0) n.updated_ms = now;
    return sqlite::CreateNotification(db_, std::move(n));
  }
  Status UpdateNotification(const NotificationRecord& n) override {
    std::lock_guard lock(mu_);
    NotificationRecord row = n;
    if (row.updated_ms == 0) row.updated_ms = clock_.WallMillis();
    return sqlite::UpdateNotification(db_, row);
  }
  Result<std::vector<NotificationRecord>> ListNotifications(std::int64_t deployment_id,
                                                            int limit) override {
    std::lock_guard lock(mu_);
    return sqlite::ListNotifications(db_, deployment_id, limit);
  }

  // Environments, sandboxes, templates, snapshots and ports: sqlite_sandbox.h,
  // sqlite_ports.h. Zero times are taken as now.
  Result<Environment> CreateEnvironment(Environment e) override {
    std::lock_guard lock(mu_);
    FillTimes(e.created_ms, e.updated_ms);
    return sqlite::CreateEnvironment(db_, box_, std::move(e));
  }
  Result<Environment> GetEnvironment(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::GetEnvironment(db_, box_, name);
  }
  Result<std::vector<Environment>> ListEnvironments() override {
    std::lock_guard lock(mu_);
    return sqlite::ListEnvironments(db_, box_);
  }
  Status UpdateEnvironment(const Environment& e) override {
    std::lock_guard lock(mu_);
    Environment row = e;
    FillNow(row.updated_ms);
    return sqlite::UpdateEnvironment(db_, box_, row);
  }
  Status DeleteEnvironment(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::DeleteEnvironment(db_, name);
  }

  Result<Sandbox> CreateSandbox(Sandbox s) override {
    std::lock_guard lock(mu_);
    FillTimes(s.created_ms, s.updated_ms);
    return sqlite::CreateSandbox(db_, std::move(s));
  }
  Result<Sandbox> GetSandbox(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::GetSandbox(db_, name);
  }
  Result<std::vector<Sandbox>> ListSandboxes() override {
    std::lock_guard lock(mu_);
    return sqlite::ListSandboxes(db_);
  }
  Status UpdateSandbox(const Sandbox& s) override {
    std::lock_guard lock(mu_);
    Sandbox row = s;
    FillNow(row.updated_ms);
    return sqlite::UpdateSandbox(db_, row);
  }
  Status DeleteSandbox(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::DeleteSandbox(db_, name);
  }

  Result<SandboxTemplate> CreateTemplate(SandboxTemplate t) override {
    std::lock_guard lock(mu_);
    FillTimes(t.created_ms, t.updated_ms);
    return sqlite::CreateTemplate(db_, std::move(t));
  }
  Result<SandboxTemplate> GetTemplate(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::GetTemplate(db_, name);
  }
  Result<std::vector<SandboxTemplate>> ListTemplates() override {
    std::lock_guard lock(mu_);
    return sqlite::ListTemplates(db_);
  }
  Status UpdateTemplate(const SandboxTemplate& t) override {
    std::lock_guard lock(mu_);
    SandboxTemplate row = t;
    FillNow(row.updated_ms);
    return sqlite::UpdateTemplate(db_, row);
  }
  Status DeleteTemplate(const std::string& name) override {
    std::lock_guard lock(mu_);
    return sqlite::DeleteTemplate(db_, name);
  }

  Result<SandboxSnapshot> CreateSnapshot(SandboxSnapshot s) override {
    std::lock_guard lock(mu_);
    FillNow(s.created_ms);
    return sqlite::CreateSnapshot(db_, box_, std::move(s));
  }
  Result<SandboxSnapshot> GetSnapshot(std::int64_t id) override {
    std::lock_guard lock(mu_);
    return sqlite::GetSnapshot(db_, box_, id);
  }
  Result<std::vector<SandboxSnapshot>> ListSnapshots(const std::string& sandbox) override {
    std::lock_guard lock(mu_);
    return sqlite::ListSnapshots(db_, box_, sandbox);
  }
  Status DeleteSnapshot(std::int64_t id) override {
    std::lock_guard lock(mu_);
    return sqlite::DeleteSnapshot(db_, id);
  }

  Result<int> ReservePort(const std::string& kind, const std::string& owner, int lo, int hi,
                          const std::vector<int>& skip) override {
    std::lock_guard lock(mu_);
    return sqlite::ReservePort(db_, {0, kind, owner, clock_.WallMillis()}, lo, hi, skip);
  }
  Status ReleasePort(int port) override {
    std::lock_guard lock(mu_);
    return sqlite::ReleasePort(db_, port);
  }
  Status ReleasePorts(const std::string& owner) override {
    std::lock_guard lock(mu_);
    return sqlite::ReleasePorts(db_, owner);
  }
  Result<std::vector<PortReservation>> ListPorts() override {
    std::lock_guard lock(mu_);
    return sqlite::ListPorts(db_);
  }

  // Seals every app secret and repository URL, environment secret and file, and snapshot
  // body still stored in the clear (written before secrets were sealed, or while no key was
  // configured).
  Status SealPlaintextSecrets() {
    if (!box_) return Status::Ok();
    std::lock_guard lock(mu_);
    if (Status s = sqlite::SealPlaintextSandboxData(db_, *box_); !s.ok()) return s;
    Stmt q(db_, "SELECT id, repo, secret FROM apps");
    std::vector<std::tuple<std::int64_t, std::string, std::string>> rows;
    while (q.Step() == SQLITE_ROW) rows.emplace_back(q.Int(0), q.Text(1), q.Text(2));
    for (auto& [id, repo, secret] : rows) {
      if (crypto::SecretBox::IsSealed(repo) && crypto::SecretBox::IsSealed(secret)) continue;
      auto st = Stmt(db_, "UPDATE apps SET repo = ?, secret = ? WHERE id = ?")
                    .Bind(Seal(repo))
                    .Bind(Seal(secret))
                    .Bind(id)
                    .Exec();
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }

 private:
  Status ExecSql(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return Unavailable("database: " + msg);
    }
    return Status::Ok();
  }

  // A zero time is taken as now.
  void FillNow(long long& ms) const {
    if (ms == 0) ms = clock_.WallMillis();
  }
  void FillTimes(long long& created_ms, long long& updated_ms) const {
    FillNow(created_ms);
    FillNow(updated_ms);
  }

  std::string Seal(const std::string& value) const {
    return box_ && !crypto::SecretBox::IsSealed(value) ? box_->Seal(value) : value;
  }
  Result<App> Unseal(App app) const {
    if (!box_) return app;
    auto repo = box_->Open(app.repo);
    auto secret = box_->Open(app.secret);
    if (!repo.ok()) return Unavailable("app '" + app.name + "': " + repo.status().message());
    if (!secret.ok()) return Unavailable("app '" + app.name + "': " + secret.status().message());
    app.repo = *repo;
    app.secret = *secret;
    return app;
  }

  std::mutex mu_;  // serialises all use of db_
  sqlite3* db_;
  Clock& clock_;
  const crypto::SecretBox* box_;  // may be null (no sealing); outlives the store
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, Clock& clock,
                                               const crypto::SecretBox* box) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Unavailable("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db, clock, box);
  if (Status s = store->Migrate(); !s.ok()) return s;
  if (Status s = store->SealPlaintextSecrets(); !s.ok()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace slipway
