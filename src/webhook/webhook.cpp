#include "webhook/webhook.h"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include "crypto/crypto.h"

namespace slipway::webhook {
namespace {

using json = nlohmann::json;

std::string Get(const HeaderMap& headers, const std::string& name) {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool IsZeroSha(const std::string& sha) {
  return !sha.empty() && sha.find_first_not_of('0') == std::string::npos;
}

void FillBranch(PushEvent& p) {
  static const std::string kHeads = "refs/heads/";
  if (p.ref.rfind(kHeads, 0) == 0) p.branch = p.ref.substr(kHeads.size());
}

// Gitea, Forgejo and GitHub share the push payload shape (ref, after, repository.clone_url).
PushEvent ParseGithubLikePush(const json& j) {
  PushEvent p;
  p.ref = Str(j, "ref");
  p.commit = Str(j, "after");
  if (auto r = j.find("repository"); r != j.end() && r->is_object())
    p.clone_url = Str(*r, "clone_url");
  if (auto u = j.find("pusher"); u != j.end() && u->is_object()) {
    p.pusher = Str(*u, "login");
    if (p.pusher.empty()) p.pusher = Str(*u, "username");
    if (p.pusher.empty()) p.pusher = Str(*u, "name");
  }
  p.deleted = (j.contains("deleted") && j["deleted"].is_boolean() && j["deleted"].get<bool>()) ||
              IsZeroSha(p.commit);
  FillBranch(p);
  return p;
}

PushEvent ParseGitlabPush(const json& j) {
  PushEvent p;
  p.ref = Str(j, "ref");
  p.commit = Str(j, "checkout_sha");
  if (p.commit.empty()) p.commit = Str(j, "after");
  if (auto r = j.find("project"); r != j.end() && r->is_object())
    p.clone_url = Str(*r, "git_http_url");
  p.pusher = Str(j, "user_username");
  p.deleted = IsZeroSha(Str(j, "after"));
  FillBranch(p);
  return p;
}

// Bitbucket sends a list of changes; the first branch change is the one we act on.
std::optional<PushEvent> ParseBitbucketPush(const json& j) {
  auto push = j.find("push");
  if (push == j.end() || !push->is_object() || !push->contains("changes")) return std::nullopt;
  for (const auto& change : (*push)["changes"]) {
    PushEvent p;
    const json& nw = change.contains("new") ? change["new"] : json();
    const json& old = change.contains("old") ? change["old"] : json();
    const json& ref = nw.is_object() ? nw : old;
    if (!ref.is_object()) continue;
    std::string type = Str(ref, "type");
    std::string name = Str(ref, "name");
    p.ref = (type == "tag" ? "refs/tags/" : "refs/heads/") + name;
    if (type == "branch") p.branch = name;
    p.deleted = !nw.is_object();
    if (nw.is_object() && nw.contains("target")) p.commit = Str(nw["target"], "hash");
    if (auto a = j.find("actor"); a != j.end() && a->is_object()) p.pusher = Str(*a, "nickname");
    return p;
  }
  return std::nullopt;
}

struct ProviderHeaders {
  const char* event;
  const char* delivery;
};

ProviderHeaders HeadersOf(std::string_view provider) {
  if (provider == "gitea") return {"x-gitea-event", "x-gitea-delivery"};
  if (provider == "forgejo") return {"x-forgejo-event", "x-forgejo-delivery"};
  if (provider == "github") return {"x-github-event", "x-github-delivery"};
  if (provider == "gitlab") return {"x-gitlab-event", "x-gitlab-event-uuid"};
  return {"x-event-key", "x-request-uuid"};  // bitbucket
}

}  // namespace

bool IsKnownProvider(std::string_view p) {
  return p == "gitea" || p == "forgejo" || p == "github" || p == "gitlab" || p == "bitbucket";
}

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  return crypto::HmacSha256Hex(key, message);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Status VerifySignature(std::string_view provider, const HeaderMap& headers, std::string_view body,
                       std::string_view secret) {
  std::string got;
  std::string prefix;
  if (provider == "gitea") {
    got = Get(headers, "x-gitea-signature");
  } else if (provider == "forgejo") {
    got = Get(headers, "x-forgejo-signature");
    if (got.empty()) got = Get(headers, "x-gitea-signature");
  } else if (provider == "github") {
    got = Get(headers, "x-hub-signature-256");
    prefix = "sha256=";
  } else if (provider == "bitbucket") {
    got = Get(headers, "x-hub-signature");
    prefix = "sha256=";
  } else if (provider == "gitlab") {
    std::string token = Get(headers, "x-gitlab-token");
    if (token.empty()) return {Code::kUnauthorized, "missing X-Gitlab-Token header"};
    if (!ConstantTimeEquals(token, secret))
      return {Code::kUnauthorized, "X-Gitlab-Token does not match"};
    return Status::Ok();
  } else {
    return NotFound("unknown webhook provider '" + std::string(provider) + "'");
  }
  if (got.empty()) return {Code::kUnauthorized, "missing signature header"};
  if (!prefix.empty()) {
    if (got.rfind(prefix, 0) != 0)
      return {Code::kUnauthorized, "signature must start with " + prefix};
    got = got.substr(prefix.size());
  }
  for (auto& c : got) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!ConstantTimeEquals(got, HmacSha256Hex(secret, body))) {
    return {Code::kUnauthorized, "signature does not match the request body"};
  }
  return Status::Ok();
}

Result<Delivery> ParseDelivery(std::string_view provider, const HeaderMap& headers,
                               std::string_view body) {
  if (!IsKnownProvider(provider))
    return NotFound("unknown webhook provider '" + std::string(provider) + "'");
  auto names = HeadersOf(provider);
  Delivery d;
  d.provider = std::string(provider);
  d.event = Get(headers, names.event);
  d.delivery_id = Get(headers, names.delivery);
  if (provider == "forgejo" && d.event.empty()) d.event = Get(headers, "x-gitea-event");
  if (provider == "forgejo" && d.delivery_id.empty())
    d.delivery_id = Get(headers, "x-gitea-delivery");
  if (provider == "gitlab" && d.delivery_id.empty())
    d.delivery_id = Get(headers, "idempotency-key");
  if (d.event.empty()) return Invalid(std::string("missing event header ") + names.event);
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) return Invalid("body is not valid JSON");
  if (!j.is_object()) return Invalid("body must be a JSON object");
  if (d.event == "ping") {
    d.ping = true;
  } else if (d.event == "push" && provider != "gitlab" && provider != "bitbucket") {
    d.push = ParseGithubLikePush(j);
  } else if (provider == "gitlab" && d.event == "Push Hook") {
    d.push = ParseGitlabPush(j);
  } else if (provider == "bitbucket" && d.event == "repo:push") {
    d.push = ParseBitbucketPush(j);
  }
  if (d.push && !d.push->deleted && d.push->commit.empty()) {
    return Invalid("push payload has no commit (after)");
  }
  return d;
}

}  // namespace slipway::webhook
