#pragma once
// The Store interface: every durable record of the control plane. Implementations must make
// each call atomic (a crash never leaves half a record) and be safe to call from any thread.
// Errors: kNotFound for a missing record, kConflict for a uniqueness violation,
// kUnavailable for an I/O failure (disk full, database locked past the busy timeout).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/status.h"

namespace slipway {

struct DeploymentFilter {
  std::optional<std::int64_t> app_id;
  std::optional<DeployStatus> status;
  int limit = 50;
};

struct WebhookDelivery {
  std::string provider;
  std::string delivery_id;
  std::string app;
  std::string event;
  std::string outcome;
  std::optional<std::int64_t> deployment_id;
  long long received_ms = 0;
};

struct AuditFilter {
  std::string app;    // entries whose target is app/<app> or whose detail names the app
  std::string actor;  // exact actor name
  long long since_ms = 0;
  int limit = 100;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<App> CreateApp(App app) = 0;
  virtual Result<App> GetApp(const std::string& name) = 0;
  virtual Result<App> GetAppById(std::int64_t id) = 0;
  virtual Result<std::vector<App>> ListApps() = 0;
  virtual Status DeleteApp(std::int64_t id) = 0;
  virtual Status SetCurrentRelease(std::int64_t app_id, std::optional<std::int64_t> release_id) = 0;
  virtual Status SetAppStopped(std::int64_t app_id, bool stopped) = 0;
  // Records the app's gateway mode (App::gateway); kNotFound when the app does not exist.
  virtual Status SetAppGateway(std::int64_t app_id, const GatewayState& gateway) = 0;

  virtual Result<Deployment> CreateDeployment(Deployment d) = 0;
  virtual Result<Deployment> GetDeployment(std::int64_t id) = 0;
  virtual Result<std::vector<Deployment>> ListDeployments(const DeploymentFilter& filter) = 0;
  // Writes every mutable column of `d` (status, stage, commit, error, release, times).
  virtual Status UpdateDeployment(const Deployment& d) = 0;

  // Assigns the next seq of the deployment and stores the event; returns it with seq set.
  virtual Result<Event> AppendEvent(Event e) = 0;
  virtual Result<std::vector<Event>> ListEvents(std::int64_t deployment_id, std::int64_t after_seq,
                                                int limit) = 0;

  // Assigns the next release number of the app.
  virtual Result<Release> CreateRelease(Release r) = 0;
  virtual Result<Release> GetRelease(std::int64_t id) = 0;
  // Newest first; pruned releases included only when asked.
  virtual Result<std::vector<Release>> ListReleases(std::int64_t app_id, bool include_pruned) = 0;
  virtual Status MarkReleasePruned(std::int64_t id) = 0;
  virtual Status SetReleasePath(std::int64_t id, const std::string& path) = 0;
  // The nodes that keep the release (a phased rollout adds them stage by stage).
  virtual Status SetReleaseNodes(std::int64_t id, const std::vector<std::string>& nodes) = 0;

  virtual Result<Instance> CreateInstance(Instance i) = 0;
  virtual Status UpdateInstance(const Instance& i) = 0;
  // Instances not yet stopped, of one app or (app_id 0) of all apps.
  virtual Result<std::vector<Instance>> ListLiveInstances(std::int64_t app_id) = 0;

  // Records a webhook delivery; kConflict when (provider, delivery_id) was seen before.
  virtual Status RecordDelivery(const WebhookDelivery& d) = 0;
  // Records the delivery and the deployment it queues in one transaction: after a crash
  // either both exist or neither does. kConflict (and nothing written) for a replay.
  virtual Result<Deployment> CreateDeploymentForDelivery(Deployment d,
                                                         WebhookDelivery delivery) = 0;

  virtual Status AppendAudit(AuditEvent e) = 0;
  // Newest first.
  virtual Result<std::vector<AuditEvent>> ListAudit(const AuditFilter& filter) = 0;

  // API tokens (and node enrollment tokens), looked up by the SHA-256 of the token.
  virtual Result<ApiToken> CreateToken(ApiToken t) = 0;  // kConflict: name taken
  virtual Result<ApiToken> FindTokenByHash(const std::string& hash) = 0;
  virtual Result<std::vector<ApiToken>> ListTokens() = 0;
  // Marks a token revoked (by id or name); kNotFound when there is none.
  virtual Status RevokeToken(const std::string& id_or_name, long long now_ms) = 0;
  virtual Status TouchToken(std::int64_t id, long long now_ms) = 0;

  virtual Result<User> CreateUser(User u) = 0;  // kConflict: name taken
  virtual Result<User> GetUser(const std::string& name) = 0;
  virtual Result<std::vector<User>> ListUsers() = 0;
  virtual Status DeleteUser(const std::string& name) = 0;  // and the user's sessions

  virtual Status CreateSession(const Session& s) = 0;
  virtual Result<Session> GetSession(const std::string& hash) = 0;
  virtual Status DeleteSession(const std::string& hash) = 0;
  virtual Status DeleteExpiredSessions(long long now_ms) = 0;

  // Nodes. UpsertNode inserts or updates by name and returns the stored record: an update
  // replaces labels, address, agent version, capabilities, token and last_seen_ms, and keeps
  // drained and first_seen_ms. A zero first_seen_ms or last_seen_ms is taken as now. The
  // caller validates the name (see NodeRecord).
  virtual Result<NodeRecord> UpsertNode(const NodeRecord& n) = 0;
  virtual Result<NodeRecord> GetNode(const std::string& name) = 0;           // kNotFound
  virtual Result<std::vector<NodeRecord>> ListNodes() = 0;                   // by name
  virtual Status SetNodeDrained(const std::string& name, bool drained) = 0;  // kNotFound
  // Sets last_seen_ms; kNotFound.
  virtual Status TouchNode(const std::string& name, long long now_ms) = 0;
  virtual Status DeleteNode(const std::string& name) = 0;  // kNotFound

  // The control plane's term: each call raises the stored term by one and returns the new
  // value (1 on a fresh store), atomically: concurrent callers, in this process or another
  // on the same database, each get a distinct value. Called once per server start, so that
  // agents can refuse a deposed control plane.
  virtual Result<std::uint64_t> NextTerm() = 0;
  virtual Result<std::uint64_t> CurrentTerm() = 0;  // 0 before the first NextTerm

  // Deployment notifications, one record per delivery to one target. CreateNotification
  // assigns the id (and takes zero times as now); kNotFound when the deployment does not
  // exist. UpdateNotification writes status, attempts, http_status, last_error and
  // updated_ms (zero = now); kNotFound when the record is gone (its deployment's app was
  // deleted). ListNotifications: oldest first, at most `limit` (1..1000).
  virtual Result<NotificationRecord> CreateNotification(NotificationRecord n) = 0;
  virtual Status UpdateNotification(const NotificationRecord& n) = 0;
  virtual Result<std::vector<NotificationRecord>> ListNotifications(std::int64_t deployment_id,
                                                                    int limit) = 0;

  // Writes the app's upstream and environment (App::upstream, App::environment) to the app
  // with id App::id (like every other app update); kNotFound when there is none.
  virtual Status UpdateAppSettings(const App& app) = 0;

  // Environments, by unique name. Secrets and files are sealed at rest (never plaintext in
  // the database file). Create: kConflict when the name is taken; Update writes vars,
  // secrets, files and updated_ms (zero = now); kNotFound when missing.
  virtual Result<Environment> CreateEnvironment(Environment e) = 0;
  virtual Result<Environment> GetEnvironment(const std::string& name) = 0;
  virtual Result<std::vector<Environment>> ListEnvironments() = 0;  // by name
  virtual Status UpdateEnvironment(const Environment& e) = 0;
  virtual Status DeleteEnvironment(const std::string& name) = 0;

  // Sandboxes, by unique name. Update writes every field but id, name and created_ms.
  virtual Result<Sandbox> CreateSandbox(Sandbox s) = 0;  // kConflict: name taken
  virtual Result<Sandbox> GetSandbox(const std::string& name) = 0;
  virtual Result<std::vector<Sandbox>> ListSandboxes() = 0;  // by name
  virtual Status UpdateSandbox(const Sandbox& s) = 0;
  virtual Status DeleteSandbox(const std::string& name) = 0;

  // Sandbox templates, by unique name (Update writes body_json and updated_ms).
  virtual Result<SandboxTemplate> CreateTemplate(SandboxTemplate t) = 0;  // kConflict
  virtual Result<SandboxTemplate> GetTemplate(const std::string& name) = 0;
  virtual Result<std::vector<SandboxTemplate>> ListTemplates() = 0;
  virtual Status UpdateTemplate(const SandboxTemplate& t) = 0;
  virtual Status DeleteTemplate(const std::string& name) = 0;

  // Snapshots (body sealed at rest); List: newest first, of one sandbox or ("") of all.
  virtual Result<SandboxSnapshot> CreateSnapshot(SandboxSnapshot s) = 0;
  virtual Result<SandboxSnapshot> GetSnapshot(std::int64_t id) = 0;
  virtual Result<std::vector<SandboxSnapshot>> ListSnapshots(const std::string& sandbox) = 0;
  virtual Status DeleteSnapshot(std::int64_t id) = 0;

  // The port allocator's table. ReservePort records and returns the lowest port of
  // [lo, hi] that no reservation holds and that is not in `skip`, atomically: concurrent
  // callers (threads or processes on one database) never get the same port. kUnavailable
  // when the range is exhausted. ReleasePorts frees every port of `owner`.
  virtual Result<int> ReservePort(const std::string& kind, const std::string& owner, int lo, int hi,
                                  const std::vector<int>& skip) = 0;
  virtual Status ReleasePort(int port) = 0;
  virtual Status ReleasePorts(const std::string& owner) = 0;
  virtual Result<std::vector<PortReservation>> ListPorts() = 0;  // by port
};

}  // namespace slipway
