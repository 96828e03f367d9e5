#pragma once
// Who is calling: API tokens, local users with passwords, git-credential logins and the
// sessions they open. Thread-safe. Secrets handled here (tokens, passwords, session ids,
// git credentials) never reach the store, a log or an error in the clear: tokens and session
// ids are stored as SHA-256, passwords as argon2id, git credentials stay in memory only.
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "agent/agent.h"
#include "control/actor.h"
#include "core/clock.h"
#include "core/roles.h"
#include "store/store.h"

namespace slipway {

// The authenticated caller of one request.
struct Principal {
  std::string name;  // token name or user name
  Role role = Role::kViewer;
  std::string kind;  // token | session
  bool via_cookie = false;
  std::string session_token;  // raw session id, kind session only (never stored)
  std::int64_t token_id = 0;
};

struct AuthOptions {
  std::chrono::milliseconds session_ttl{std::chrono::hours(12)};
  std::string login_repo;           // git-credential login against this repository; "" = off
  Role login_role = Role::kViewer;  // role of a git user with no user record
  int max_failures = 10;            // consecutive failed logins before a lockout
  std::chrono::milliseconds lockout{std::chrono::minutes(5)};
  int max_attempts_per_minute = 30;  // per source address
};

struct NewToken {
  ApiToken record;
  std::string token;  // shown once
};

struct LoginResult {
  std::string session_token;  // shown once; cookie or bearer
  std::string csrf_token;     // to send in X-CSRF-Token with cookie-authenticated writes
  std::string user;
  Role role = Role::kViewer;
  long long expires_ms = 0;
};

class AuthService {
 public:
  // Every reference must outlive the service.
  AuthService(Store& store, Agent& agent, Clock& clock, AuthOptions options);

  // At server start: with `env_token` (SLIPWAY_BOOTSTRAP_TOKEN) that value is, or becomes,
  // an admin token; otherwise, when no token exists at all, a fresh admin token is written
  // to `token_file` (mode 0600). Returns a line for the operator ("" when nothing was done).
  Result<std::string> Bootstrap(const std::string& env_token, const std::string& token_file);

  // A bearer value (API token or session id) or a session cookie → the principal.
  // kUnauthorized with the reason (unknown, expired, revoked) otherwise.
  Result<Principal> Authenticate(const std::string& bearer, const std::string& cookie);
  // An agent's enrollment token (kind "node") → its record. kUnauthorized with the reason
  // (unknown, expired, revoked, not an enrollment token) otherwise.
  Result<ApiToken> AuthenticateNode(const std::string& bearer);
  // The CSRF token that belongs to a session id.
  static std::string CsrfFor(const std::string& session_token);

  // kInvalid for a bad name or role; kConflict when the name is taken. `ttl` 0 = never.
  Result<NewToken> CreateToken(const std::string& name, const std::string& role,
                               std::chrono::milliseconds ttl, const std::string& created_by,
                               const std::string& kind = "api");
  // kInvalid for a bad name/role or a weak password; kConflict when the name is taken.
  // `password` is ignored for source "git".
  Result<User> CreateUser(const std::string& name, const std::string& role,
                          const std::string& password, const std::string& source);

  // Local password first, then (when configured) the git server. kUnauthorized for wrong
  // credentials, kRateLimited while the user is locked out or the address tries too often.
  Result<LoginResult> Login(const std::string& user, const std::string& password,
                            const std::string& source);
  Status Logout(const Principal& principal);

  // The git credentials of a git-credential session, if any.
  std::optional<GitCredential> GitCredentialsFor(const Principal& principal);

 private:
  struct Failures {
    int count = 0;
    Clock::time_point locked_until{};
  };
  struct Attempts {
    Clock::time_point window_start{};
    int count = 0;
  };
  Status CheckRate(const std::string& user, const std::string& source);
  void RecordFailure(const std::string& user);
  Result<Role> VerifyPassword(const std::string& user, const std::string& password,
                              bool& git_login);
  Status CheckLoginRepoNeedsCredentials();
  Result<LoginResult> OpenSession(const std::string& user, Role role, const std::string& source);
  Result<ApiToken> ValidToken(const std::string& token, const std::string& kind,
                              const char* wrong_kind);
  Result<Principal> FromToken(const std::string& token);
  Result<Principal> FromSession(const std::string& token, bool via_cookie);
  void Audit(const std::string& actor, const std::string& action, const std::string& source,
             const std::string& outcome);

  Store& store_;
  Agent& agent_;
  Clock& clock_;
  AuthOptions options_;
  std::mutex mu_;                                   // guards the maps below
  std::map<std::string, Failures> failures_;        // by user name
  std::map<std::string, Attempts> attempts_;        // by source address
  std::map<std::string, GitCredential> git_creds_;  // by session hash
  bool repo_checks_passwords_ = false;  // the login repository refused made-up credentials
};

}  // namespace slipway
