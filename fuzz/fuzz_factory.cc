// fuzz_factory: any index string a CreateCollection may carry. Refused with
// InvalidArgument, or it builds an index that trains, adds and searches
// (issue 12: FAISS itself crashed or hung on strings it accepted).
#include <cstddef>
#include <cstdint>
#include <random>

#include "fuzz/fuzz_util.h"
#include "index/factory.h"
#include "index/vector_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  if (size < 1) return 0;
  const int dim = 1 + data[0] % 64;
  const std::string f(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<index::FactorySpec> spec = index::ParseFactory(f, dim);
  if (!spec.ok()) {
    fuzz::Expect(spec.status().code() == absl::StatusCode::kInvalidArgument,
                 "refused strings are InvalidArgument");
    return 0;
  }
  auto idx = index::VectorIndex::Create(dim, f);
  fuzz::Expect(idx.ok(), "accepted strings build");
  // Training big codebooks is slow, not wrong: exercise the small ones.
  if (spec->min_training_vectors > 4000) return 0;
  const int64_t n = std::max<int64_t>(spec->min_training_vectors, 64);
  std::mt19937 rng(size);
  std::normal_distribution<float> g;
  std::vector<float> x(n * dim);
  for (float& v : x) v = g(rng);
  fuzz::Expect((*idx)->Train(x.data(), n).ok(), "trains");
  fuzz::Expect((*idx)->Add(x.data(), 32).ok(), "adds");
  index::Bitmap allow(4, 0x55);
  auto hits = (*idx)->Search(x.data(), 5, {}, &allow);
  fuzz::Expect(hits.ok(), "searches");
  return 0;
}
