#pragma once
#include <memory>
#include <string>

#include "core/clock.h"
#include "store/store.h"

namespace slipway {

// Opens (creating if needed) the SQLite database at `path` in WAL mode and runs the
// numbered migrations forward. kUnavailable when the file cannot be opened or migrated.
// `clock` must outlive the store.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, Clock& clock);

}  // namespace slipway
