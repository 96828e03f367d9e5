#pragma once
// Who asked for a change, for the audit trail and for the git operations done on their
// behalf.
#include <optional>
#include <string>

namespace slipway {

// Credentials of a git-credential login, held in memory only.
struct GitCredential {
  std::string username;
  std::string password;
};

struct Actor {
  std::string name;    // user or token name, "system", "supervisor", "<provider>:<pusher>"
  std::string source;  // client address; "" for the server's own actions
  std::optional<GitCredential> git;  // used to fetch when the app's repo has no credentials
};

inline Actor SystemActor(const std::string& name) {
  return Actor{name, "", std::nullopt};
}

}  // namespace slipway
