// shard_hash.h: which shard owns a document id (router and bulk indexer).
//
// ShardOf(id, n) = jump consistent hash (Lamping & Veach 2014) of the
// 64-bit FNV-1a hash of the id's bytes. Stable across processes, versions
// and machines (no std::hash), and growing n to n+1 moves only ~1/(n+1) of
// the ids. The router sends each id's Upsert/Delete/Get to shard
// ShardOf(id, shards), and `diffrank-index --shard i --shards n` keeps the
// records ShardOf maps to i; both must agree, so this is the only copy.
#ifndef DIFFRANK_COMMON_SHARD_HASH_H_
#define DIFFRANK_COMMON_SHARD_HASH_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace diffrank {

inline uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// JumpHash maps `key` to a bucket in [0, buckets); buckets >= 1.
inline int JumpHash(uint64_t key, int buckets) {
  int64_t b = -1, j = 0;
  while (j < buckets) {
    b = j;
    key = key * 2862933555777941757ull + 1;
    j = int64_t(double(b + 1) *
                (double(int64_t(1) << 31) / double((key >> 33) + 1)));
  }
  return int(b);
}

inline int ShardOf(absl::string_view id, int shards) {
  return shards <= 1 ? 0 : JumpHash(Fnv1a64(id), shards);
}

}  // namespace diffrank

#endif  // DIFFRANK_COMMON_SHARD_HASH_H_
