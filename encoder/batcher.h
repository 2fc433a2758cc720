// batcher.h: the dynamic batcher and device executor.
//
// One Batcher owns one device: a single executor thread is the only caller of
// the model function it is given. Callers (pipeline threads) tokenize first,
// then Submit their rows to one of three queues by task kind and block until
// their rows were computed. The executor serves the queues by priority (query
// embeds, then rerank pairs, then document embeds; a document batch that has
// waited longer than `max_starvation` goes first) and closes a batch when the
// next request would pass `max_batch_rows` rows or `max_batch_tokens` padded
// tokens (rows x longest row), or when the oldest request has waited
// `max_delay`. A request larger than a batch runs alone, in chunks.
//
// Admission: a queue holds at most `max_queue_rows` rows; a Submit beyond
// that fails at once with ResourceExhausted (never queues without bound).
// A request whose deadline passed or that was cancelled while queued is
// dropped before compute (DeadlineExceeded / Cancelled).
//
// Several models can share one executor (one device): each request names
// a model slot (0 .. kMaxModels-1) and a batch only ever holds requests of
// one slot (the oldest request's; the others keep their places).
//
// Not owned here: tokenization (the caller's thread), the model (RunFn).
// Thread-safety: Submit may be called from any number of threads.
#ifndef DIFFRANK_ENCODER_BATCHER_H_
#define DIFFRANK_ENCODER_BATCHER_H_

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/call_context.h"
#include "encoder/tokenizer.h"

namespace diffrank::encoder {

enum class TaskKind { kQueryEmbed = 0, kRerank = 1, kDocumentEmbed = 2 };
inline constexpr int kNumTaskKinds = 3;
inline constexpr int kMaxModels = 16;     // model slots per batcher
const char* TaskKindName(TaskKind kind);  // "query_embed", "rerank", ...

// BatchEvent describes one executed batch (for metrics).
struct BatchEvent {
  TaskKind kind;
  int rows = 0;
  int64_t padded_tokens = 0;
  absl::Duration compute;
  bool ok = true;
};

struct BatcherOptions {
  int max_batch_rows = 64;          // rows per batch
  int64_t max_batch_tokens = 8192;  // padded tokens (rows x longest) per batch
  absl::Duration max_delay = absl::Milliseconds(2);  // wait to fill a batch
  int max_queue_rows = 4096;                         // per queue; then refuse
  absl::Duration max_starvation = absl::Milliseconds(100);
  // Pads encodings into a batch (Tokenizer::Pad). Required.
  // Both get the task kind and the model slot of the batch.
  std::function<TokenBatch(TaskKind, int, const std::vector<Encoding>&)> pad;
  // Runs a padded batch; returns rows x width floats. Required. Called only
  // from the executor thread.
  std::function<absl::StatusOr<std::vector<float>>(TaskKind, int,
                                                   const TokenBatch&)>
      run;
  // Called on the executor thread after each batch. Optional.
  std::function<void(const BatchEvent&)> on_batch;
};

// SubmitResult holds a request's outputs (rows x width) and its queue wait.
struct SubmitResult {
  std::vector<float> values;
  int width = 0;
  absl::Duration queued;
};

class Batcher {
 public:
  static absl::StatusOr<std::unique_ptr<Batcher>> Create(
      BatcherOptions options);
  // Stops the executor; queued requests fail with Unavailable.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Submit queues `rows` and blocks until they are computed (or refused,
  // expired, cancelled). Rows keep their order in the result. `model` is
  // the slot passed to pad and run (InvalidArgument outside 0..kMaxModels-1).
  absl::StatusOr<SubmitResult> Submit(TaskKind kind, std::vector<Encoding> rows,
                                      const CallContext& ctx, int model = 0);

  // QueueRows is the number of rows waiting in a queue now.
  int QueueRows(TaskKind kind) const;

 private:
  struct Request;
  explicit Batcher(BatcherOptions options);
  void Loop();
  // Picks the queue to serve and moves a batch out of it; mu_ held.
  std::vector<std::shared_ptr<Request>> TakeBatchLocked(TaskKind kind);
  int PickQueueLocked(absl::Time now) const;
  void Execute(TaskKind kind, int model,
               std::vector<std::shared_ptr<Request>> batch);

  const BatcherOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::array<std::deque<std::shared_ptr<Request>>, kNumTaskKinds> queues_;
  std::array<int, kNumTaskKinds> queued_rows_{};
  bool stopping_ = false;
  std::thread executor_;
};

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_BATCHER_H_
