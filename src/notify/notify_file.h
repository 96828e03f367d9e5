#pragma once
// The server's notification targets (`slipway server --notify FILE`), sent for every app
// (or the apps a target lists) besides the targets of each app's slipway.yaml:
//
//   targets:
//     - name: ops                     # optional: [A-Za-z0-9._-], at most 64, unique
//       kind: slack                   # webhook | slack | teams
//       url: https://hooks.slack.com/services/T000/B000/XXXX
//       events: [failed, rolled_back] # default: all six
//       apps: [shop, api]             # default: every app
//     - kind: webhook
//       url: https://ci.example.com/slipway
//       secret: "s3cret"              # webhook only: X-Slipway-Signature
//       ca_file: /etc/slipway/ci-ca.pem   # https only: verify the receiver with this CA
//
// Each target passes ValidateTarget (notify/notifier.h). The file is read defensively: at
// most kFileBytes and notify_limits::kTargets targets; unknown keys are refused; every error
// is one line "file:line:column: message" that never repeats a URL or a secret.
#include <cstddef>
#include <string>
#include <vector>

#include "core/status.h"
#include "notify/notifier.h"

namespace slipway {

namespace notify_limits {
inline constexpr std::size_t kFileBytes = 64 * 1024;
}  // namespace notify_limits

// Parses the file's text; `file` names it in messages. An empty document has no targets.
// Every error is kInvalid.
Result<std::vector<NotifyTarget>> ParseNotifyFile(const std::string& text, const std::string& file);

// Reads `path` (a regular file, checked for size before it is read) and parses it. kNotFound
// when it cannot be read; kInvalid otherwise.
Result<std::vector<NotifyTarget>> LoadNotifyFile(const std::string& path);

}  // namespace slipway
