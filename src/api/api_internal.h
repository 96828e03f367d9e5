#pragma once
// The API handler's parts, shared by api/*.cpp. Not for use outside api/.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/api.h"
#include "core/roles.h"

namespace slipway::api {

using json = nlohmann::json;
using net::HttpRequest;
using net::HttpResponse;

HttpResponse Json(int status, const json& body);
HttpResponse Error(int status, const std::string& error, const std::string& detail);
HttpResponse Error(const Status& s);
Result<json> Body(const HttpRequest& req);
Result<std::string> StringField(const json& j, const char* key, bool required);
bool ParseInt(const std::string& s, std::int64_t& out);
// The bearer token of the Authorization header, and the session cookie ("" when absent).
std::string Bearer(const HttpRequest& req);
std::string SessionCookie(const HttpRequest& req);
// "30d", "12h", "45m", "90s": a positive duration of at most ten years.
bool ParseTtl(const std::string& text, std::chrono::milliseconds& out);

// One request after authentication: who asks, and the route's {placeholders}.
struct Call {
  HttpRequest& req;
  Principal principal;
  std::vector<std::string> params;  // in the order the pattern names them
  Actor actor() const;
};

class Api;
using Handler = HttpResponse (Api::*)(Call&);

struct Route {
  const char* method;
  const char* pattern;
  std::optional<Permission> permission;  // nullopt only for the login route
  Handler handler;
};
const std::vector<Route>& Routes();

class Api {
 public:
  Api(ApiDeps deps, Listener listener);
  HttpResponse Handle(HttpRequest& req);

  // apps and deployments (api_apps.cpp)
  HttpResponse ListApps(Call& c);
  HttpResponse CreateApp(Call& c);
  HttpResponse ShowApp(Call& c);
  HttpResponse DeleteApp(Call& c);
  Status AppInUse(const std::string& name);
  HttpResponse CreateDeployment(Call& c);
  HttpResponse ListAppDeployments(Call& c);
  HttpResponse ListReleases(Call& c);
  HttpResponse RollbackApp(Call& c);
  HttpResponse StopApp(Call& c);
  HttpResponse StartApp(Call& c);
  HttpResponse RestartApp(Call& c);
  HttpResponse ListDeployments(Call& c);
  // gateway modes (api_gateway.cpp)
  HttpResponse PauseApp(Call& c);
  HttpResponse ResumeApp(Call& c);
  HttpResponse MaintenanceApp(Call& c);
  HttpResponse ShowDeployment(Call& c);
  HttpResponse CancelDeployment(Call& c);
  HttpResponse Events(Call& c);
  HttpResponse Stream(Call& c);
  // identity, tokens, users, audit (api_auth.cpp)
  HttpResponse Login(Call& c);
  HttpResponse Logout(Call& c);
  HttpResponse WhoAmI(Call& c);
  HttpResponse ListTokens(Call& c);
  HttpResponse CreateToken(Call& c);
  HttpResponse RevokeToken(Call& c);
  HttpResponse ListUsers(Call& c);
  HttpResponse CreateUser(Call& c);
  HttpResponse DeleteUser(Call& c);
  HttpResponse Audit(Call& c);
  HttpResponse ListRoutes(Call& c);
  // nodes and their enrollment tokens (api_nodes.cpp)
  HttpResponse ListNodes(Call& c);
  HttpResponse ShowNode(Call& c);
  HttpResponse DrainNode(Call& c);
  HttpResponse RemoveNode(Call& c);
  HttpResponse CreateNodeToken(Call& c);
  // phased rollouts (api_rollout.cpp)
  HttpResponse ShowRollout(Call& c);
  HttpResponse PromoteRollout(Call& c);
  HttpResponse AbortRollout(Call& c);
  // the nodes' repositories and their branches (api_repos.cpp)
  HttpResponse ListRepos(Call& c);
  HttpResponse ListRepoBranches(Call& c);
  // a deployment's notification deliveries (api_notify.cpp)
  HttpResponse ListNotifications(Call& c);
  // environments (api_env.cpp) and an app's upstream and environment (api_apps.cpp)
  HttpResponse ListEnvironments(Call& c);
  HttpResponse CreateEnvironment(Call& c);
  HttpResponse ShowEnvironment(Call& c);
  HttpResponse ChangeEnvironment(Call& c);
  HttpResponse DeleteEnvironment(Call& c);
  HttpResponse ChangeApp(Call& c);
  // sandboxes (api_sandbox.cpp) and their templates (api_template.cpp)
  HttpResponse ListSandboxes(Call& c);
  HttpResponse CreateSandbox(Call& c);
  HttpResponse ShowSandbox(Call& c);
  HttpResponse DeleteSandbox(Call& c);
  HttpResponse DeploySandbox(Call& c);
  HttpResponse RouteSandbox(Call& c);
  HttpResponse CloneSandbox(Call& c);
  HttpResponse SnapshotSandbox(Call& c);
  HttpResponse ListSandboxSnapshots(Call& c);
  HttpResponse RestoreSnapshot(Call& c);
  HttpResponse SuspendSandbox(Call& c);
  HttpResponse ResumeSandbox(Call& c);
  HttpResponse CheckSandbox(Call& c);
  HttpResponse ListTemplates(Call& c);
  HttpResponse CreateTemplate(Call& c);
  HttpResponse ShowTemplate(Call& c);
  HttpResponse UpdateTemplate(Call& c);
  HttpResponse DeleteTemplate(Call& c);

 private:
  HttpResponse Dispatch(HttpRequest& req, std::string& route);
  HttpResponse DispatchApi(HttpRequest& req, std::string& route);
  std::optional<HttpResponse> Refuse(HttpRequest& req, const Route& r, Call& call);
  void AuditRefusal(const HttpRequest& req, const std::string& actor, const std::string& route,
                    const HttpResponse& res);
  HttpResponse Health();
  HttpResponse Metrics();
  HttpResponse Hook(HttpRequest& req, const std::string& provider, const std::string& app);
  json AppView(const App& a);
  HttpResponse ListDeploymentsOf(HttpRequest& req, const std::string& app_name);
  Result<Deployment> FindDeployment(const std::string& id_text);
  HttpResponse EventsPage(std::int64_t id, std::int64_t after, std::int64_t limit, bool* ready);
  HttpResponse Lifecycle(Call& c, const std::string& verb);
  // GET /ws/agent: an agent's WebSocket, after its enrollment token (api_agent.cpp).
  HttpResponse AgentSocket(HttpRequest& req);

  Context& ctx_;
  Controller& controller_;
  AuthService& auth_;
  NodeRegistry& nodes_;
  Sandboxes* sandboxes_;        // null = off
  Environments* environments_;  // null = off
  Listener listener_;
};

}  // namespace slipway::api
