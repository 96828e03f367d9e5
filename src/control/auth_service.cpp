#include "control/auth_service.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "crypto/crypto.h"

namespace slipway {
namespace {

constexpr const char* kTokenPrefix = "slw_";
constexpr const char* kSessionPrefix = "sls_";
constexpr auto kTouchEvery = std::chrono::minutes(1);

bool ValidName(const std::string& name) {
  static const std::regex kName("^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$");
  return std::regex_match(name, kName);
}

Status WriteTokenFile(const std::string& path, const std::string& token) {
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("cannot create " + path);
  std::string text = token + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok ? Status::Ok() : Unavailable("cannot write " + path);
}

}  // namespace

AuthService::AuthService(Store& store, Agent& agent, Clock& clock, AuthOptions options)
    : store_(store), agent_(agent), clock_(clock), options_(std::move(options)) {}

Result<std::string> AuthService::Bootstrap(const std::string& env_token,
                                           const std::string& token_file) {
  if (!env_token.empty()) {
    if (env_token.size() < 16 || env_token.size() > 256)
      return Invalid("SLIPWAY_BOOTSTRAP_TOKEN must be 16 to 256 characters");
    auto found = store_.FindTokenByHash(crypto::Sha256Hex(env_token));
    if (found.ok()) {
      if (found->revoked_ms)
        return std::string("the bootstrap token was revoked; it stays revoked");
      return std::string();
    }
    ApiToken t{0, "bootstrap", "admin", "api", crypto::Sha256Hex(env_token), 0, 0, 0, 0, "server"};
    for (int n = 2; store_.CreateToken(t).status().code() == Code::kConflict; ++n) {
      t.name = fmt::format("bootstrap-{}", n);
      if (n > 1000) return Internal("cannot name the bootstrap token");
    }
    return std::string("admin token from SLIPWAY_BOOTSTRAP_TOKEN is ready");
  }
  auto tokens = store_.ListTokens();
  if (!tokens.ok()) return tokens.status();
  for (const auto& t : *tokens)
    if (t.kind == "api") return std::string();
  auto created = CreateToken("admin", "admin", std::chrono::milliseconds(0), "server");
  if (!created.ok()) return created.status();
  if (auto s = WriteTokenFile(token_file, created->token); !s.ok()) return s;
  return "first start: an admin token was written to " + token_file +
         " (export SLIPWAY_TOKEN=$(cat " + token_file + "))";
}

Result<NewToken> AuthService::CreateToken(const std::string& name, const std::string& role,
                                          std::chrono::milliseconds ttl,
                                          const std::string& created_by, const std::string& kind) {
  if (!ValidName(name))
    return Invalid("token name must be letters, digits and . _ @ + - (max 128)");
  if (name.find_first_not_of("0123456789") == std::string::npos)
    return Invalid("a token name must not be a number (token ids are numbers)");
  if (!RoleFromString(role))
    return Invalid("unknown role '" + role + "' (expected admin, backend, qa or viewer)");
  if (ttl.count() < 0) return Invalid("expiry must be in the future");
  NewToken out;
  out.token = crypto::RandomToken(kTokenPrefix);
  out.record = ApiToken{0,
                        name,
                        role,
                        kind,
                        crypto::Sha256Hex(out.token),
                        clock_.WallMillis(),
                        ttl.count() ? clock_.WallMillis() + ttl.count() : 0,
                        0,
                        0,
                        created_by};
  auto stored = store_.CreateToken(out.record);
  if (!stored.ok()) return stored.status();
  out.record = *stored;
  return out;
}

Result<User> AuthService::CreateUser(const std::string& name, const std::string& role,
                                     const std::string& password, const std::string& source) {
  if (!ValidName(name)) return Invalid("user name must be letters, digits and . _ @ + - (max 128)");
  if (!RoleFromString(role))
    return Invalid("unknown role '" + role + "' (expected admin, backend, qa or viewer)");
  if (source != "local" && source != "git") return Invalid("source must be local or git");
  User u{0, name, role, source, "", 0};
  if (source == "local") {
    if (password.size() < 10 || password.size() > 1024)
      return Invalid("password must be 10 to 1024 characters");
    auto hash = crypto::HashPassword(password);
    if (!hash.ok()) return hash.status();
    u.password_hash = *hash;
  }
  return store_.CreateUser(u);
}

Result<Principal> AuthService::Authenticate(const std::string& bearer, const std::string& cookie) {
  if (!bearer.empty()) {
    if (bearer.rfind(kSessionPrefix, 0) == 0) return FromSession(bearer, false);
    return FromToken(bearer);
  }
  if (!cookie.empty()) return FromSession(cookie, true);
  return Status(Code::kUnauthorized,
                "authentication required: send Authorization: Bearer <token> (slipway login)");
}

// A token of `kind` that is known, not revoked and not expired; its last use is recorded (to
// the minute). kUnauthorized with the reason otherwise; `wrong_kind` names a token of
// another kind.
Result<ApiToken> AuthService::ValidToken(const std::string& token, const std::string& kind,
                                         const char* wrong_kind) {
  auto t = store_.FindTokenByHash(crypto::Sha256Hex(token));
  if (!t.ok()) {
    if (t.status().code() == Code::kNotFound) return Status(Code::kUnauthorized, "invalid token");
    return t.status();
  }
  long long now = clock_.WallMillis();
  if (t->revoked_ms) return Status(Code::kUnauthorized, "token '" + t->name + "' was revoked");
  if (t->expires_ms && t->expires_ms <= now)
    return Status(Code::kUnauthorized, "token '" + t->name + "' has expired");
  if (t->kind != kind) return Status(Code::kUnauthorized, wrong_kind);
  if (now - t->last_used_ms > std::chrono::milliseconds(kTouchEvery).count())
    (void)store_.TouchToken(t->id, now);
  return t;
}

Result<Principal> AuthService::FromToken(const std::string& token) {
  auto t = ValidToken(token, "api", "not an API token");
  if (!t.ok()) return t.status();
  auto role = RoleFromString(t->role);
  if (!role) return Status(Code::kUnauthorized, "token '" + t->name + "' has an unknown role");
  Principal p;
  p.name = t->name;
  p.role = *role;
  p.kind = "token";
  p.token_id = t->id;
  return p;
}

Result<ApiToken> AuthService::AuthenticateNode(const std::string& bearer) {
  if (bearer.empty())
    return Status(Code::kUnauthorized,
                  "an enrollment token is required (slipway nodes token create)");
  return ValidToken(bearer, "node", "not an enrollment token");
}

Result<Principal> AuthService::FromSession(const std::string& token, bool via_cookie) {
  std::string hash = crypto::Sha256Hex(token);
  auto s = store_.GetSession(hash);
  if (!s.ok()) {
    if (s.status().code() == Code::kNotFound)
      return Status(Code::kUnauthorized, "session expired or logged out: log in again");
    return s.status();
  }
  auto role = RoleFromString(s->role);
  if (s->expires_ms <= clock_.WallMillis() || !role) {
    (void)store_.DeleteSession(hash);
    std::lock_guard lock(mu_);
    git_creds_.erase(hash);
    return Status(Code::kUnauthorized, "session expired: log in again");
  }
  Principal p;
  p.name = s->user;
  p.role = *role;
  p.kind = "session";
  p.via_cookie = via_cookie;
  p.session_token = token;
  return p;
}

std::string AuthService::CsrfFor(const std::string& session_token) {
  return crypto::Sha256Hex("slipway-csrf:" + session_token).substr(0, 40);
}

Status AuthService::CheckRate(const std::string& user, const std::string& source) {
  std::lock_guard lock(mu_);
  auto now = clock_.Now();
  if (attempts_.size() > 10000) attempts_.clear();  // bounded memory under a flood
  auto& a = attempts_[source];
  if (now - a.window_start > std::chrono::minutes(1)) a = {now, 0};
  if (++a.count > options_.max_attempts_per_minute)
    return Status(Code::kRateLimited, "too many login attempts from " + source + "; wait a minute");
  auto it = failures_.find(user);
  if (it != failures_.end() && now < it->second.locked_until) {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(it->second.locked_until - now);
    return Status(Code::kRateLimited,
                  fmt::format("user '{}' is locked for {} s after {} failed logins", user,
                              left.count() + 1, options_.max_failures));
  }
  return Status::Ok();
}

void AuthService::RecordFailure(const std::string& user) {
  std::lock_guard lock(mu_);
  if (failures_.size() > 10000) failures_.clear();
  auto& f = failures_[user];
  if (++f.count >= options_.max_failures) {
    f.locked_until = clock_.Now() + options_.lockout;
    f.count = 0;
  }
}

Result<Role> AuthService::VerifyPassword(const std::string& name, const std::string& password,
                                         bool& git_login) {
  auto user = store_.GetUser(name);
  if (!user.ok() && user.status().code() != Code::kNotFound) return user.status();
  if (user.ok() && user->source == "local") {
    if (!crypto::VerifyPassword(password, user->password_hash))
      return Status(Code::kUnauthorized, "invalid username or password");
    return RoleFromString(user->role).value_or(Role::kViewer);
  }
  if (options_.login_repo.empty())
    return Status(Code::kUnauthorized, "invalid username or password");
  git_login = true;
  if (auto s = CheckLoginRepoNeedsCredentials(); !s.ok()) return s;
  if (auto s = agent_.CheckCredentials(options_.login_repo, name, password); !s.ok()) {
    if (s.code() == Code::kUnauthorized)
      return Status(Code::kUnauthorized, "invalid username or password");
    return Unavailable("the git server cannot check credentials right now: " + s.message());
  }
  if (user.ok()) return RoleFromString(user->role).value_or(Role::kViewer);
  (void)store_.CreateUser({0, name, ToString(options_.login_role), "git", "", 0});
  return options_.login_role;
}

// A repository anyone may read would accept every username and password (git asks for
// credentials only when the server demands them), so made-up ones must be refused first.
Status AuthService::CheckLoginRepoNeedsCredentials() {
  {
    std::lock_guard lock(mu_);
    if (repo_checks_passwords_) return Status::Ok();
  }
  auto probe = agent_.CheckCredentials(
      options_.login_repo, "slipway-probe-" + crypto::RandomToken(""), crypto::RandomToken(""));
  if (probe.ok()) {
    spdlog::error("--login-repo is readable without credentials: git-credential login is off");
    return Unavailable(
        "the login repository is readable without credentials, so it cannot check passwords; "
        "git-credential login is disabled until --login-repo names a private repository");
  }
  if (probe.code() != Code::kUnauthorized) return probe;
  std::lock_guard lock(mu_);
  repo_checks_passwords_ = true;
  return Status::Ok();
}

Result<LoginResult> AuthService::Login(const std::string& user, const std::string& password,
                                       const std::string& source) {
  if (!ValidName(user) || password.empty() || password.size() > 1024)
    return Status(Code::kUnauthorized, "invalid username or password");
  if (auto s = CheckRate(user, source); !s.ok()) {
    Audit(user, "auth.login", source, "denied: " + s.message());
    return s;
  }
  bool git_login = false;
  auto role = VerifyPassword(user, password, git_login);
  if (!role.ok()) {
    if (role.status().code() == Code::kUnauthorized) RecordFailure(user);
    Audit(user, "auth.login", source, std::string("failed: ") + ToString(role.status().code()));
    return role.status();
  }
  {
    std::lock_guard lock(mu_);
    failures_.erase(user);
  }
  auto session = OpenSession(user, *role, source);
  if (session.ok() && git_login) {
    std::lock_guard lock(mu_);
    git_creds_[crypto::Sha256Hex(session->session_token)] = GitCredential{user, password};
  }
  Audit(user, "auth.login", source, session.ok() ? "ok" : "failed: unavailable");
  return session;
}

Result<LoginResult> AuthService::OpenSession(const std::string& user, Role role,
                                             const std::string& source) {
  long long now = clock_.WallMillis();
  (void)store_.DeleteExpiredSessions(now);
  LoginResult out;
  out.session_token = crypto::RandomToken(kSessionPrefix);
  out.csrf_token = CsrfFor(out.session_token);
  out.user = user;
  out.role = role;
  out.expires_ms = now + options_.session_ttl.count();
  Session s{
      crypto::Sha256Hex(out.session_token), user, ToString(role), source, now, out.expires_ms};
  if (auto st = store_.CreateSession(s); !st.ok()) return st;
  return out;
}

Status AuthService::Logout(const Principal& p) {
  if (p.kind != "session")
    return Invalid("logout ends a session; an API token is revoked with: slipway token revoke");
  std::string hash = crypto::Sha256Hex(p.session_token);
  {
    std::lock_guard lock(mu_);
    git_creds_.erase(hash);
  }
  return store_.DeleteSession(hash);
}

std::optional<GitCredential> AuthService::GitCredentialsFor(const Principal& p) {
  if (p.kind != "session") return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = git_creds_.find(crypto::Sha256Hex(p.session_token));
  if (it == git_creds_.end()) return std::nullopt;
  return it->second;
}

void AuthService::Audit(const std::string& actor, const std::string& action,
                        const std::string& source, const std::string& outcome) {
  AuditEvent e;
  e.actor = actor;
  e.action = action;
  e.target = "user/" + actor;
  e.source = source;
  e.outcome = outcome;
  (void)store_.AppendAudit(e);
}

}  // namespace slipway
