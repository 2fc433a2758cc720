// fuzz_filter: filter JSON -> parse -> SQL; the SQL must stay inside
// SQLite's limits (parameters, size) whatever the input.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "index/filter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<index::Filter> f = index::ParseFilterJson(text);
  if (!f.ok()) {
    fuzz::Expect(f.status().code() == absl::StatusCode::kInvalidArgument,
                 "parse errors are InvalidArgument");
    return 0;
  }
  static const absl::flat_hash_set<std::string> kKnown = {"a", "b", "lang",
                                                          "year", "tags"};
  absl::StatusOr<index::SqlPredicate> sql = index::CompileFilter(*f, kKnown);
  if (!sql.ok()) {
    fuzz::Expect(sql.status().code() == absl::StatusCode::kInvalidArgument,
                 "compile errors are InvalidArgument");
    return 0;
  }
  fuzz::Expect(sql->params.size() < 32766, "bound parameters within SQLite's");
  fuzz::Expect(sql->sql.size() < 1000000, "SQL text bounded");
  return 0;
}
