#pragma once
// Applying an Injection (control/context.h) to a deployment: which variables an app may be
// given, which files may be written into its release, and looking the injection up.
#include <map>
#include <string>

#include "control/context.h"

namespace slipway {

// At most this many files per injection.
constexpr std::size_t kMaxInjectedFiles = 64;
// The mode of an injected file: it may hold secrets.
constexpr int kInjectedFileMode = 0600;

// Whether `name` stays the server's: PORT, HOST and SLIPWAY_* are never injected.
bool ReservedEnvName(const std::string& name);

// Copies the injection's variables into `env`, over what is there, except reserved names.
void InjectEnv(const Injection& injection, std::map<std::string, std::string>& env);

// kInvalid, naming the offender (a path, never a content or a value), when a file path is
// empty, absolute or has a "..", "." or empty component, when there are more than
// kMaxInjectedFiles files, or when the network or an alias is not a valid name.
Status ValidateInjection(const Injection& injection);

// The app's injection through ctx.injection, validated; an empty one when ctx.injection is
// null. A failure keeps the source's code and says which environment or sandbox could not
// be had, followed by the source's own message (which must not carry a secret's value: no
// secret is known to redact it with).
Result<Injection> InjectionFor(const Context& ctx, const App& app);

// Writes the injection's files under `release_dir` on the node of `agent`, mode 0600.
Status WriteInjectedFiles(Agent& agent, const std::string& release_dir, const Injection& injection);

}  // namespace slipway
