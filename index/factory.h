// factory.h: the FAISS factory strings diffrank accepts, checked before FAISS
// ever sees them.
//
// FAISS's index_factory accepts strings that build indexes which crash or
// hang later (measured with FAISS 1.7.3: "PQ0" divides by zero, "HNSW1"
// loops forever on add, "NSG32" and "HNSW0" crash on add, "SQ8" crashes when
// trained on zero vectors, "RQ1x8" and "..fs" reject search parameters). So
// diffrank accepts a small grammar of forms that were each tested end to end
// (create, train, add, filtered search, snapshot, reopen) and bounds every
// number in it:
//   Flat
//   HNSW<M>[,Flat | ,SQ<q> | ,PQ<m>]            M in [4, 256]
//   SQ<q>                                        q in {4, 6, 8, fp16}
//   [OPQ<m>,]IVF<n>[_HNSW<M>],(Flat | SQ<q> | PQ<m>[x<b>])
//                                                n in [1, 65536],
//                                                b in [4, 12]
// PQ/OPQ m must divide the dimension. ParseFactory also says how many
// vectors training needs (the Collection serves an exact Flat index until it
// has them, so FAISS never trains on too few).
// Thread-safety: pure functions.
#ifndef DIFFRANK_INDEX_FACTORY_H_
#define DIFFRANK_INDEX_FACTORY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace diffrank::index {

struct FactorySpec {
  std::string factory;               // as given (already validated)
  int64_t min_training_vectors = 0;  // 0 = needs no training
};

// ParseFactory validates `factory` for vectors of `dimension`.
// InvalidArgument names the offending part and lists the accepted forms.
absl::StatusOr<FactorySpec> ParseFactory(absl::string_view factory,
                                         int dimension);

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_FACTORY_H_
