// utf8.h: strict UTF-8 validation (header-only; bottom of the dependency
// graph). Overlong forms, surrogates and code points above U+10FFFF are
// invalid.
#ifndef DIFFRANK_COMMON_UTF8_H_
#define DIFFRANK_COMMON_UTF8_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace diffrank {

// Utf8Prefix returns the length of the longest prefix of valid UTF-8 `s`
// that is at most `max_bytes` long and ends on a character boundary.
inline size_t Utf8Prefix(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s.size();
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

// Utf8ErrorOffset returns the byte offset of the first invalid sequence in
// `s`, or absl::string_view::npos when `s` is valid UTF-8.
inline size_t Utf8ErrorOffset(absl::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned cp;
    if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static constexpr unsigned kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return absl::string_view::npos;
}

}  // namespace diffrank

#endif  // DIFFRANK_COMMON_UTF8_H_
