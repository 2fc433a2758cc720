// fuzz_records: bytes as a bulk-load input file (JSONL, CSV, TSV), read
// plain or chunked into token windows (chunker.h): every record is either
// delivered (with an id and a text; chunks: ids <id>#<n>, texts that are
// substrings of nothing longer than the record) or reported bad with its
// line; reading never fails on content.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "encoder/tokenizer.h"
#include "fuzz/fuzz_util.h"
#include "indexer/records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  if (size < 1) return 0;
  static const std::string dir = fuzz::TempDir("records");
  static const char* kFormats[] = {"jsonl", "csv", "tsv"};
  const std::string format = kFormats[data[0] % 3];
  // Bits 2..7 of the first byte: chunk windows of 1..7 tokens, overlap 0..3
  // (chunking off when 0).
  static const std::unique_ptr<encoder::Tokenizer> tok =
      *encoder::Tokenizer::FromTokens(
          {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##a", "."},
          {});
  const int chunk_tokens = (data[0] >> 2) % 8;
  const int chunk_overlap = chunk_tokens ? (data[0] >> 5) % chunk_tokens : 0;
  const std::string path = dir + "/in." + format;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data) + 1, size - 1);
  }
  indexer::InputOptions o;
  o.format = format;
  o.max_record_bytes = 256;
  o.chunk_tokens = chunk_tokens;
  o.chunk_overlap = chunk_overlap;
  o.tokenizer = tok.get();
  absl::Status s = indexer::ReadRecords(
      path, o,
      [&](indexer::Record r) {
        fuzz::Expect(!r.doc.id.empty() && !r.where.empty(),
                     "records have an id and a place");
        fuzz::Expect(
            chunk_tokens == 0 || r.doc.id.find('#') != std::string::npos,
            "chunk ids are <id>#<n>");
        fuzz::Expect(r.doc.text.size() <= 256,
                     "a chunk is never longer than a record");
        return absl::OkStatus();
      },
      [](const std::string& where, const std::string& why) {
        fuzz::Expect(!where.empty() && !why.empty(), "bad records say why");
        return absl::OkStatus();
      });
  // A CSV header that cannot be read is the only whole-input error.
  fuzz::Expect(s.ok() || (format != "jsonl" &&
                          s.code() == absl::StatusCode::kInvalidArgument),
               "content never fails the read");
  return 0;
}
