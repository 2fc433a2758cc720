// fuzz_records: bytes as a bulk-load input file (JSONL, CSV, TSV): every
// record is either delivered (with an id and a text) or reported bad with
// its line; reading never fails on content.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>

#include "fuzz/fuzz_util.h"
#include "indexer/records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  if (size < 1) return 0;
  static const std::string dir = fuzz::TempDir("records");
  static const char* kFormats[] = {"jsonl", "csv", "tsv"};
  const std::string format = kFormats[data[0] % 3];
  const std::string path = dir + "/in." + format;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data) + 1, size - 1);
  }
  indexer::InputOptions o;
  o.format = format;
  o.max_record_bytes = 256;
  absl::Status s = indexer::ReadRecords(
      path, o,
      [](indexer::Record r) {
        fuzz::Expect(!r.doc.id.empty() && !r.where.empty(),
                     "records have an id and a place");
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
