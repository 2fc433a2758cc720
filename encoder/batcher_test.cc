// Tests of the dynamic batcher with a fake model (no torch).
#include "encoder/batcher.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace diffrank::encoder {
namespace {

Encoding Row(int len, int value) {
  Encoding e;
  e.ids.assign(len, value);
  e.type_ids.assign(len, 0);
  e.untruncated_length = len;
  return e;
}

TokenBatch Pad(TaskKind, int, const std::vector<Encoding>& rows) {
  TokenBatch b;
  b.batch = static_cast<int>(rows.size());
  for (const auto& r : rows) b.seq_len = std::max<int>(b.seq_len, r.ids.size());
  for (const auto& r : rows) {
    for (int i = 0; i < b.seq_len; ++i) {
      b.ids.push_back(i < int(r.ids.size()) ? r.ids[i] : 0);
    }
  }
  return b;
}

// The fake model returns each row's first id (width 1) and records batches.
struct Fake {
  std::atomic<int> batches{0};
  std::atomic<int> max_rows{0};
  std::atomic<int64_t> max_tokens{0};
  absl::Duration delay = absl::ZeroDuration();
  BatcherOptions Options() {
    BatcherOptions o;
    o.pad = Pad;
    o.run = [this](TaskKind, int,
                   const TokenBatch& b) -> absl::StatusOr<std::vector<float>> {
      absl::SleepFor(delay);
      ++batches;
      max_rows = std::max(max_rows.load(), b.batch);
      max_tokens = std::max<int64_t>(max_tokens.load(), b.padded_tokens());
      std::vector<float> out;
      for (int i = 0; i < b.batch; ++i) out.push_back(b.ids[i * b.seq_len]);
      return out;
    };
    return o;
  }
};

TEST(Batcher, ReturnsRowsInOrder) {
  Fake fake;
  auto b = *Batcher::Create(fake.Options());
  CallContext ctx;
  auto r = b->Submit(TaskKind::kRerank, {Row(3, 7), Row(5, 8), Row(1, 9)}, ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->width, 1);
  EXPECT_EQ(r->values, (std::vector<float>{7, 8, 9}));
}

TEST(Batcher, BucketsRowsByLengthAndKeepsTheirOrder) {
  // 8 rows alternating long (64) and short (2), 4 per batch: in order both
  // batches pad to 64 (512 padded tokens); sorted by length, one batch holds
  // the short rows (4 x 2) and one the long rows (4 x 64): 264.
  Fake fake;
  BatcherOptions o = fake.Options();
  o.max_batch_rows = 4;
  int64_t padded = 0;
  o.on_batch = [&](const BatchEvent& e) { padded += e.padded_tokens; };
  auto b = *Batcher::Create(o);
  std::vector<Encoding> rows;
  std::vector<float> want;
  for (int i = 0; i < 8; ++i) {
    rows.push_back(Row(i % 2 ? 2 : 64, i + 1));
    want.push_back(i + 1);
  }
  CallContext ctx;
  auto r = b->Submit(TaskKind::kDocumentEmbed, rows, ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->values, want);
  EXPECT_EQ(fake.batches, 2);
  EXPECT_EQ(padded, 4 * 2 + 4 * 64);
}

TEST(Batcher, MergesConcurrentRequestsIntoFewBatches) {
  Fake fake;
  BatcherOptions o = fake.Options();
  o.max_delay = absl::Milliseconds(50);
  auto b = *Batcher::Create(o);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      CallContext ctx;
      auto r = b->Submit(TaskKind::kQueryEmbed, {Row(4, t + 1)}, ctx);
      if (r.ok() && r->values == std::vector<float>{float(t + 1)}) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 16);
  EXPECT_LT(fake.batches, 16);
}

TEST(Batcher, NeverMixesModelsInOneBatch) {
  // Collections built by different embedders share one executor: requests
  // of two model slots queued together are computed by their own model
  // (each model here adds 100 x its slot), never in one batch.
  std::mutex mu;
  std::vector<std::pair<int, int>> batches;  // (model, rows)
  BatcherOptions o;
  o.pad = Pad;
  o.max_delay = absl::Milliseconds(50);
  o.run = [&](TaskKind, int model,
              const TokenBatch& b) -> absl::StatusOr<std::vector<float>> {
    {
      std::lock_guard<std::mutex> l(mu);
      batches.emplace_back(model, b.batch);
    }
    std::vector<float> out;
    for (int i = 0; i < b.batch; ++i) {
      out.push_back(100 * model + b.ids[i * b.seq_len]);
    }
    return out;
  };
  auto b = *Batcher::Create(o);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      const int model = t % 3;
      auto r = b->Submit(TaskKind::kQueryEmbed, {Row(4, t + 1)}, CallContext{},
                         model);
      if (r.ok() && r->values == std::vector<float>{float(100 * model + t + 1)})
        ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 12);
  int rows = 0;
  for (const auto& [model, n] : batches) rows += n;
  EXPECT_EQ(rows, 12);
  EXPECT_LT(batches.size(), 12u) << "requests of one model were not merged";
  EXPECT_EQ(
      b->Submit(TaskKind::kQueryEmbed, {Row(2, 1)}, CallContext{}, kMaxModels)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(Batcher, RespectsRowAndTokenBudgetsByChunkingLargeRequests) {
  Fake fake;
  BatcherOptions o = fake.Options();
  o.max_batch_rows = 4;
  o.max_batch_tokens = 40;
  auto b = *Batcher::Create(o);
  std::vector<Encoding> rows;
  for (int i = 0; i < 10; ++i) rows.push_back(Row(12, i + 1));
  CallContext ctx;
  auto r = b->Submit(TaskKind::kDocumentEmbed, rows, ctx);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->values.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r->values[i], i + 1);
  EXPECT_LE(fake.max_rows, 4);
  EXPECT_LE(fake.max_tokens, 40);
}

TEST(Batcher, RefusesWhenQueueIsFull) {
  Fake fake;
  fake.delay = absl::Milliseconds(200);
  BatcherOptions o = fake.Options();
  o.max_queue_rows = 2;
  o.max_batch_rows = 1;
  auto b = *Batcher::Create(o);
  std::vector<std::thread> threads;
  std::atomic<int> exhausted{0}, ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      CallContext ctx;
      auto r = b->Submit(TaskKind::kRerank, {Row(2, 1)}, ctx);
      if (r.ok()) ++ok;
      if (r.status().code() == absl::StatusCode::kResourceExhausted) {
        ++exhausted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(exhausted, 0);
  EXPECT_GT(ok, 0);
  EXPECT_EQ(ok + exhausted, 8);
}

TEST(Batcher, DropsExpiredRequestsBeforeCompute) {
  Fake fake;
  fake.delay = absl::Milliseconds(300);
  BatcherOptions o = fake.Options();
  o.max_batch_rows = 1;
  auto b = *Batcher::Create(o);
  std::thread busy([&] {
    CallContext ctx;
    (void)b->Submit(TaskKind::kRerank, {Row(2, 1)}, ctx);
  });
  absl::SleepFor(absl::Milliseconds(50));
  CallContext ctx;
  ctx.deadline = absl::Now() + absl::Milliseconds(50);
  auto r = b->Submit(TaskKind::kRerank, {Row(2, 2)}, ctx);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  busy.join();
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(fake.batches, 1);  // the expired request was never computed
}

TEST(Batcher, CancelledCallerReturnsPromptly) {
  Fake fake;
  fake.delay = absl::Milliseconds(300);
  BatcherOptions o = fake.Options();
  o.max_batch_rows = 1;
  auto b = *Batcher::Create(o);
  std::thread busy([&] {
    CallContext ctx;
    (void)b->Submit(TaskKind::kRerank, {Row(2, 1)}, ctx);
  });
  absl::SleepFor(absl::Milliseconds(30));
  CallContext ctx;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(30));
    ctx.cancelled = true;
  });
  auto r = b->Submit(TaskKind::kRerank, {Row(2, 2)}, ctx);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  canceller.join();
  busy.join();
}

TEST(Batcher, ModelErrorsReachEveryCallerInTheBatch) {
  BatcherOptions o;
  o.pad = Pad;
  o.run = [](TaskKind, int,
             const TokenBatch&) -> absl::StatusOr<std::vector<float>> {
    return absl::ResourceExhaustedError("out of memory");
  };
  auto b = *Batcher::Create(o);
  CallContext ctx;
  auto r = b->Submit(TaskKind::kQueryEmbed, {Row(2, 1)}, ctx);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(Batcher, StopsARequestBetweenChunksOnceItsDeadlinePassed) {
  // Issue 25: a 200-pair rerank whose caller timed out kept the executor
  // busy for every chunk. The first chunk here returns only after the
  // request's deadline has passed (a condition, not a duration), so the
  // executor must skip the other chunks and answer DeadlineExceeded.
  std::atomic<int> chunks{0};
  BatcherOptions o;
  o.pad = Pad;
  o.max_batch_rows = 4;
  absl::Time deadline = absl::Now() + absl::Milliseconds(200);
  o.run = [&](TaskKind, int,
              const TokenBatch& b) -> absl::StatusOr<std::vector<float>> {
    ++chunks;
    while (absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    return std::vector<float>(b.batch, 1.0f);
  };
  auto b = *Batcher::Create(o);
  CallContext ctx;
  ctx.deadline = deadline;
  std::vector<Encoding> rows;
  for (int i = 0; i < 40; ++i) rows.push_back(Row(3, i));
  auto r = b->Submit(TaskKind::kRerank, std::move(rows), ctx);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  // The executor is free again: a later request is computed at once.
  auto next = b->Submit(TaskKind::kRerank, {Row(2, 5)}, CallContext{});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(chunks.load(), 2) << "chunks after the deadline were computed";
}

TEST(Batcher, StopsARequestBetweenChunksOnceItsCallerLeft) {
  // The caller of an oversized request is cancelled while its first chunk
  // runs: Submit returns Cancelled and none of its other chunks run.
  std::atomic<int> rows_run{0};
  std::atomic<bool> in_model{false}, release{false};
  BatcherOptions o;
  o.pad = Pad;
  o.max_batch_rows = 4;
  o.run = [&](TaskKind, int,
              const TokenBatch& b) -> absl::StatusOr<std::vector<float>> {
    in_model = true;
    while (!release.load()) absl::SleepFor(absl::Milliseconds(2));
    rows_run += b.batch;
    return std::vector<float>(b.batch, 1.0f);
  };
  auto b = *Batcher::Create(o);
  CallContext gone;
  std::vector<Encoding> many;
  for (int i = 0; i < 20; ++i) many.push_back(Row(3, i));
  absl::StatusOr<SubmitResult> a;
  std::thread ta([&] { a = b->Submit(TaskKind::kRerank, many, gone); });
  // Once the first chunk is in the model, the caller goes away.
  while (!in_model.load()) absl::SleepFor(absl::Milliseconds(2));
  gone.cancelled = true;
  ta.join();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kCancelled);
  release = true;
  auto next = b->Submit(TaskKind::kRerank, {Row(2, 5)}, CallContext{});
  ASSERT_TRUE(next.ok()) << next.status();
  // At most the chunk that was running when the caller left, plus `next`.
  EXPECT_LE(rows_run.load(), 4 + 1) << "the abandoned request's chunks ran";
}

}  // namespace
}  // namespace diffrank::encoder
