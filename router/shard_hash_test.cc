// shard_hash_test.cc: ShardOf is stable, in range, balanced and moves few
// ids when a shard is added.
#include "common/shard_hash.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace diffrank {
namespace {

TEST(ShardOf, IsPinnedAcrossVersions) {
  // Changing these values re-homes every stored document: never do it.
  EXPECT_EQ(Fnv1a64(""), 14695981039346656037ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(ShardOf("doc-1", 3), ShardOf(std::string("doc-1"), 3));
  const std::vector<int> pinned = {ShardOf("doc-0", 3), ShardOf("doc-1", 3),
                                   ShardOf("doc-2", 3), ShardOf("doc-3", 3)};
  EXPECT_EQ(pinned,
            (std::vector<int>{
                JumpHash(Fnv1a64("doc-0"), 3), JumpHash(Fnv1a64("doc-1"), 3),
                JumpHash(Fnv1a64("doc-2"), 3), JumpHash(Fnv1a64("doc-3"), 3)}));
  EXPECT_EQ(JumpHash(0, 1), 0);
  EXPECT_EQ(JumpHash(256, 1024), 520);  // the paper's reference values
}

TEST(ShardOf, BalancedAndInRange) {
  for (int n : {1, 2, 3, 7}) {
    std::vector<int> count(n);
    for (int i = 0; i < 30000; ++i) {
      const int s = ShardOf("id-" + std::to_string(i), n);
      ASSERT_GE(s, 0);
      ASSERT_LT(s, n);
      ++count[s];
    }
    for (int c : count) EXPECT_NEAR(c, 30000 / n, 30000 / n * 0.05);
  }
  EXPECT_EQ(ShardOf("x", 0), 0);  // degenerate: one shard
}

TEST(ShardOf, AddingAShardMovesOnlyItsShare) {
  int moved = 0;
  for (int i = 0; i < 30000; ++i) {
    const std::string id = "id-" + std::to_string(i);
    const int before = ShardOf(id, 3), after = ShardOf(id, 4);
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, 3);  // only to the new shard
    }
  }
  EXPECT_NEAR(moved, 30000 / 4, 30000 / 4 * 0.08);
}

}  // namespace
}  // namespace diffrank
