// fuzz_metadata: any document metadata a client sends. Accepted or refused
// with InvalidArgument; once accepted, filtered search and filtered delete
// over the collection must keep working (issue 12: one deeply nested
// document made every filtered query fail INTERNAL).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "fuzz/fuzz_util.h"
#include "index/collection.h"

namespace {

diffrank::index::Collection* Col() {
  static std::unique_ptr<diffrank::index::Collection> c = [] {
    diffrank::index::CollectionOptions o;
    o.dir = diffrank::fuzz::TempDir("metadata");
    o.model_id = "fuzz";
    o.dimension = 4;
    o.sync_full = false;
    return *diffrank::index::Collection::Create(o);
  }();
  return c.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  index::Document d;
  d.id = "doc";
  d.text = "text";
  d.metadata.assign(reinterpret_cast<const char*>(data), size);
  d.vector = {1, 0.5f, 0.25f, 0};
  absl::Status s = Col()->Upsert({d});
  fuzz::Expect(s.ok() || s.code() == absl::StatusCode::kInvalidArgument,
               "metadata is accepted or InvalidArgument");
  static const index::Filter filters[] = {
      *index::ParseFilterJson(R"({"field": "a", "eq": 1})"),
      *index::ParseFilterJson(R"({"field": "a.b", "in": ["x", 2, true]})"),
      *index::ParseFilterJson(R"({"field": "a", "gte": 0, "lt": 10})")};
  for (const index::Filter& f : filters) {
    index::SearchOptions o;
    o.filter = &f;
    absl::StatusOr<std::vector<index::Hit>> hits =
        Col()->SearchLexical("text", o);
    // "unknown filter field" is fine until a document has the field.
    if (!hits.ok()) fuzz::NotInternal(hits.status(), "filtered search");
  }
  return 0;
}
