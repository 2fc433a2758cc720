// chunker.cc: token windows over whitespace-separated words (chunker.h).
#include "indexer/chunker.h"

#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"

namespace diffrank::indexer {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

struct Word {
  size_t begin, end;
  int tokens;
};

}  // namespace

absl::Status ValidateChunkOptions(const ChunkOptions& options) {
  if (options.tokens < 1 || options.overlap < 0 ||
      options.overlap >= options.tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk_tokens must be >= 1 and chunk_overlap in [0, chunk_tokens); "
        "got ",
        options.tokens, " and ", options.overlap));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<size_t, size_t>>> ChunkSpans(
    const encoder::Tokenizer& tokenizer, absl::string_view text,
    const ChunkOptions& options) {
  if (absl::Status s = ValidateChunkOptions(options); !s.ok()) return s;
  // Words and their token counts. The tokenizer splits at whitespace first,
  // so the sum over words equals the count of the whole text.
  std::vector<Word> words;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && IsSpace(text[i])) ++i;
    if (i == text.size()) break;
    size_t j = i;
    while (j < text.size() && !IsSpace(text[j])) ++j;
    absl::StatusOr<std::vector<int32_t>> ids =
        tokenizer.Tokenize(text.substr(i, j - i));
    if (!ids.ok()) return ids.status();
    words.push_back({i, j, static_cast<int>(ids->size())});
    i = j;
  }
  std::vector<std::pair<size_t, size_t>> spans;
  if (words.empty()) {
    spans.push_back({0, 0});
    return spans;
  }
  size_t first = 0;
  while (true) {
    // Extend the window while it fits (at least one word).
    size_t last = first;
    int used = words[first].tokens;
    while (last + 1 < words.size() &&
           used + words[last + 1].tokens <= options.tokens) {
      used += words[++last].tokens;
    }
    spans.push_back({words[first].begin, words[last].end});
    if (last + 1 == words.size()) break;
    // The next window starts at the earliest word of the last `overlap`
    // tokens, always after `first` so that every window moves on.
    size_t next = last + 1;
    int shared = 0;
    while (next > first + 1 &&
           shared + words[next - 1].tokens <= options.overlap) {
      shared += words[--next].tokens;
    }
    first = next;
  }
  return spans;
}

GoodSink ChunkingSink(const encoder::Tokenizer& tokenizer, ChunkOptions options,
                      GoodSink good, BadSink bad) {
  return [&tokenizer, options, good = std::move(good),
          bad = std::move(bad)](Record r) -> absl::Status {
    // The id goes into the metadata JSON (source_id): it must be UTF-8
    // (found by fuzz_records: a CSV id with a stray byte threw in dump()).
    if (const size_t at = Utf8ErrorOffset(r.doc.id);
        at != absl::string_view::npos) {
      return bad(r.where,
                 absl::StrCat("id is not valid UTF-8 (byte ", at, ")"));
    }
    nlohmann::json meta = nlohmann::json::parse(r.doc.metadata, nullptr,
                                                /*allow_exceptions=*/false);
    if (meta.is_discarded() || !meta.is_object()) {
      return bad(r.where, "metadata is not a JSON object");
    }
    if (meta.contains("source_id") || meta.contains("chunk")) {
      return bad(r.where,
                 "metadata already has \"source_id\" or \"chunk\", which "
                 "chunking sets");
    }
    absl::StatusOr<std::vector<std::pair<size_t, size_t>>> spans =
        ChunkSpans(tokenizer, r.doc.text, options);
    if (!spans.ok()) return bad(r.where, std::string(spans.status().message()));
    meta["source_id"] = r.doc.id;
    for (size_t n = 0; n < spans->size(); ++n) {
      Record c;
      c.where = r.where;
      c.doc.id = absl::StrCat(r.doc.id, "#", n);
      c.doc.title = r.doc.title;
      const auto [begin, end] = (*spans)[n];
      c.doc.text = r.doc.text.substr(begin, end - begin);
      meta["chunk"] = n;
      c.doc.metadata = meta.dump();
      if (absl::Status s = good(std::move(c)); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
}

}  // namespace diffrank::indexer
