#include "crypto/secret_box.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "crypto/crypto.h"

namespace slipway::crypto {
namespace {

constexpr const char* kPrefix = "sb1:";

Result<std::string> ReadKeyFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return NotFound(path);
  if ((st.st_mode & 077) != 0)
    return Invalid("secret key " + path + " is readable by others; chmod 600 it");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) return Unavailable("cannot read secret key " + path);
  std::string raw = ss.str();
  if (raw.size() == crypto_secretbox_KEYBYTES) return raw;
  while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r' || raw.back() == ' '))
    raw.pop_back();
  std::string key;
  if (Base64Decode(raw, key) && key.size() == crypto_secretbox_KEYBYTES) return key;
  return Invalid("secret key " + path + " is not 32 bytes (raw or base64)");
}

Status WriteKeyFile(const std::string& path, const std::string& key) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("cannot create secret key " + path + ": " + strerror(errno));
  std::string text = Base64UrlEncode(key) + "\n";
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = fsync(fd) == 0 && ok;
  close(fd);
  if (!ok) return Unavailable("cannot write secret key " + path);
  return Status::Ok();
}

}  // namespace

Result<SecretBox> SecretBox::LoadOrCreate(const std::string& path) {
  if (!Init()) return Unavailable("libsodium is not available");
  auto key = ReadKeyFile(path);
  if (key.ok()) return SecretBox(*key);
  if (key.status().code() != Code::kNotFound) return key.status();
  std::string fresh = RandomBytes(crypto_secretbox_KEYBYTES);
  if (auto s = WriteKeyFile(path, fresh); !s.ok()) return s;
  return SecretBox(fresh);
}

Result<SecretBox> SecretBox::FromBase64(const std::string& text) {
  if (!Init()) return Unavailable("libsodium is not available");
  std::string key;
  if (!Base64Decode(text, key) || key.size() != crypto_secretbox_KEYBYTES)
    return Invalid("the secret key must be base64 of 32 bytes");
  return SecretBox(key);
}

std::string SecretBox::Seal(const std::string& plaintext) const {
  std::string nonce = RandomBytes(crypto_secretbox_NONCEBYTES);
  std::string box(crypto_secretbox_MACBYTES + plaintext.size(), '\0');
  crypto_secretbox_easy(reinterpret_cast<unsigned char*>(box.data()),
                        reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                        reinterpret_cast<const unsigned char*>(nonce.data()),
                        reinterpret_cast<const unsigned char*>(key_.data()));
  return kPrefix + Base64UrlEncode(nonce + box);
}

Result<std::string> SecretBox::Open(const std::string& sealed) const {
  if (!IsSealed(sealed)) return sealed;
  std::string raw;
  if (!Base64Decode(std::string_view(sealed).substr(4), raw) ||
      raw.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return Invalid("a sealed secret is damaged");
  }
  const auto* nonce = reinterpret_cast<const unsigned char*>(raw.data());
  const auto* box = nonce + crypto_secretbox_NONCEBYTES;
  std::size_t box_len = raw.size() - crypto_secretbox_NONCEBYTES;
  std::string plain(box_len - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), box, box_len,
                                 nonce, reinterpret_cast<const unsigned char*>(key_.data())) != 0) {
    return Invalid("a sealed secret cannot be opened with this key (wrong secret key?)");
  }
  return plain;
}

bool SecretBox::IsSealed(const std::string& value) {
  return value.rfind(kPrefix, 0) == 0;
}

}  // namespace slipway::crypto
