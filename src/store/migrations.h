#pragma once
// Numbered, forward-only schema migrations. A migration is never edited once released:
// append a new one. The store records the highest applied number in schema_migrations.
#include <vector>

namespace slipway {

struct Migration {
  int number;
  const char* sql;
};

const std::vector<Migration>& SqliteMigrations();

}  // namespace slipway
