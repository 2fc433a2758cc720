// fuzz_lexical: any query text through the FTS5 query builder and SQLite.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/utf8.h"
#include "fuzz/fuzz_util.h"
#include "index/collection.h"

namespace {

diffrank::index::Collection* Col() {
  static std::unique_ptr<diffrank::index::Collection> c = [] {
    diffrank::index::CollectionOptions o;
    o.dir = diffrank::fuzz::TempDir("lexical");
    o.model_id = "fuzz";
    o.dimension = 4;
    o.sync_full = false;
    auto col = *diffrank::index::Collection::Create(o);
    std::vector<diffrank::index::Document> docs;
    const char* texts[] = {"the quick brown fox", "NEAR AND OR NOT \"x\"",
                           "unicode caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
                           "a * b ^ c : d ( e )"};
    for (int i = 0; i < 4; ++i) {
      diffrank::index::Document d;
      d.id = std::to_string(i);
      d.text = texts[i];
      d.vector = {1, float(i), 0.5f, 0};
      docs.push_back(d);
    }
    (void)col->Upsert(docs);
    return col;
  }();
  return c.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  if (size < 1) return 0;
  const absl::string_view query(reinterpret_cast<const char*>(data) + 1,
                                size - 1);
  index::SearchOptions o;
  o.top_k = 1 + data[0] % 20;
  o.drop_stopwords = data[0] & 0x80;
  absl::StatusOr<std::vector<index::Hit>> hits = Col()->SearchLexical(query, o);
  if (!hits.ok()) {
    fuzz::NotInternal(hits.status(), "lexical search");
    fuzz::Expect(
        Utf8ErrorOffset(query) != absl::string_view::npos ||
            hits.status().code() != absl::StatusCode::kInvalidArgument ||
            query.empty(),
        "valid queries are answered");
  }
  return 0;
}
