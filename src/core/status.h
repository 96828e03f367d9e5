#pragma once
// Errors as values across module boundaries: a small code enum plus a message, and
// Result<T> = a value or a Status. Domain errors are compared by code, never by string.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace slipway {

enum class Code {
  kOk,
  kInvalid,       // caller sent something malformed (HTTP 400, CLI exit 2)
  kUnauthorized,  // bad or missing credentials or signature (401)
  kForbidden,     // authenticated but not allowed (403)
  kNotFound,      // (404)
  kConflict,      // state forbids it, or duplicate (409)
  kTooLarge,      // body or input over its cap (413)
  kRateLimited,   // too many attempts; try again later (429)
  kUnhealthy,     // an instance did not pass its health checks
  kUnavailable,   // a dependency (process, daemon, network) could not be reached (503)
  kTimeout,       // a deadline passed
  kCancelled,
  kInternal,  // a broken invariant or an unexpected environment failure (500)
};

const char* ToString(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "not_found: app 'x' does not exist"
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status Invalid(std::string m) {
  return {Code::kInvalid, std::move(m)};
}
inline Status NotFound(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
inline Status Conflict(std::string m) {
  return {Code::kConflict, std::move(m)};
}
inline Status Unavailable(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}
inline Status Internal(std::string m) {
  return {Code::kInternal, std::move(m)};
}

// A value or the Status that explains why there is none. REQUIRES: a Status passed in is
// not ok (an ok Status without a value is a programming error).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace slipway
