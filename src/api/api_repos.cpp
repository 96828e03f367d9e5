// The repositories nodes offer (their repos.yaml) and the branches in them, asked of the nodes
// themselves: GET /api/v1/repos[?node=N] and GET /api/v1/repos/{repo}/branches[?node=N].
//
// A git-credential session's credentials go to the node with the one list_branches op that
// needs them (they open a URL repository that carries none of its own) and are never stored,
// logged or echoed here.
#include <algorithm>
#include <future>

#include "api/api_internal.h"
#include "core/protocol.h"
#include "git/git.h"
#include "manifest/repos_file.h"

namespace slipway::api {
namespace {

// A node that can be asked now, and the repositories its hello listed.
struct LiveNode {
  std::string name;
  std::vector<std::string> repos;
  bool Carries(const std::string& repo) const {
    return std::find(repos.begin(), repos.end(), repo) != repos.end();
  }
};

// A caller's value shown in a message, cut short so that the error stays one line.
std::string Clip(const std::string& s) {
  return s.size() <= 64 ? s : s.substr(0, 64) + "...";
}

Agent& AgentOn(const Context& ctx, const std::string& node) {
  return ctx.hub ? ctx.hub->AgentFor(node) : ctx.agent;
}

// The connected nodes, by name; the server's own node is always one of them.
std::vector<LiveNode> LiveNodes(const Context& ctx) {
  std::vector<LiveNode> out;
  if (!ctx.hub) {  // only the local node exists: ask it what it carries
    LiveNode local{NodeRegistry::kLocalNode, {}};
    if (auto repos = ctx.agent.ListRepos(); repos.ok())
      for (const auto& r : *repos) local.repos.push_back(r.name);
    return {local};
  }
  for (const auto& v : ctx.hub->List())
    if (v.connected) out.push_back({v.name, v.capabilities.repos});
  std::sort(out.begin(), out.end(),
            [](const LiveNode& a, const LiveNode& b) { return a.name < b.name; });
  return out;
}

// The node `name` when it can be asked now. kNotFound for a node nobody knows, kUnavailable
// for a known node that is not connected.
Result<LiveNode> PickNode(NodeRegistry& nodes, const std::vector<LiveNode>& live,
                          const std::string& name) {
  for (const auto& n : live)
    if (n.name == name) return n;
  if (!protocol::IsValidId(name)) return NotFound("node '" + Clip(name) + "' does not exist");
  auto row = nodes.Show(name);
  if (!row.ok()) return row.status();
  return Unavailable("node " + name + " is not connected");
}

// Whether a recorded node's last hello listed `repo`.
bool Listed(const NodeRow& row, const std::string& repo) {
  auto it = row.capabilities.find("repos");
  if (it == row.capabilities.end() || !it->is_array()) return false;
  return std::any_of(it->begin(), it->end(), [&repo](const json& r) {
    return r.is_string() && r.get<std::string>() == repo;
  });
}

// No connected node carries `repo`: kUnavailable when a known node that is away listed it,
// kNotFound otherwise.
Status Unreachable(NodeRegistry& nodes, const std::string& repo) {
  if (auto rows = nodes.List(); rows.ok()) {
    for (const auto& row : *rows)
      if (!row.connected && Listed(row, repo))
        return Unavailable("repository '" + repo + "' is on node " + row.name +
                           ", which is not connected");
  }
  return NotFound("no connected node has a repository named '" + Clip(repo) + "'");
}

// The node to list `repo`'s branches on: `wanted` when given, else the first connected node,
// by name, that carries it.
Result<std::string> NodeForRepo(NodeRegistry& nodes, const std::vector<LiveNode>& live,
                                const std::string& repo, const std::string& wanted) {
  if (!IsRepoName(repo)) return NotFound("no repository named '" + Clip(repo) + "'");
  if (wanted.empty()) {
    for (const auto& n : live)
      if (n.Carries(repo)) return n.name;
    return Unreachable(nodes, repo);
  }
  auto node = PickNode(nodes, live, wanted);
  if (!node.ok()) return node.status();
  if (!node->Carries(repo))
    return NotFound("node " + wanted + " has no repository named '" + repo + "'");
  return node->name;
}

json RepoJson(const std::string& node, const RepoView& r) {
  // Redacted on the node already; again here, so that no node can make this answer leak.
  std::string location = r.kind == "path" ? r.location : git::RedactUrl(r.location);
  return {{"node", node}, {"name", r.name}, {"kind", r.kind}, {"location", location}};
}

// Asks every node of `live` that listed repositories for them, all at once.
std::vector<Result<std::vector<RepoView>>> AskRepos(const Context& ctx,
                                                    const std::vector<LiveNode>& live) {
  std::vector<std::future<Result<std::vector<RepoView>>>> asked;
  for (const auto& n : live) {
    if (n.repos.empty()) {
      std::promise<Result<std::vector<RepoView>>> none;
      none.set_value(std::vector<RepoView>{});
      asked.push_back(none.get_future());
      continue;
    }
    asked.push_back(std::async(std::launch::async,
                               [&ctx, name = n.name] { return AgentOn(ctx, name).ListRepos(); }));
  }
  std::vector<Result<std::vector<RepoView>>> out;
  for (auto& a : asked) out.push_back(a.get());
  return out;
}

// A failed list_branches as the caller should read it. The git host refusing is not the
// caller's Slipway credential failing: 403, not 401.
HttpResponse BranchesError(const std::string& repo, const Status& s,
                           const std::optional<GitCredential>& git) {
  if (s.code() == Code::kUnauthorized)
    return Error(403, "forbidden",
                 "the git host refused access to repository '" + repo + "' (" +
                     (git ? "the git credentials of this login may not read it"
                          : "log in with git credentials that may read it") +
                     ")");
  std::vector<std::string> secrets;
  if (git) secrets.push_back(git->password);
  return Error(Status(s.code(), git::RedactSecrets(s.message(), secrets)));
}

}  // namespace

HttpResponse Api::ListRepos(Call& c) {
  auto live = LiveNodes(ctx_);
  const std::string wanted = c.req.Query("node");
  if (!wanted.empty()) {
    auto node = PickNode(nodes_, live, wanted);
    if (!node.ok()) return Error(node.status());
    live = {*node};
  }
  auto answers = AskRepos(ctx_, live);
  json repos = json::array(), errors = json::array();
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (!answers[i].ok()) {
      if (!wanted.empty()) return Error(answers[i].status());
      errors.push_back({{"node", live[i].name},
                        {"error", ToString(answers[i].status().code())},
                        {"detail", git::RedactSecrets(answers[i].status().message())}});
      continue;
    }
    for (const auto& r : *answers[i]) repos.push_back(RepoJson(live[i].name, r));
  }
  return Json(200, {{"repos", repos}, {"errors", errors}});
}

HttpResponse Api::ListRepoBranches(Call& c) {
  const std::string& repo = c.params[0];
  auto node = NodeForRepo(nodes_, LiveNodes(ctx_), repo, c.req.Query("node"));
  if (!node.ok()) return Error(node.status());
  const auto git = auth_.GitCredentialsFor(c.principal);
  auto listed =
      AgentOn(ctx_, *node).ListBranches(repo, git ? git->username : "", git ? git->password : "");
  if (!listed.ok()) return BranchesError(repo, listed.status(), git);
  json branches = json::array();
  for (const auto& b : listed->branches)
    branches.push_back({{"name", b.name}, {"commit", b.commit}});
  return Json(
      200,
      {{"node", *node}, {"repo", repo}, {"branches", branches}, {"truncated", listed->truncated}});
}

}  // namespace slipway::api
