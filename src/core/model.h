#pragma once
// Domain records shared by the store, the control plane and the API. Plain data, no I/O.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace slipway {

// Pipeline stages in the order a deployment walks them (DESIGN §5).
enum class Stage {
  kQueued,
  kFetch,
  kCheckout,
  kBuild,
  kTest,
  kRelease,
  kStart,
  kVerify,
  kRollout,  // phased rollouts only: canary stages before the full switch
  kSwitch,
  kWatch,
  kDrain,
  kDone,
};
const char* ToString(Stage s);
std::optional<Stage> StageFromString(const std::string& s);

enum class DeployStatus { kQueued, kRunning, kSucceeded, kFailed, kRolledBack, kCancelled };
const char* ToString(DeployStatus s);
std::optional<DeployStatus> DeployStatusFromString(const std::string& s);
inline bool IsTerminal(DeployStatus s) {
  return s != DeployStatus::kQueued && s != DeployStatus::kRunning;
}

// What the gateway does with an app's requests (`slipway pause|maintenance|resume`).
enum class GatewayMode { kOpen, kPaused, kMaintenance };
const char* ToString(GatewayMode m);
std::optional<GatewayMode> GatewayModeFromString(const std::string& s);

// The persisted gateway mode of an app. `max_ms` matters only when paused (how long each
// held request waits before a 503), `message` only in maintenance (the 503 page's text).
struct GatewayState {
  GatewayMode mode = GatewayMode::kOpen;
  long long max_ms = 30000;
  std::string message;
};

struct App {
  std::int64_t id = 0;
  std::string name;
  std::string repo;  // git URL or local path
  std::string branch = "main";
  std::string secret;                              // webhook HMAC secret; never rendered by the API
  std::vector<std::string> hosts;                  // gateway Host names; default <name>.localhost
  std::string path_prefix;                         // optional gateway path prefix
  std::optional<std::int64_t> current_release_id;  // the release the gateway should serve
  bool stopped = false;                            // stopped by a user: not restarted by recovery
  long long created_ms = 0;
  GatewayState gateway;  // restored into the gateway by recovery
  // The app's address in the shared environment ("http://host:port", "" = none): where a
  // sandbox sends its requests for this service when the sandbox does not deploy it.
  std::string upstream;
  std::string environment;  // the Environment its instances get ("" = none)
  // The sandbox that owns this app ("" = a shared app). A sandbox's branch service is an app
  // of its own, named sandbox-<sandbox>-<service>, created and deleted with the sandbox.
  std::string sandbox;
};

struct Deployment {
  std::int64_t id = 0;
  std::int64_t app_id = 0;
  std::string app;            // app name, denormalised for display
  std::string type = "push";  // push | manual | rollback
  std::string environment = "production";
  DeployStatus status = DeployStatus::kQueued;
  Stage stage = Stage::kQueued;
  std::string commit;  // full sha once resolved
  std::string ref;     // what was asked for (branch, tag, sha)
  std::string branch;
  std::string repository;
  std::string config_json = "{}";
  std::string error;
  std::optional<std::int64_t> release_id;
  std::optional<std::int64_t> rollback_from;  // release serving before a rollback
  long long created_ms = 0, updated_ms = 0, completed_ms = 0;
};

// One line of a deployment's history. seq is dense per deployment, from 1.
struct Event {
  std::int64_t deployment_id = 0;
  std::int64_t seq = 0;
  long long ts_ms = 0;
  std::string stage;
  std::string state;   // started | succeeded | failed | log | info
  std::string stream;  // stdout | stderr | system
  std::string text;
};

// An immutable build result on disk: releases/<app>/<n>-<sha7>.
struct Release {
  std::int64_t id = 0;
  std::int64_t app_id = 0;
  std::int64_t number = 0;
  std::string commit;
  std::string path;
  std::string manifest_json;  // the validated manifest the release was built with
  std::int64_t deployment_id = 0;
  bool pruned = false;
  long long created_ms = 0;
  // The nodes it was built on, where its directory lives (the same path on each). Stored
  // comma-joined: node names carry no commas (protocol::IsId).
  std::vector<std::string> nodes = {"local"};
};

// A running (or formerly running) copy of a release.
struct Instance {
  std::int64_t id = 0;
  std::int64_t app_id = 0;
  std::int64_t release_id = 0;
  std::string runtime = "process";
  int pid = 0;
  long long start_ticks = 0;  // /proc start time, to tell our pid from a reused one
  int port = 0;
  std::string container_id;  // runtime "container"
  std::string state;         // starting | serving | standby | stopped
  long long created_ms = 0;
  std::string node = "local";  // the node it runs on
};

struct AuditEvent {
  std::int64_t id = 0;
  long long ts_ms = 0;
  std::string actor;   // user or token name, "system", "supervisor", "<provider>:<pusher>"
  std::string action;  // "app.create", "deployment.create", "auth.login", …
  std::string target;  // "app/hello", "deployment/12", …
  std::string detail_json = "{}";
  std::string source;          // client address, "" for the server's own actions
  std::string outcome = "ok";  // ok | denied | failed: <code>
  std::string app;             // the app concerned, "" when none (for filtering)
};

// An API credential. Only the SHA-256 of the token is stored; the token itself is shown
// once, when it is created.
struct ApiToken {
  std::int64_t id = 0;
  std::string name;
  std::string role;
  std::string kind = "api";  // api | node (agent enrollment)
  std::string hash;
  long long created_ms = 0;
  long long expires_ms = 0;  // 0 = never
  long long revoked_ms = 0;  // 0 = valid
  long long last_used_ms = 0;
  std::string created_by;
};

// A person. Local users have an argon2id password hash; users who log in with their git
// host's credentials (source "git") have none: the git server checks their password.
struct User {
  std::int64_t id = 0;
  std::string name;
  std::string role;
  std::string source = "local";  // local | git
  std::string password_hash;
  long long created_ms = 0;
};

// A browser or CLI login. Only the SHA-256 of the session id is stored.
struct Session {
  std::string hash;
  std::string user;
  std::string role;
  std::string source;  // address it was created from
  long long created_ms = 0;
  long long expires_ms = 0;
};

// A machine running an agent, as the control plane knows it. Live state (connected, last
// heartbeat) is kept in memory by the node hub; the record keeps what must survive a restart.
struct NodeRecord {
  std::string name;                // 1..64 chars [A-Za-z0-9._-], unique
  std::string labels_json = "[]";  // JSON array of strings, as last announced
  std::string address;             // where the gateway reaches its instances (advertised or seen)
  std::string agent_version;
  std::string capabilities_json = "{}";
  std::int64_t token_id = 0;  // the enrollment token it authenticated with
  bool drained = false;       // no new placements
  long long first_seen_ms = 0;
  long long last_seen_ms = 0;
};

// A release's node list in its stored form ("alpha,beta"); an empty text is the local node.
std::string JoinNodes(const std::vector<std::string>& nodes);
std::vector<std::string> SplitNodes(const std::string& text);

// One delivery of a deployment notification to one target (notify/notifier.h), as recorded
// after each change. Never holds a URL, a URL's path or a secret: `target` is the shown form
// ("slack hooks.slack.com") and `last_error` a short reason ("connect: Connection refused",
// "HTTP 500").
struct NotificationRecord {
  std::int64_t id = 0;
  std::int64_t deployment_id = 0;
  std::string app;
  std::string event;               // started | succeeded | failed | rolled_back | aborted | paused
  std::string target;              // kind and host
  std::string status = "pending";  // pending | retrying | delivered | failed | dropped
  int attempts = 0;
  int http_status = 0;  // of the last attempt; 0 when it got no response
  std::string last_error;
  long long created_ms = 0, updated_ms = 0;
};

// A named set of variables, secrets and files, injected into the instances (and build
// steps) of the apps and sandboxes that reference it. In memory the values are plaintext;
// the store seals `secrets` and `files` at rest. The API never returns a secret's value or a
// file's content, only their names.
struct Environment {
  std::int64_t id = 0;
  std::string name;
  std::map<std::string, std::string> vars;
  std::map<std::string, std::string> secrets;
  std::map<std::string, std::string> files;  // relative path in the release → content
  long long created_ms = 0, updated_ms = 0;
};

// One service of a sandbox: an app deployed from `branch` as the sandbox's own app
// (sandbox-<sandbox>-<service>), or, with no branch, the app's upstream.
struct SandboxService {
  std::string name;               // the shared app it stands for
  std::string branch;             // "" = upstream only
  std::string route = "sandbox";  // sandbox | upstream: where the sandbox's traffic goes
  int port = 0;                   // its service port on the gateway (<SERVICE>_URL)
  std::string commit;             // pinned commit (a restored snapshot); "" = branch tip
  long long memory_bytes = 0;     // 0 = the sandbox's share
  double cpus = 0;
};

struct Sandbox {
  std::int64_t id = 0;
  std::string name;  // 1..32 of [a-z0-9-], starting with a letter
  std::string template_name;
  std::string environment;  // "" = none
  std::string entry;        // the service its own port serves
  int port = 0;             // its gateway port
  // creating | deploying | running | failed | suspended | expired
  std::string status = "creating";
  std::vector<SandboxService> services;
  long long memory_bytes = 0;  // per-sandbox limits (0 = none)
  double cpus = 0;
  long long expire_after_ms = 14LL * 24 * 3600 * 1000;  // of inactivity
  std::string created_by;
  std::string config_json = "{}";  // the last config-file rendering and its read-back
  long long created_ms = 0, updated_ms = 0, last_active_ms = 0, expired_ms = 0;
};

// A reusable sandbox definition; `body_json` holds services, environment, entry, limits.
struct SandboxTemplate {
  std::int64_t id = 0;
  std::string name;
  std::string body_json = "{}";
  std::string created_by;
  long long created_ms = 0, updated_ms = 0;
};

// A sandbox as it was: the exact commits, the environment's content and the routes.
// `body_json` may hold secrets: the store seals it at rest.
struct SandboxSnapshot {
  std::int64_t id = 0;
  std::string sandbox;
  std::string body_json = "{}";
  std::string created_by;
  long long created_ms = 0;
};

// A port handed out by the allocator; unique across the store.
struct PortReservation {
  int port = 0;
  std::string kind;   // gateway | service
  std::string owner;  // "sandbox/<name>"
  long long created_ms = 0;
};

}  // namespace slipway
