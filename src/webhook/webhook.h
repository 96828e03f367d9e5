#pragma once
// Webhook adapters: verify a delivery's signature over the raw body, then parse it into a
// typed event. One adapter per provider; the receiver in control/ picks by URL.
//
//   gitea     X-Gitea-Event,   X-Gitea-Delivery,   X-Gitea-Signature: <hex HMAC-SHA256>
//   forgejo   X-Forgejo-Event, X-Forgejo-Delivery, X-Forgejo-Signature (Gitea headers too)
//   github    X-GitHub-Event,  X-GitHub-Delivery,  X-Hub-Signature-256: sha256=<hex>
//   gitlab    X-Gitlab-Event,  X-Gitlab-Event-UUID, X-Gitlab-Token: <secret verbatim>
//   bitbucket X-Event-Key,     X-Request-UUID,     X-Hub-Signature: sha256=<hex>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace slipway::webhook {

// Headers with lower-cased names.
using HeaderMap = std::map<std::string, std::string>;

struct PushEvent {
  std::string ref;     // refs/heads/main, refs/tags/v1
  std::string branch;  // "main" for a branch push, "" for a tag
  std::string commit;  // the pushed head (after)
  std::string clone_url;
  std::string pusher;
  bool deleted = false;  // the ref was deleted (after = 000…0)
};

struct Delivery {
  std::string provider;
  std::string event;        // provider's event name: push, ping, pull_request, …
  std::string delivery_id;  // for replay detection; may be empty for providers without one
  bool ping = false;
  std::optional<PushEvent> push;  // set for push events
};

bool IsKnownProvider(std::string_view provider);

// Checks the delivery's signature against `secret` in constant time.
// kUnauthorized when the header is missing or the signature does not match.
Status VerifySignature(std::string_view provider, const HeaderMap& headers, std::string_view body,
                       std::string_view secret);

// Parses headers + body. kInvalid for malformed JSON or a missing event header.
Result<Delivery> ParseDelivery(std::string_view provider, const HeaderMap& headers,
                               std::string_view body);

// Lower-case hex HMAC-SHA256(key, message).
std::string HmacSha256Hex(std::string_view key, std::string_view message);
// Compares without an early exit, so timing does not reveal the matching prefix.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace slipway::webhook
