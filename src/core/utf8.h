#pragma once
// UTF-8 well-formedness (RFC 3629): overlong forms, surrogates and code points past
// U+10FFFF are malformed. Pure.
#include <cstddef>
#include <string_view>

namespace slipway {

// Decodes the sequence at text[i] into `cp`; returns its length in bytes, or 0 when it is
// malformed or truncated. REQUIRES: i < text.size().
std::size_t DecodeUtf8(std::string_view text, std::size_t i, char32_t& cp);

// True when every byte of `text` belongs to a well-formed sequence.
bool IsUtf8(std::string_view text);

}  // namespace slipway
