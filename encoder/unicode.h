// unicode.h: the Unicode pieces the BERT tokenizer needs, without ICU.
//
// Owns: strict UTF-8 decoding (invalid input is an error, never a crash),
// UTF-8 encoding, and the character classes and mappings that Hugging Face
// `tokenizers` uses in BertNormalizer / BertPreTokenizer (White_Space, "other"
// categories, punctuation, nonspacing marks, NFD, per-character lowercase).
// Tables are generated from Python's unicodedata (see tools/).
// Thread-safety: all functions are pure and thread-safe.
#ifndef DIFFRANK_ENCODER_UNICODE_H_
#define DIFFRANK_ENCODER_UNICODE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace diffrank::encoder::unicode {

// DecodeUtf8 returns the code points of `text`, or InvalidArgument naming the
// byte offset of the first malformed sequence (overlong forms, surrogates and
// code points above U+10FFFF are malformed).
absl::StatusOr<std::u32string> DecodeUtf8(absl::string_view text);

// AppendUtf8 appends the UTF-8 encoding of `cp` to `out`.
void AppendUtf8(char32_t cp, std::string& out);

// IsWhitespace is true for \t \n \r and the Unicode White_Space property.
bool IsWhitespace(char32_t cp);
// IsControl is true for general categories Cc Cf Cn Co Cs, except \t \n \r.
bool IsControl(char32_t cp);
// IsPunctuation is true for ASCII punctuation and general categories P*.
bool IsPunctuation(char32_t cp);
// IsChineseChar is true for the CJK ideograph blocks BERT isolates.
bool IsChineseChar(char32_t cp);
// IsNonspacingMark is true for general category Mn.
bool IsNonspacingMark(char32_t cp);

// Nfd returns the canonical decomposition (Unicode NFD) of `text`.
std::u32string Nfd(const std::u32string& text);
// AppendLowercase appends the full lowercase mapping of `cp` (no context).
void AppendLowercase(char32_t cp, std::u32string& out);

// UnicodeVersion is the version of the generated tables.
absl::string_view UnicodeVersion();

}  // namespace diffrank::encoder::unicode

#endif  // DIFFRANK_ENCODER_UNICODE_H_
