// Sandboxes: create, list, show, deploy, route flips, clone, snapshots, suspend/resume,
// delete and the traced check (docs/SANDBOXES.md). Bodies are read strictly
// (api/sandbox_body.h); the service (control/sandboxes.h) validates against the store.
// Every route answers 503 when the server runs without sandboxes.
#include <fmt/format.h>

#include <set>

#include "api/api_internal.h"
#include "api/sandbox_body.h"
#include "control/sandboxes.h"

namespace slipway::api {
namespace {

HttpResponse Disabled() {
  return Error(503, "unavailable", "sandboxes are not enabled on this server");
}

std::string Field(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : "";
}

// A body of at most the string fields `keys`, each optional unless `required` names it.
Result<json> SmallBody(const HttpRequest& req, const std::set<std::string>& keys,
                       const char* required) {
  auto body = Body(req);
  if (!body.ok()) return body.status();
  for (const auto& [key, value] : body->items()) {
    if (!keys.count(key)) return Invalid(fmt::format("unknown field '{}'", key.substr(0, 64)));
    if (!value.is_string() && !value.is_null())
      return Invalid(fmt::format("'{}' must be a string", key));
  }
  if (required && Field(*body, required).empty())
    return Invalid(fmt::format("'{}' is required", required));
  return body;
}

// The answer to a change that made or kept a sandbox: its live view when it can be had.
HttpResponse SandboxAnswer(Sandboxes& sandboxes, int status, const Result<Sandbox>& s) {
  if (!s.ok()) return Error(s.status());
  auto shown = sandboxes.Show(s->name);
  return Json(status, shown.ok() ? *shown : Sandboxes::View(*s));
}

}  // namespace

HttpResponse Api::ListSandboxes(Call& c) {
  if (!sandboxes_) return Disabled();
  SandboxFilter filter{c.req.Query("status"), c.req.Query("template"), c.req.Query("service"),
                       c.req.Query("environment")};
  static const std::set<std::string> kStatuses = {"",       "creating",  "deploying", "running",
                                                  "failed", "suspended", "expired"};
  if (!kStatuses.count(filter.status))
    return Error(
        Invalid("status: one of creating, deploying, running, failed, suspended, "
                "expired"));
  auto list = sandboxes_->List(filter);
  if (!list.ok()) return Error(list.status());
  json arr = json::array();
  for (const auto& s : *list) arr.push_back(Sandboxes::View(s));
  return Json(200, {{"sandboxes", arr}});
}

HttpResponse Api::CreateSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto spec = ParseSandboxSpec(*body);
  if (!spec.ok()) return Error(spec.status());
  return SandboxAnswer(*sandboxes_, 201, sandboxes_->Create(std::move(*spec), c.actor()));
}

HttpResponse Api::ShowSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto shown = sandboxes_->Show(c.params[0]);
  if (!shown.ok()) return Error(shown.status());
  return Json(200, *shown);
}

HttpResponse Api::DeleteSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  if (auto s = sandboxes_->Delete(c.params[0], c.actor()); !s.ok()) return Error(s);
  return Json(200, {{"deleted", c.params[0]}});
}

HttpResponse Api::DeploySandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto body = SmallBody(c.req, {"service"}, nullptr);
  if (!body.ok()) return Error(body.status());
  auto s = sandboxes_->Deploy(c.params[0], Field(*body, "service"), c.actor());
  if (!s.ok()) return Error(s.status());
  return Json(202, Sandboxes::View(*s));
}

HttpResponse Api::RouteSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto body = SmallBody(c.req, {"to"}, "to");
  if (!body.ok()) return Error(body.status());
  std::string to = Field(*body, "to");
  if (to != "sandbox" && to != "upstream")
    return Error(Invalid("'to' must be \"sandbox\" or \"upstream\""));
  auto s = sandboxes_->Route(c.params[0], c.params[1], to, c.actor());
  if (!s.ok()) return Error(s.status());
  return Json(200, Sandboxes::View(*s));
}

HttpResponse Api::CloneSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto body = SmallBody(c.req, {"name"}, "name");
  if (!body.ok()) return Error(body.status());
  std::string name = Field(*body, "name");
  if (auto v = CheckSandboxName(name, "sandbox"); !v.ok()) return Error(v);
  return SandboxAnswer(*sandboxes_, 201, sandboxes_->Clone(c.params[0], name, c.actor()));
}

HttpResponse Api::SnapshotSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto snap = sandboxes_->Snapshot(c.params[0], c.actor());
  if (!snap.ok()) return Error(snap.status());
  return Json(201, SnapshotView(*snap));
}

HttpResponse Api::ListSandboxSnapshots(Call& c) {
  if (!sandboxes_) return Disabled();
  auto list = sandboxes_->Snapshots(c.params[0]);
  if (!list.ok()) return Error(list.status());
  json arr = json::array();
  for (const auto& s : *list) arr.push_back(SnapshotView(s));
  return Json(200, {{"snapshots", arr}});
}

HttpResponse Api::RestoreSnapshot(Call& c) {
  if (!sandboxes_) return Disabled();
  std::int64_t id = 0;
  if (!ParseInt(c.params[0], id) || id <= 0)
    return Error(404, "not_found", "no such snapshot: ids are positive integers");
  auto body = SmallBody(c.req, {"name"}, nullptr);
  if (!body.ok()) return Error(body.status());
  std::string name = Field(*body, "name");
  if (!name.empty())
    if (auto v = CheckSandboxName(name, "sandbox"); !v.ok()) return Error(v);
  return SandboxAnswer(*sandboxes_, 201, sandboxes_->Restore(id, name, c.actor()));
}

HttpResponse Api::SuspendSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto s = sandboxes_->Suspend(c.params[0], c.actor());
  if (!s.ok()) return Error(s.status());
  return Json(200, Sandboxes::View(*s));
}

HttpResponse Api::ResumeSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto s = sandboxes_->Resume(c.params[0], c.actor());
  if (!s.ok()) return Error(s.status());
  return Json(200, Sandboxes::View(*s));
}

HttpResponse Api::CheckSandbox(Call& c) {
  if (!sandboxes_) return Disabled();
  auto report = sandboxes_->Check(c.params[0]);
  if (!report.ok()) return Error(report.status());
  return Json(200, *report);
}

}  // namespace slipway::api
