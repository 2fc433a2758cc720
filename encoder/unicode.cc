// unicode.cc: UTF-8 codec and table lookups for the tokenizer.
#include "encoder/unicode.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/utf8.h"

namespace diffrank::encoder::unicode {
namespace {

struct CodepointRange {
  char32_t first;
  char32_t last;
};
struct CombiningClassRun {
  char32_t first;
  char32_t last;
  uint8_t ccc;
};
struct MappingEntry {
  char32_t cp;
  uint32_t offset;
  uint32_t length;
};

#include "encoder/unicode_tables.inc"

template <size_t N>
bool InRanges(const CodepointRange (&table)[N], char32_t cp) {
  auto it = std::upper_bound(
      std::begin(table), std::end(table), cp,
      [](char32_t c, const CodepointRange& r) { return c < r.first; });
  if (it == std::begin(table)) return false;
  --it;
  return cp <= it->last;
}

template <size_t N>
const MappingEntry* FindMapping(const MappingEntry (&table)[N], char32_t cp) {
  auto it = std::lower_bound(
      std::begin(table), std::end(table), cp,
      [](const MappingEntry& e, char32_t c) { return e.cp < c; });
  if (it == std::end(table) || it->cp != cp) return nullptr;
  return it;
}

uint8_t CombiningClass(char32_t cp) {
  auto it = std::upper_bound(
      std::begin(kCombiningClassRuns), std::end(kCombiningClassRuns), cp,
      [](char32_t c, const CombiningClassRun& r) { return c < r.first; });
  if (it == std::begin(kCombiningClassRuns)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

constexpr char32_t kHangulSBase = 0xAC00, kHangulLBase = 0x1100,
                   kHangulVBase = 0x1161, kHangulTBase = 0x11A7;
constexpr int kHangulVCount = 21, kHangulTCount = 28, kHangulSCount = 11172;

}  // namespace

absl::StatusOr<std::u32string> DecodeUtf8(absl::string_view text) {
  if (const size_t bad = Utf8ErrorOffset(text);
      bad != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid UTF-8 (malformed, overlong, surrogate or out-of-range "
        "sequence) at byte offset ",
        bad));
  }
  // Valid from here on: decode without further checks.
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    const unsigned char b0 = s[i];
    const int len = b0 < 0x80             ? 1
                    : (b0 & 0xE0) == 0xC0 ? 2
                    : (b0 & 0xF0) == 0xE0 ? 3
                                          : 4;
    char32_t cp = len == 1 ? b0 : b0 & (0x7F >> len);
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

void AppendUtf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsWhitespace(char32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool IsControl(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return InRanges(kOtherRanges, cp);
}

bool IsPunctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) ||
      (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
    return true;
  }
  return InRanges(kPunctuationRanges, cp);
}

bool IsChineseChar(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool IsNonspacingMark(char32_t cp) {
  return InRanges(kNonspacingMarkRanges, cp);
}

std::u32string Nfd(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) {
    if (cp >= kHangulSBase && cp < kHangulSBase + kHangulSCount) {
      const int s = cp - kHangulSBase;
      out.push_back(kHangulLBase + s / (kHangulVCount * kHangulTCount));
      out.push_back(kHangulVBase +
                    (s % (kHangulVCount * kHangulTCount)) / kHangulTCount);
      if (s % kHangulTCount != 0)
        out.push_back(kHangulTBase + s % kHangulTCount);
    } else if (const MappingEntry* e = FindMapping(kDecompositions, cp)) {
      out.append(kDecompositionData + e->offset, e->length);
    } else {
      out.push_back(cp);
    }
  }
  // Canonical ordering: stable sort each run of nonzero combining classes.
  size_t i = 0;
  while (i < out.size()) {
    if (CombiningClass(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && CombiningClass(out[j]) != 0) ++j;
    std::stable_sort(out.begin() + i, out.begin() + j,
                     [](char32_t a, char32_t b) {
                       return CombiningClass(a) < CombiningClass(b);
                     });
    i = j;
  }
  return out;
}

void AppendLowercase(char32_t cp, std::u32string& out) {
  if (cp < 0x80) {
    out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
  } else if (const MappingEntry* e = FindMapping(kLowercase, cp)) {
    out.append(kLowercaseData + e->offset, e->length);
  } else {
    out.push_back(cp);
  }
}

absl::string_view UnicodeVersion() { return kUnicodeVersion; }

}  // namespace diffrank::encoder::unicode
