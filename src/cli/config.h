#pragma once
// Where the CLI finds its server and token: --server/--token, then SLIPWAY_SERVER/
// SLIPWAY_TOKEN, then the file `slipway login` writes (~/.config/slipway/config, mode 0600,
// JSON {"server": …, "token": …}), then http://127.0.0.1:3452 and no token.
#include <string>

#include "core/status.h"

namespace slipway::cli {

struct Credentials {
  std::string server;
  std::string token;
};

std::string ConfigPath();
// Fills what `flags` leaves empty from the environment, then the config file.
Credentials ResolveCredentials(const Credentials& flags);
// Writes the config file (0600, directory 0700), replacing it atomically.
Status SaveConfig(const Credentials& c);
Status RemoveConfigToken();

}  // namespace slipway::cli
