#pragma once
#include <memory>
#include <string>

#include "core/clock.h"
#include "crypto/secret_box.h"
#include "store/store.h"

namespace slipway {

// Opens (creating if needed) the SQLite database at `path` in WAL mode and runs the
// numbered migrations forward. kUnavailable when the file cannot be opened or migrated.
// With `box`, app webhook secrets and repository URLs (which may carry credentials),
// environments' secrets and files, and sandbox snapshots are sealed on disk, and any still
// in the clear are sealed at open. `clock` and `box` must
// outlive the store.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, Clock& clock,
                                               const crypto::SecretBox* box = nullptr);

}  // namespace slipway
