#include "store/migrations.h"

namespace slipway {

const std::vector<Migration>& SqliteMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, R"sql(
CREATE TABLE apps (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  repo TEXT NOT NULL,
  branch TEXT NOT NULL,
  secret TEXT NOT NULL,
  hosts TEXT NOT NULL DEFAULT '[]',
  path_prefix TEXT NOT NULL DEFAULT '',
  current_release_id INTEGER,
  created_ms INTEGER NOT NULL
);
CREATE TABLE deployments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  name TEXT NOT NULL,
  environment TEXT NOT NULL,
  status TEXT NOT NULL,
  stage TEXT NOT NULL,
  git_commit TEXT NOT NULL DEFAULT '',
  git_ref TEXT NOT NULL DEFAULT '',
  git_branch TEXT NOT NULL DEFAULT '',
  git_repository TEXT NOT NULL DEFAULT '',
  config_json TEXT NOT NULL DEFAULT '{}',
  error TEXT NOT NULL DEFAULT '',
  release_id INTEGER,
  rollback_from INTEGER,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  completed_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deployments_app ON deployments(app_id, id);
CREATE INDEX deployments_status ON deployments(status);
CREATE TABLE deployment_events (
  deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  ts_ms INTEGER NOT NULL,
  stage TEXT NOT NULL,
  state TEXT NOT NULL,
  stream TEXT NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (deployment_id, seq)
) WITHOUT ROWID;
CREATE TABLE releases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  number INTEGER NOT NULL,
  git_commit TEXT NOT NULL,
  path TEXT NOT NULL,
  manifest_json TEXT NOT NULL,
  deployment_id INTEGER NOT NULL,
  pruned INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  UNIQUE (app_id, number)
);
CREATE TABLE instances (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  release_id INTEGER NOT NULL,
  runtime TEXT NOT NULL,
  pid INTEGER NOT NULL DEFAULT 0,
  start_ticks INTEGER NOT NULL DEFAULT 0,
  port INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE webhook_deliveries (
  provider TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  app TEXT NOT NULL,
  event TEXT NOT NULL,
  outcome TEXT NOT NULL,
  deployment_id INTEGER,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (provider, delivery_id)
);
CREATE TABLE audit_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail_json TEXT NOT NULL DEFAULT '{}'
);
)sql"},
      {2, R"sql(
ALTER TABLE instances ADD COLUMN container_id TEXT NOT NULL DEFAULT '';
)sql"},
      {3, R"sql(
ALTER TABLE apps ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0;
)sql"},
      {4, R"sql(
ALTER TABLE audit_events ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE audit_events ADD COLUMN app TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_app ON audit_events(app, id);
CREATE INDEX audit_events_actor ON audit_events(actor, id);
CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'api',
  hash TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL DEFAULT 0,
  revoked_ms INTEGER NOT NULL DEFAULT 0,
  last_used_ms INTEGER NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT 'local',
  password_hash TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL
);
CREATE TABLE sessions (
  hash TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  role TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL
);
)sql"},
      {5, R"sql(
ALTER TABLE apps ADD COLUMN gateway_mode TEXT NOT NULL DEFAULT 'open';
ALTER TABLE apps ADD COLUMN gateway_message TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN gateway_max_ms INTEGER NOT NULL DEFAULT 30000;
)sql"},
      {6, R"sql(
CREATE TABLE nodes (
  name TEXT NOT NULL PRIMARY KEY,
  labels_json TEXT NOT NULL DEFAULT '[]',
  address TEXT NOT NULL DEFAULT '',
  agent_version TEXT NOT NULL DEFAULT '',
  capabilities_json TEXT NOT NULL DEFAULT '{}',
  token_id INTEGER NOT NULL DEFAULT 0,
  drained INTEGER NOT NULL DEFAULT 0,
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL
);
CREATE TABLE control_state (
  key TEXT NOT NULL PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO control_state (key, value) VALUES ('term', 0);
)sql"},
      {7, R"sql(
ALTER TABLE instances ADD COLUMN node TEXT NOT NULL DEFAULT 'local';
ALTER TABLE releases ADD COLUMN node TEXT NOT NULL DEFAULT 'local';
)sql"},
      {8, R"sql(
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  deployment_id INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  app TEXT NOT NULL,
  event TEXT NOT NULL,
  target TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  http_status INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX notifications_deployment ON notifications(deployment_id, id);
)sql"},
      // Sandboxes. environments.secrets_json, environments.files_json and
      // sandbox_snapshots.body_json are sealed when the store has a key.
      {9, R"sql(
ALTER TABLE apps ADD COLUMN upstream TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN environment TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN sandbox TEXT NOT NULL DEFAULT '';
CREATE TABLE environments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  vars_json TEXT NOT NULL DEFAULT '{}',
  secrets_json TEXT NOT NULL DEFAULT '{}',
  files_json TEXT NOT NULL DEFAULT '{}',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE sandboxes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  template_name TEXT NOT NULL DEFAULT '',
  environment TEXT NOT NULL DEFAULT '',
  entry TEXT NOT NULL DEFAULT '',
  port INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL,
  services_json TEXT NOT NULL DEFAULT '[]',
  memory_bytes INTEGER NOT NULL DEFAULT 0,
  cpus REAL NOT NULL DEFAULT 0,
  expire_after_ms INTEGER NOT NULL DEFAULT 0,
  created_by TEXT NOT NULL DEFAULT '',
  config_json TEXT NOT NULL DEFAULT '{}',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  last_active_ms INTEGER NOT NULL DEFAULT 0,
  expired_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sandbox_templates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  body_json TEXT NOT NULL DEFAULT '{}',
  created_by TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE sandbox_snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sandbox TEXT NOT NULL,
  body_json TEXT NOT NULL,
  created_by TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL
);
CREATE INDEX sandbox_snapshots_sandbox ON sandbox_snapshots(sandbox, id);
CREATE TABLE port_allocations (
  port INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  owner TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX port_allocations_owner ON port_allocations(owner);
)sql"},
  };
  return kMigrations;
}

}  // namespace slipway
