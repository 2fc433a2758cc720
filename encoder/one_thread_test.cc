// one_thread_test.cc: OneThreadIf sizes only the calling thread's teams.
#include "encoder/one_thread.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace diffrank::encoder {
namespace {

// How many threads at::parallel_for splits 1024 items over (one body call
// per thread with the OpenMP backend).
int TeamSize() {
  std::atomic<int> seen{0};
  at::parallel_for(0, 1024, 1, [&](int64_t, int64_t) { seen.fetch_add(1); });
  return seen.load();
}

TEST(OneThreadIf, SmallWorkRunsInlineAndTheSettingComesBack) {
  at::set_num_threads(2);
  ASSERT_EQ(at::get_num_threads(), 2);
  {
    OneThreadIf small(true);
    EXPECT_EQ(at::get_num_threads(), 1);
    EXPECT_EQ(TeamSize(), 1);
    {
      OneThreadIf nested(true);  // nests: restores the outer scope's 1
      EXPECT_EQ(at::get_num_threads(), 1);
    }
    EXPECT_EQ(at::get_num_threads(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  {
    OneThreadIf large(false);
    EXPECT_EQ(at::get_num_threads(), 2);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
}

TEST(OneThreadIf, OtherThreadsKeepTheirTeams) {
  at::set_num_threads(2);
  OneThreadIf small(true);
  ASSERT_EQ(at::get_num_threads(), 1);
  int other = 0, other_team = 0;
  std::thread t([&] {
    other = at::get_num_threads();
    other_team = TeamSize();
  });
  t.join();
  EXPECT_EQ(other, 2);
  EXPECT_EQ(other_team, 2);
  EXPECT_EQ(at::get_num_threads(), 1);
}

}  // namespace
}  // namespace diffrank::encoder
