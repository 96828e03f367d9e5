// Sandbox templates: reusable service lists, environment, entry and limits that
// `POST /api/v1/sandboxes {template}` starts from (docs/SANDBOXES.md).
#include "api/api_internal.h"
#include "api/sandbox_body.h"
#include "control/sandboxes.h"

namespace slipway::api {
namespace {

HttpResponse Disabled() {
  return Error(503, "unavailable", "sandboxes are not enabled on this server");
}

}  // namespace

HttpResponse Api::ListTemplates(Call&) {
  if (!sandboxes_) return Disabled();
  auto list = sandboxes_->ListTemplates();
  if (!list.ok()) return Error(list.status());
  json arr = json::array();
  for (const auto& t : *list) arr.push_back(TemplateView(t));
  return Json(200, {{"templates", arr}});
}

// POST /api/v1/templates {name, services, …}: kConflict when the name is taken.
HttpResponse Api::CreateTemplate(Call& c) {
  if (!sandboxes_) return Disabled();
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto name = StringField(*body, "name", true);
  if (!name.ok()) return Error(name.status());
  if (auto v = CheckSandboxName(*name, "template"); !v.ok()) return Error(v);
  body->erase("name");
  auto parsed = ParseTemplateBody(*body);
  if (!parsed.ok()) return Error(parsed.status());
  auto saved = sandboxes_->SaveTemplate(*name, *parsed, true, c.actor());
  if (!saved.ok()) return Error(saved.status());
  return Json(201, TemplateView(*saved));
}

HttpResponse Api::ShowTemplate(Call& c) {
  if (!sandboxes_) return Disabled();
  auto t = sandboxes_->GetTemplate(c.params[0]);
  if (!t.ok()) return Error(t.status());
  return Json(200, TemplateView(*t));
}

// PUT /api/v1/templates/{template}: replaces the whole body; kNotFound when missing.
HttpResponse Api::UpdateTemplate(Call& c) {
  if (!sandboxes_) return Disabled();
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  if (body->contains("name") && (*body)["name"] != c.params[0])
    return Error(Invalid("'name' cannot be changed (it must match the path or be left out)"));
  body->erase("name");
  auto parsed = ParseTemplateBody(*body);
  if (!parsed.ok()) return Error(parsed.status());
  auto saved = sandboxes_->SaveTemplate(c.params[0], *parsed, false, c.actor());
  if (!saved.ok()) return Error(saved.status());
  return Json(200, TemplateView(*saved));
}

HttpResponse Api::DeleteTemplate(Call& c) {
  if (!sandboxes_) return Disabled();
  if (auto s = sandboxes_->DeleteTemplate(c.params[0], c.actor()); !s.ok()) return Error(s);
  return Json(200, {{"deleted", c.params[0]}});
}

}  // namespace slipway::api
