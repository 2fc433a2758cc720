// tokenizer.h: BERT WordPiece tokenization over a `vocab.txt`.
//
// Owns: normalization (clean text, CJK isolation, accent stripping,
// lower-casing), pre-tokenization (whitespace, punctuation), greedy
// longest-match WordPiece, the [CLS]/[SEP] template for single texts and
// (query, passage) pairs, special tokens written literally in the text
// ("[SEP]" is the separator, as in Hugging Face), truncation (longest-first for
// pairs) and padding a batch into dense id / type / mask arrays. Token ids are
// identical to Hugging Face `tokenizers` BertWordPiece with the same vocabulary
// (tested). Does not own: tensors or devices (see transformer.h).
// Thread-safety: a Tokenizer is immutable after Create; all methods are const
// and safe to call concurrently.
#ifndef DIFFRANK_ENCODER_TOKENIZER_H_
#define DIFFRANK_ENCODER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace diffrank::encoder {

// TokenizerOptions configures normalization and length limits.
struct TokenizerOptions {
  // Lower-case the text (BERT "uncased" vocabularies). Default true.
  bool lower_case = true;
  // Strip accents (NFD, drop nonspacing marks). -1 = same as lower_case.
  int strip_accents = -1;
  // Maximum sequence length including [CLS]/[SEP]; longer input is truncated.
  int max_length = 512;
  // Words with more characters than this become [UNK] (as in BERT).
  int max_input_chars_per_word = 100;
};

// Encoding is one tokenized sequence with its special tokens.
struct Encoding {
  std::vector<int32_t> ids;       // [CLS] a [SEP] (b [SEP])
  std::vector<int32_t> type_ids;  // 0 for the first segment, 1 for the second
  int untruncated_length = 0;     // length before truncation, with specials
  // split > 0: the segments layout ([CLS] a [SEP] [CLS] b [SEP]); the second
  // segment starts at `split`, where positions restart at 0.
  int split = 0;
  bool truncated() const {
    return untruncated_length > static_cast<int>(ids.size());
  }
};

// TokenBatch is a padded batch, row-major [batch, seq_len].
struct TokenBatch {
  int batch = 0;
  int seq_len = 0;
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
  std::vector<int64_t> mask;  // 1 for real tokens, 0 for padding
  // Segments layout only (else empty): position id and segment (0 first, 1
  // second and padding) per token.
  std::vector<int64_t> positions;
  std::vector<int64_t> segments;
  std::vector<int> lengths;
  // Padded tokens (batch * seq_len): what a token budget is measured in.
  int64_t padded_tokens() const { return int64_t{batch} * seq_len; }
};

// Tokenizer turns UTF-8 text into BERT token ids.
class Tokenizer {
 public:
  // Create reads a vocabulary file (one token per line, id = line number).
  // Errors: NotFound / InvalidArgument naming the file and line; a
  // vocabulary must contain [CLS], [SEP], [PAD] and [UNK].
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(
      const std::string& vocab_path, TokenizerOptions options);
  // FromTokens builds a tokenizer from an in-memory vocabulary.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromTokens(
      std::vector<std::string> tokens, TokenizerOptions options);
  // ForModel loads <model_dir>/vocab.txt with the normalization and length
  // of that model's config.json (lower_case, max_length, vocab_size checked):
  // what Encoder::Create uses, for tools that need only the tokenizer.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> ForModel(
      const std::string& model_dir);

  // Tokenize returns the WordPiece ids of `text` without special tokens.
  // Invalid UTF-8 is InvalidArgument naming the byte offset. With `limit`,
  // it stops once it has at least `limit` ids (the ids it returns are the
  // same prefix; the rest of the text is never normalized), so a long text
  // costs what its kept part costs. Linear in the text in every case.
  absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view text,
                                                size_t limit = SIZE_MAX) const;
  // Encode returns [CLS] text [SEP], truncated to max_length. Tokenizes only
  // what it keeps (+1 id): untruncated_length is then a lower bound.
  absl::StatusOr<Encoding> Encode(absl::string_view text) const;
  // EncodePair returns [CLS] a [SEP] b [SEP], truncated longest-first.
  absl::StatusOr<Encoding> EncodePair(absl::string_view a,
                                      absl::string_view b) const;
  // EncodeSegments (bounded like Encode) returns [CLS] a [SEP] (at most
  // max_a tokens in all) then
  // [CLS] b [SEP] cut to fit max_length: the segments pair layout
  // (model_config.h), identical to train/diffrank_ref/tokenization.py.
  absl::StatusOr<Encoding> EncodeSegments(absl::string_view a,
                                          absl::string_view b, int max_a) const;
  // Pad packs encodings into a batch padded to the longest one (with
  // positions and segments when the encodings are in the segments layout).
  TokenBatch Pad(const std::vector<Encoding>& encodings) const;

  int vocab_size() const { return static_cast<int>(tokens_.size()); }
  int max_length() const { return options_.max_length; }
  int cls_id() const { return cls_id_; }
  int sep_id() const { return sep_id_; }
  int pad_id() const { return pad_id_; }
  int unk_id() const { return unk_id_; }
  // Token returns the vocabulary entry for `id` (for debugging and tests).
  const std::string& Token(int id) const { return tokens_[id]; }

 private:
  Tokenizer(std::vector<std::string> tokens, TokenizerOptions options);
  std::u32string Normalize(const std::u32string& text) const;
  void WordPiece(const std::u32string& word, std::vector<int32_t>& out) const;
  void TokenizePlain(const std::u32string& text, size_t limit,
                     std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;
  absl::flat_hash_map<std::string, int32_t> ids_;
  // [PAD] [UNK] [CLS] [SEP] [MASK] (those in the vocabulary): matched
  // literally in raw text, like Hugging Face's special added tokens.
  std::vector<std::pair<std::string, int32_t>> special_tokens_;
  TokenizerOptions options_;
  int32_t cls_id_ = -1, sep_id_ = -1, pad_id_ = -1, unk_id_ = -1;
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_TOKENIZER_H_
