#pragma once
// The SQLite store's tables for sandboxes (migration 9): environments, sandboxes, sandbox
// templates and snapshots. Free functions on a connection; REQUIRES: the caller holds the
// store's mutex. Errors as in store/store.h; besides, kInvalid when a value to store is not
// valid UTF-8 (the maps and services are stored as JSON), kUnavailable when a sealed column
// cannot be opened (another key, or none), kInternal when a stored column is damaged.
//
// Records are found by name (environments, sandboxes, templates) or id (snapshots). `box`
// may be null (no sealing); with one, an environment's secrets and files and a snapshot's
// body are sealed (each map as one sealed JSON object), and never written in the clear.
#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/secret_box.h"
#include "store/store.h"

namespace slipway::sqlite {

// REQUIRES (all Create and Update functions): created_ms and updated_ms are set (the store
// fills zeros with now).
Result<Environment> CreateEnvironment(sqlite3* db, const crypto::SecretBox* box, Environment e);
Result<Environment> GetEnvironment(sqlite3* db, const crypto::SecretBox* box,
                                   const std::string& name);
Result<std::vector<Environment>> ListEnvironments(sqlite3* db, const crypto::SecretBox* box);
Status UpdateEnvironment(sqlite3* db, const crypto::SecretBox* box, const Environment& e);
Status DeleteEnvironment(sqlite3* db, const std::string& name);

Result<Sandbox> CreateSandbox(sqlite3* db, Sandbox s);
Result<Sandbox> GetSandbox(sqlite3* db, const std::string& name);
Result<std::vector<Sandbox>> ListSandboxes(sqlite3* db);
Status UpdateSandbox(sqlite3* db, const Sandbox& s);
Status DeleteSandbox(sqlite3* db, const std::string& name);

Result<SandboxTemplate> CreateTemplate(sqlite3* db, SandboxTemplate t);
Result<SandboxTemplate> GetTemplate(sqlite3* db, const std::string& name);
Result<std::vector<SandboxTemplate>> ListTemplates(sqlite3* db);
Status UpdateTemplate(sqlite3* db, const SandboxTemplate& t);
Status DeleteTemplate(sqlite3* db, const std::string& name);

Result<SandboxSnapshot> CreateSnapshot(sqlite3* db, const crypto::SecretBox* box,
                                       SandboxSnapshot s);
Result<SandboxSnapshot> GetSnapshot(sqlite3* db, const crypto::SecretBox* box, std::int64_t id);
Result<std::vector<SandboxSnapshot>> ListSnapshots(sqlite3* db, const crypto::SecretBox* box,
                                                   const std::string& sandbox);
Status DeleteSnapshot(sqlite3* db, std::int64_t id);

// Seals every environment's secrets and files and every snapshot's body still stored in the
// clear (written while no key was configured), in one transaction.
Status SealPlaintextSandboxData(sqlite3* db, const crypto::SecretBox& box);

}  // namespace slipway::sqlite
