#pragma once
// Sealing of whole columns at rest, shared by the SQLite store's files. With a box, a column
// holds SecretBox::Seal of its text; without one (tests, or no key configured) the text
// itself. Column text is JSON, so it never looks sealed unless it is.
#include <string>

#include "core/status.h"
#include "crypto/secret_box.h"

namespace slipway::sqlite {

// `box` may be null: no sealing.
inline std::string SealColumn(const crypto::SecretBox* box, const std::string& text) {
  return box ? box->Seal(text) : text;
}

// The text of a column written by SealColumn (or in the clear, before sealing). kUnavailable
// when it was sealed under another key, or is sealed and no key is configured; `what` names
// the record in the message.
inline Result<std::string> OpenColumn(const crypto::SecretBox* box, const std::string& stored,
                                      const std::string& what) {
  if (!box) {
    if (crypto::SecretBox::IsSealed(stored))
      return Unavailable(what + " is sealed and no key is configured");
    return stored;
  }
  auto text = box->Open(stored);
  if (!text.ok()) return Unavailable(what + ": " + text.status().message());
  return text;
}

}  // namespace slipway::sqlite
