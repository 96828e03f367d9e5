#pragma once
// The request bodies of the sandbox and template routes, read strictly: every field has one
// JSON type, a wrong type or an unknown field is kInvalid naming the field, and sizes are
// bounded before anything is stored. Pure functions (no store, no service), for tests.
#include <nlohmann/json.hpp>
#include <string>

#include "control/sandboxes.h"
#include "core/status.h"

namespace slipway::api {

// The most services one sandbox or template may name.
constexpr std::size_t kMaxSandboxServices = 32;
// Memory limits: 4 MiB .. 1 TiB.
constexpr long long kMinMemoryBytes = 4LL << 20;
constexpr long long kMaxMemoryBytes = 1LL << 40;
// CPU limits: 0.01 .. 64.
constexpr double kMinCpus = 0.01;
constexpr double kMaxCpus = 64;

// "268435456", "256MiB", "256M", "1GiB", "1G", "512KiB", "1TiB": a byte count with an
// optional binary unit (K = KiB, M = MiB, G = GiB, T = TiB; B = bytes). kInvalid when not a
// size or out of [kMinMemoryBytes, kMaxMemoryBytes].
Result<long long> ParseMemorySize(const std::string& text);

// 1..32 of [a-z0-9-] starting with a letter (sandbox and template names).
Status CheckSandboxName(const std::string& name, const char* what);

// POST /api/v1/sandboxes: {name, template?, environment?, entry?, services?:[{name,
// branch? | upstream: true, memory?, cpus?}], memory?, cpus?, expire_after?}. A sandbox
// needs services or a template. kInvalid with the field's name otherwise.
Result<SandboxSpec> ParseSandboxSpec(const nlohmann::json& body);

// POST/PUT /api/v1/templates: {services:[…], environment?, entry?, memory?, cpus?} (as for
// a sandbox, without name, template and expire_after), rendered in the form
// Sandboxes::SaveTemplate takes: {services:[{name, branch, memory_bytes, cpus}],
// environment, entry, memory_bytes, cpus} (branch "" = upstream).
Result<nlohmann::json> ParseTemplateBody(const nlohmann::json& body);

// A stored template as the API shows it: name, services ({name, branch | upstream: true,
// memory_bytes?, cpus?}), environment, entry, limits, who made it and when.
nlohmann::json TemplateView(const SandboxTemplate& t);

// A snapshot without its body (which may hold an environment's secrets).
nlohmann::json SnapshotView(const SandboxSnapshot& s);

}  // namespace slipway::api
