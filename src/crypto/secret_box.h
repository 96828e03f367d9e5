#pragma once
// Secrets at rest: libsodium secretbox (XSalsa20-Poly1305) under one 32-byte key. A sealed
// value is "sb1:" + base64(nonce ‖ ciphertext), so it is text that fits any column and is
// told apart from a value written before sealing existed. Thread-safe after construction.
#include <string>

#include "core/status.h"

namespace slipway::crypto {

class SecretBox {
 public:
  // Reads the key from `path` (32 raw bytes, or base64 of them), creating it with mode 0600
  // when it does not exist. kUnavailable when it cannot be read or written; kInvalid when
  // the file holds something else, or is readable by others.
  static Result<SecretBox> LoadOrCreate(const std::string& path);
  // A key given by the operator: base64 of 32 bytes. kInvalid otherwise.
  static Result<SecretBox> FromBase64(const std::string& key);

  std::string Seal(const std::string& plaintext) const;
  // The plaintext of a Seal() result; a value without the "sb1:" prefix is returned as it is
  // (written before sealing). kInvalid when it was sealed under another key or is damaged.
  Result<std::string> Open(const std::string& sealed) const;
  static bool IsSealed(const std::string& value);

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace slipway::crypto
