// chunker.h: splitting long documents into overlapping windows of tokens.
//
// Owns: the chunking of diffrank-index's --chunk_tokens / --chunk_overlap
// (any input format; meant for directory trees of long text files). A text is
// cut at whitespace into windows of at most `tokens` WordPiece tokens of the
// embedder's tokenizer (counted without [CLS]/[SEP]), each window starting
// `overlap` tokens before the previous one ended (whole words: a window may
// begin a few tokens earlier). Window texts are exact substrings of the
// original (its formatting inside a window is kept). A single word longer
// than a window becomes a window of its own (the model truncates it).
// Chunk ids are "<record id>#<n>" (n from 0, every record, also one that fits
// in one window); the title is kept; metadata gains "source_id" and "chunk"
// (refused as a bad record when the metadata already has either key).
// Thread-safety: plain functions; the tokenizer is shared read-only.
#ifndef DIFFRANK_INDEXER_CHUNKER_H_
#define DIFFRANK_INDEXER_CHUNKER_H_

#include <cstddef>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "encoder/tokenizer.h"
#include "indexer/records.h"

namespace diffrank::indexer {

struct ChunkOptions {
  int tokens = 0;   // window size; 0 = no chunking
  int overlap = 0;  // tokens shared with the previous window (< tokens)
};

// ValidateChunkOptions: InvalidArgument unless tokens >= 1 and overlap is
// in [0, tokens).
absl::Status ValidateChunkOptions(const ChunkOptions& options);

// ChunkSpans returns the [begin, end) byte ranges of the windows of `text`
// (one empty range for a text without words). InvalidArgument for invalid
// UTF-8 or options out of range.
absl::StatusOr<std::vector<std::pair<size_t, size_t>>> ChunkSpans(
    const encoder::Tokenizer& tokenizer, absl::string_view text,
    const ChunkOptions& options);

// ChunkingSink passes each record on to `good` as its chunks; a record that
// cannot be chunked goes to `bad` with the reason.
GoodSink ChunkingSink(const encoder::Tokenizer& tokenizer, ChunkOptions options,
                      GoodSink good, BadSink bad);

}  // namespace diffrank::indexer

#endif  // DIFFRANK_INDEXER_CHUNKER_H_
