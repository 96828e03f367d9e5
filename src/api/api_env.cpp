// Environments: GET/POST /api/v1/environments, GET/PATCH/DELETE /api/v1/environments/{env}.
// Bodies are checked strictly (unknown fields, wrong types and nesting are 400 naming the
// field, never quoting a value); answers show secrets and files by name only.
#include <fmt/format.h>

#include "api/api_internal.h"
#include "control/environments.h"

namespace slipway::api {
namespace {

// A key as an error may quote it (keys are names, never values).
std::string Shown(const std::string& key) {
  std::string out = key.substr(0, 64);
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return key.size() > 64 ? out + "…" : out;
}

// `body[key]`, when present, must be an object whose every member is a string.
Status StringMap(const json& body, const char* key, std::map<std::string, std::string>& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return Status::Ok();
  if (!it->is_object())
    return Invalid(fmt::format("'{}' must be an object of names to strings", key));
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) return Invalid(fmt::format("'{}.{}' must be a string", key, Shown(k)));
    out[k] = v.get<std::string>();
  }
  return Status::Ok();
}

Status StringList(const json& body, const char* key, std::vector<std::string>& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return Invalid(fmt::format("'{}' must be a list of names", key));
  if (it->size() > 1024) return Invalid(fmt::format("'{}' names at most 1024 keys", key));
  for (std::size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) return Invalid(fmt::format("'{}[{}]' must be a string", key, i));
    out.push_back((*it)[i].get<std::string>());
  }
  return Status::Ok();
}

Status OnlyFields(const json& body, std::initializer_list<const char*> allowed) {
  for (const auto& [k, v] : body.items()) {
    bool known = false;
    for (const char* a : allowed) known = known || k == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return Invalid(fmt::format("unknown field '{}' (expected {})", Shown(k), list));
    }
  }
  return Status::Ok();
}

// The change a POST or PATCH body asks for; `patch` allows "unset" (and no "name").
Result<EnvironmentChange> ChangeOf(const json& body, bool patch) {
  auto known = patch ? OnlyFields(body, {"vars", "secrets", "files", "unset"})
                     : OnlyFields(body, {"name", "vars", "secrets", "files"});
  if (!known.ok()) return known;
  EnvironmentChange c;
  for (const auto& s : {StringMap(body, "vars", c.vars), StringMap(body, "secrets", c.secrets),
                        StringMap(body, "files", c.files),
                        patch ? StringList(body, "unset", c.unset) : Status::Ok()})
    if (!s.ok()) return s;
  return c;
}

json Views(const std::vector<Environment>& list) {
  json arr = json::array();
  for (const auto& e : list) arr.push_back(Environments::View(e));
  return arr;
}

}  // namespace

HttpResponse Api::ListEnvironments(Call&) {
  if (!environments_) return Error(Unavailable("environments are not available"));
  auto list = environments_->List();
  if (!list.ok()) return Error(list.status());
  return Json(200, {{"environments", Views(*list)}});
}

HttpResponse Api::CreateEnvironment(Call& c) {
  if (!environments_) return Error(Unavailable("environments are not available"));
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto name = StringField(*body, "name", true);
  if (!name.ok()) return Error(name.status());
  auto change = ChangeOf(*body, false);
  if (!change.ok()) return Error(change.status());
  auto e = environments_->Create(*name, *change, c.actor());
  if (!e.ok()) return Error(e.status());
  return Json(201, Environments::View(*e));
}

HttpResponse Api::ShowEnvironment(Call& c) {
  if (!environments_) return Error(Unavailable("environments are not available"));
  auto e = environments_->Get(c.params[0]);
  if (!e.ok()) return Error(e.status());
  return Json(200, Environments::View(*e));
}

HttpResponse Api::ChangeEnvironment(Call& c) {
  if (!environments_) return Error(Unavailable("environments are not available"));
  auto body = Body(c.req);
  if (!body.ok()) return Error(body.status());
  auto change = ChangeOf(*body, true);
  if (!change.ok()) return Error(change.status());
  auto e = environments_->Change(c.params[0], *change, c.actor());
  if (!e.ok()) return Error(e.status());
  return Json(200, Environments::View(*e));
}

HttpResponse Api::DeleteEnvironment(Call& c) {
  if (!environments_) return Error(Unavailable("environments are not available"));
  if (auto s = environments_->Delete(c.params[0], c.actor()); !s.ok()) return Error(s);
  return Json(200, {{"deleted", c.params[0]}});
}

}  // namespace slipway::api
