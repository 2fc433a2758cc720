// fuzz_tokenizer: any bytes through the WordPiece tokenizer's entry points;
// a limited tokenization is a prefix of the full one.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "encoder/tokenizer.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  static const std::unique_ptr<encoder::Tokenizer> tok = [] {
    encoder::TokenizerOptions o;
    o.max_length = 16;
    return *encoder::Tokenizer::FromTokens(
        {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "un", "##aff",
         "##able", "a", "##b", ",", ".", "caf", "##e", "\xe6\x97\xa5"},
        o);
  }();
  if (size < 1) return 0;
  const size_t split = data[0] % (size);
  const absl::string_view all(reinterpret_cast<const char*>(data) + 1,
                              size - 1);
  const absl::string_view a = all.substr(0, split), b = all.substr(split);
  absl::StatusOr<std::vector<int32_t>> full = tok->Tokenize(all);
  if (!full.ok()) {
    fuzz::Expect(full.status().code() == absl::StatusCode::kInvalidArgument,
                 "bad UTF-8 is InvalidArgument");
    return 0;
  }
  for (size_t limit : {size_t{1}, size_t{5}, size_t{17}}) {
    absl::StatusOr<std::vector<int32_t>> part = tok->Tokenize(all, limit);
    fuzz::Expect(part.ok(), "limited tokenization succeeds");
    fuzz::Expect(part->size() <= full->size() &&
                     part->size() >= std::min(limit, full->size()) &&
                     std::equal(part->begin(), part->end(), full->begin()),
                 "limited tokenization is a prefix");
  }
  auto e = tok->Encode(all);
  fuzz::Expect(e.ok() && e->ids.size() <= 16, "Encode fits max_length");
  if (tok->Tokenize(a).ok() && tok->Tokenize(b).ok()) {
    auto p = tok->EncodePair(a, b);
    fuzz::Expect(p.ok() && p->ids.size() <= 16, "EncodePair fits");
    auto s = tok->EncodeSegments(a, b, 6);
    fuzz::Expect(s.ok() && s->ids.size() <= 16, "EncodeSegments fits");
  }
  return 0;
}
