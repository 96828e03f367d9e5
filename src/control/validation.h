#pragma once
// Checks on what users send when they create or operate an app. Pure functions: kInvalid
// with a message a user can act on, or Ok.
#include <chrono>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/status.h"

namespace slipway {

// Lower-case letters, digits and '-', starting with a letter, at most 63.
Status ValidateAppName(const std::string& name);
// RFC 1123 host names (at most 253 characters, labels of 1–63 letters, digits and inner
// '-'), optionally "*." + such a name of two labels or more. Lower-cases, sorts and
// de-duplicates them in place. At most 32 hosts.
Status ValidateHosts(std::vector<std::string>& hosts);
// "" or "/segment[/segment…]" of URL-safe characters, no "." or ".." segment, at most 256;
// a trailing '/' is removed in place.
Status ValidatePathPrefix(std::string& prefix);
// How long a paused app's held requests may wait: 1s..1h.
Status ValidatePauseMax(std::chrono::milliseconds max);
// A maintenance page's text: 1..1024 bytes of well-formed UTF-8 without control characters
// (C0, DEL, C1; so no newlines or tabs either). The gateway HTML-escapes it when shown.
Status ValidateMaintenanceMessage(const std::string& message);
// An app's upstream in the shared environment: "" (none) or http://host[:port][/] as
// gateway::TargetFromUrl takes it (no user info, path, query or fragment), at most 2048
// bytes. The URL is never quoted in the message.
Status ValidateUpstream(const std::string& url);
// The hosts an app answers on (its own, or <name>.localhost).
std::vector<std::string> EffectiveHosts(const App& app);
// The name of an existing app that already routes one of `app`'s hosts with the same path
// prefix, or "" when none does.
std::string RouteClash(const App& app, const std::vector<App>& existing);

}  // namespace slipway
