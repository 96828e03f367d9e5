#pragma once
// Secrets primitives on libsodium: random tokens, token and password hashing, and constant
// time comparison. Thread-safe; Init() is called by every function that needs it.
#include <string>
#include <string_view>

#include "core/status.h"

namespace slipway::crypto {

// Initialises libsodium once. Returns false when the library cannot start (no entropy).
bool Init();

// A fresh random token: `prefix` + 43 url-safe base64 characters (256 bits).
std::string RandomToken(std::string_view prefix);
// `bytes` random bytes.
std::string RandomBytes(std::size_t bytes);

// Lower-case hex SHA-256. Used for tokens, which are random and long: a fast hash is enough
// and lets a lookup go by hash.
std::string Sha256Hex(std::string_view data);

// Lower-case hex HMAC-SHA256(key, data) (RFC 2104; OpenSSL). Any key length; "" on the
// impossible failure of the library, which never compares equal to a real signature.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// Argon2id (libsodium's interactive limits) in its self-describing string form.
// kInternal when memory cannot be had.
Result<std::string> HashPassword(std::string_view password);
// Whether `password` matches a HashPassword() result. False for a malformed hash.
bool VerifyPassword(std::string_view password, const std::string& hash);

bool ConstantTimeEquals(std::string_view a, std::string_view b);

std::string Base64UrlEncode(std::string_view bytes);
// Empty optional-like failure: returns false when `text` is not url-safe or standard base64.
bool Base64Decode(std::string_view text, std::string& out);

}  // namespace slipway::crypto
