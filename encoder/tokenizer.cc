// tokenizer.cc: BERT normalization, pre-tokenization and WordPiece.
#include "encoder/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "encoder/model_config.h"
#include "encoder/unicode.h"

namespace diffrank::encoder {
namespace {

// Trims trailing whitespace the way Rust's str::trim_end does for vocab lines.
std::string TrimEnd(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' ||
                        s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(
    const std::string& vocab_path, TokenizerOptions options) {
  std::ifstream in(vocab_path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open vocabulary file ", vocab_path));
  }
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    if (!unicode::DecodeUtf8(line).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          vocab_path, ": line ", tokens.size() + 1, " is not valid UTF-8"));
    }
    tokens.push_back(TrimEnd(std::move(line)));
  }
  auto tokenizer = FromTokens(std::move(tokens), options);
  if (!tokenizer.ok()) {
    return absl::Status(
        tokenizer.status().code(),
        absl::StrCat(vocab_path, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromTokens(
    std::vector<std::string> tokens, TokenizerOptions options) {
  if (options.max_length < 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_length must be at least 3, got ", options.max_length));
  }
  if (tokens.empty()) return absl::InvalidArgumentError("vocabulary is empty");
  std::unique_ptr<Tokenizer> t(new Tokenizer(std::move(tokens), options));
  for (auto [name, slot] :
       {std::pair<const char*, int32_t*>{"[CLS]", &t->cls_id_},
        {"[SEP]", &t->sep_id_},
        {"[PAD]", &t->pad_id_},
        {"[UNK]", &t->unk_id_}}) {
    auto it = t->ids_.find(name);
    if (it == t->ids_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("vocabulary has no ", name, " token"));
    }
    *slot = it->second;
  }
  return t;
}

Tokenizer::Tokenizer(std::vector<std::string> tokens, TokenizerOptions options)
    : tokens_(std::move(tokens)), options_(options) {
  if (options_.strip_accents < 0) options_.strip_accents = options_.lower_case;
  ids_.reserve(tokens_.size());
  // Later duplicates win, as in Hugging Face tokenizers' vocab loading.
  for (size_t i = 0; i < tokens_.size(); ++i) {
    ids_[tokens_[i]] = static_cast<int32_t>(i);
  }
  for (const char* special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    auto it = ids_.find(special);
    if (it != ids_.end()) special_tokens_.emplace_back(special, it->second);
  }
}

std::u32string Tokenizer::Normalize(const std::u32string& text) const {
  std::u32string s;
  s.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == 0xFFFD || unicode::IsControl(c)) continue;
    if (unicode::IsWhitespace(c)) {
      s.push_back(' ');
    } else if (unicode::IsChineseChar(c)) {
      s.push_back(' ');
      s.push_back(c);
      s.push_back(' ');
    } else {
      s.push_back(c);
    }
  }
  if (options_.strip_accents) {
    std::u32string d = unicode::Nfd(s);
    s.clear();
    for (char32_t c : d) {
      if (!unicode::IsNonspacingMark(c)) s.push_back(c);
    }
  }
  if (options_.lower_case) {
    std::u32string l;
    l.reserve(s.size());
    for (char32_t c : s) unicode::AppendLowercase(c, l);
    s = std::move(l);
  }
  return s;
}

void Tokenizer::WordPiece(const std::u32string& word,
                          std::vector<int32_t>& out) const {
  if (static_cast<int>(word.size()) > options_.max_input_chars_per_word) {
    out.push_back(unk_id_);
    return;
  }
  // UTF-8 byte offsets of each character, so substrings are cheap.
  std::string utf8;
  std::vector<size_t> offsets;
  offsets.reserve(word.size() + 1);
  for (char32_t c : word) {
    offsets.push_back(utf8.size());
    unicode::AppendUtf8(c, utf8);
  }
  offsets.push_back(utf8.size());
  const size_t first = out.size();
  std::string piece;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    int32_t found = -1;
    while (start < end) {
      piece.assign(start > 0 ? "##" : "");
      piece.append(utf8, offsets[start], offsets[end] - offsets[start]);
      auto it = ids_.find(piece);
      if (it != ids_.end()) {
        found = it->second;
        break;
      }
      --end;
    }
    if (found < 0) {
      out.resize(first);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Tokenize(absl::string_view text,
                                                         size_t limit) const {
  absl::StatusOr<std::u32string> decoded = unicode::DecodeUtf8(text);
  if (!decoded.ok()) return decoded.status();
  std::vector<int32_t> out;
  // Special tokens written literally in the raw text ("[SEP]") are matched
  // before normalization, leftmost-longest, as Hugging Face tokenizers does.
  // Each token's next occurrence is cached, so the scan stays linear even
  // for a text made of thousands of them.
  std::vector<size_t> next(special_tokens_.size(), 0);
  std::vector<bool> searched(special_tokens_.size(), false);
  size_t pos = 0;
  while (pos < text.size() && out.size() < limit) {
    size_t best = absl::string_view::npos, best_len = 0;
    int32_t best_id = -1;
    for (size_t t = 0; t < special_tokens_.size(); ++t) {
      const auto& [token, id] = special_tokens_[t];
      if (!searched[t] ||
          (next[t] != absl::string_view::npos && next[t] < pos)) {
        next[t] = text.find(token, pos);
        searched[t] = true;
      }
      const size_t at = next[t];
      if (at < best || (at == best && token.size() > best_len)) {
        best = at, best_len = token.size(), best_id = id;
      }
    }
    const size_t end = std::min(best, text.size());
    if (end > pos) {
      TokenizePlain(*unicode::DecodeUtf8(text.substr(pos, end - pos)), limit,
                    out);
    }
    if (best == absl::string_view::npos || out.size() >= limit) break;
    out.push_back(best_id);
    pos = best + best_len;
  }
  return out;
}

void Tokenizer::TokenizePlain(const std::u32string& text, size_t limit,
                              std::vector<int32_t>& out) const {
  // Normalized a piece at a time (pieces end at a space followed by an ASCII
  // character, where no normalization step can reach across), so a limit
  // stops the work early.
  constexpr size_t kPiece = 2048;
  size_t start = 0;
  while (start < text.size() && out.size() < limit) {
    size_t end = text.size();
    for (size_t i = start + kPiece; i + 1 < text.size(); ++i) {
      if (text[i] == U' ' && text[i + 1] < 0x80) {
        end = i + 1;
        break;
      }
    }
    const std::u32string s = Normalize(text.substr(start, end - start));
    std::u32string word;
    auto flush = [&] {
      if (!word.empty()) WordPiece(word, out);
      word.clear();
    };
    for (char32_t c : s) {
      if (unicode::IsWhitespace(c)) {
        flush();
        if (out.size() >= limit) return;
      } else if (unicode::IsPunctuation(c)) {
        flush();
        word.push_back(c);
        flush();
      } else {
        word.push_back(c);
      }
    }
    flush();
    start = end;
  }
}

absl::StatusOr<Encoding> Tokenizer::Encode(absl::string_view text) const {
  absl::StatusOr<std::vector<int32_t>> a =
      Tokenize(text, static_cast<size_t>(options_.max_length - 1));
  if (!a.ok()) return a.status();
  Encoding e;
  e.untruncated_length = static_cast<int>(a->size()) + 2;
  const size_t keep =
      std::min(a->size(), static_cast<size_t>(options_.max_length - 2));
  e.ids.reserve(keep + 2);
  e.ids.push_back(cls_id_);
  e.ids.insert(e.ids.end(), a->begin(), a->begin() + keep);
  e.ids.push_back(sep_id_);
  e.type_ids.assign(e.ids.size(), 0);
  return e;
}

absl::StatusOr<Encoding> Tokenizer::EncodePair(absl::string_view a,
                                               absl::string_view b) const {
  // Bounded like Encode; longest-first truncation only needs exact lengths
  // when both sides are long, and then both are tokenized in full.
  const size_t limit = static_cast<size_t>(options_.max_length) + 1;
  absl::StatusOr<std::vector<int32_t>> ta = Tokenize(a, limit);
  if (!ta.ok()) return ta.status();
  absl::StatusOr<std::vector<int32_t>> tb = Tokenize(b, limit);
  if (!tb.ok()) return tb.status();
  if (ta->size() >= limit && tb->size() >= limit) {
    ta = Tokenize(a);
    tb = Tokenize(b);
  }
  Encoding e;
  e.untruncated_length = static_cast<int>(ta->size() + tb->size()) + 3;
  // Longest-first truncation, with the same arithmetic as Hugging Face
  // tokenizers: keep the shorter side whole when it fits in half.
  const size_t target = options_.max_length - 3;
  size_t n1 = ta->size(), n2 = tb->size();
  if (n1 + n2 > target) {
    const bool swap = n1 > n2;
    if (swap) std::swap(n1, n2);
    n2 = n1 > target ? n1 : std::max(n1, target - n1);
    if (n1 + n2 > target) {
      n1 = target / 2;
      n2 = n1 + target % 2;
    }
    if (swap) std::swap(n1, n2);
    ta->resize(std::min(ta->size(), n1));
    tb->resize(std::min(tb->size(), n2));
  }
  e.ids.reserve(ta->size() + tb->size() + 3);
  e.ids.push_back(cls_id_);
  e.ids.insert(e.ids.end(), ta->begin(), ta->end());
  e.ids.push_back(sep_id_);
  e.type_ids.assign(e.ids.size(), 0);
  e.ids.insert(e.ids.end(), tb->begin(), tb->end());
  e.ids.push_back(sep_id_);
  e.type_ids.resize(e.ids.size(), 1);
  return e;
}

absl::StatusOr<Encoding> Tokenizer::EncodeSegments(absl::string_view a,
                                                   absl::string_view b,
                                                   int max_a) const {
  const size_t limit = static_cast<size_t>(options_.max_length) + 1;
  absl::StatusOr<std::vector<int32_t>> ta = Tokenize(a, limit);
  if (!ta.ok()) return ta.status();
  absl::StatusOr<std::vector<int32_t>> tb = Tokenize(b, limit);
  if (!tb.ok()) return tb.status();
  Encoding e;
  e.untruncated_length = static_cast<int>(ta->size() + tb->size()) + 4;
  const size_t keep_a = std::min<size_t>(ta->size(), std::max(0, max_a - 2));
  const int len_a = static_cast<int>(keep_a) + 2;
  const size_t keep_b = std::min<size_t>(
      tb->size(), std::max(0, options_.max_length - len_a - 2));
  e.ids.reserve(keep_a + keep_b + 4);
  e.ids.push_back(cls_id_);
  e.ids.insert(e.ids.end(), ta->begin(), ta->begin() + keep_a);
  e.ids.push_back(sep_id_);
  e.split = static_cast<int>(e.ids.size());
  e.ids.push_back(cls_id_);
  e.ids.insert(e.ids.end(), tb->begin(), tb->begin() + keep_b);
  e.ids.push_back(sep_id_);
  e.type_ids.assign(e.ids.size(), 0);
  return e;
}

TokenBatch Tokenizer::Pad(const std::vector<Encoding>& encodings) const {
  TokenBatch b;
  b.batch = static_cast<int>(encodings.size());
  for (const Encoding& e : encodings) {
    b.seq_len = std::max(b.seq_len, static_cast<int>(e.ids.size()));
  }
  const size_t n = static_cast<size_t>(b.batch) * b.seq_len;
  b.ids.assign(n, pad_id_);
  b.type_ids.assign(n, 0);
  b.mask.assign(n, 0);
  b.lengths.reserve(b.batch);
  for (int i = 0; i < b.batch; ++i) {
    const Encoding& e = encodings[i];
    const size_t row = static_cast<size_t>(i) * b.seq_len;
    std::copy(e.ids.begin(), e.ids.end(), b.ids.begin() + row);
    std::copy(e.type_ids.begin(), e.type_ids.end(), b.type_ids.begin() + row);
    std::fill_n(b.mask.begin() + row, e.ids.size(), 1);
    b.lengths.push_back(static_cast<int>(e.ids.size()));
  }
  const bool segments = !encodings.empty() && encodings[0].split > 0;
  if (segments) {
    b.positions.assign(n, 0);
    b.segments.assign(n, 1);
    for (int i = 0; i < b.batch; ++i) {
      const Encoding& e = encodings[i];
      const size_t row = static_cast<size_t>(i) * b.seq_len;
      for (int t = 0; t < static_cast<int>(e.ids.size()); ++t) {
        b.positions[row + t] = t < e.split ? t : t - e.split;
        if (t < e.split) b.segments[row + t] = 0;
      }
    }
  }
  return b;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::ForModel(
    const std::string& model_dir) {
  absl::StatusOr<ModelConfig> config =
      LoadModelConfig(model_dir + "/config.json");
  if (!config.ok()) return config.status();
  TokenizerOptions options;
  options.lower_case = config->lower_case;
  options.max_length = config->max_length;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      Create(model_dir + "/vocab.txt", options);
  if (!tok.ok()) return tok.status();
  if ((*tok)->vocab_size() != config->vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_dir, "/vocab.txt has ", (*tok)->vocab_size(),
        " tokens but config.json says vocab_size ", config->vocab_size));
  }
  return tok;
}

}  // namespace diffrank::encoder
