#include "crypto/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <limits>
#include <mutex>

namespace slipway::crypto {

bool Init() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

std::string RandomBytes(std::size_t bytes) {
  Init();
  std::string out(bytes, '\0');
  randombytes_buf(out.data(), out.size());
  return out;
}

std::string RandomToken(std::string_view prefix) {
  return std::string(prefix) + Base64UrlEncode(RandomBytes(32));
}

std::string Sha256Hex(std::string_view data) {
  Init();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // OpenSSL takes the key length as an int. A key longer than the block is hashed first
  // (RFC 2104), so hashing one too long for an int here gives the same result.
  std::string long_key;
  if (key.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    unsigned char k[crypto_hash_sha256_BYTES];
    Init();
    crypto_hash_sha256(k, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    long_key.assign(reinterpret_cast<const char*>(k), sizeof k);
    key = long_key;
  }
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &len))
    return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

Result<std::string> HashPassword(std::string_view password) {
  if (!Init()) return Internal("libsodium is not available");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return Internal("cannot hash the password (out of memory)");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view password, const std::string& hash) {
  if (!Init() || hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Base64UrlEncode(std::string_view bytes) {
  Init();
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), kVariant);
  out.resize(out.find('\0'));
  return out;
}

bool Base64Decode(std::string_view text, std::string& out) {
  Init();
  for (int variant : {sodium_base64_VARIANT_URLSAFE_NO_PADDING, sodium_base64_VARIANT_ORIGINAL,
                      sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_ORIGINAL_NO_PADDING}) {
    std::string buf(text.size(), '\0');
    std::size_t len = 0;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(buf.data()), buf.size(), text.data(),
                          text.size(), nullptr, &len, nullptr, variant) == 0) {
      buf.resize(len);
      out = std::move(buf);
      return true;
    }
  }
  return false;
}

}  // namespace slipway::crypto
