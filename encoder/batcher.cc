// batcher.cc: queues, batch assembly and the executor loop (batcher.h).
#include "encoder/batcher.h"

#include <algorithm>
#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace diffrank::encoder {

const char* TaskKindName(TaskKind kind) {
  switch (kind) {
    case TaskKind::kQueryEmbed:
      return "query_embed";
    case TaskKind::kRerank:
      return "rerank";
    case TaskKind::kDocumentEmbed:
      return "document_embed";
  }
  return "unknown";
}

struct Batcher::Request {
  std::vector<Encoding> rows;
  int model = 0;  // slot
  int longest = 0;
  absl::Time deadline;
  absl::Time enqueued;
  std::atomic<bool> abandoned{false};  // the caller stopped waiting (cancel)
  std::promise<absl::StatusOr<SubmitResult>> done;
};

absl::StatusOr<std::unique_ptr<Batcher>> Batcher::Create(
    BatcherOptions options) {
  if (!options.pad || !options.run) {
    return absl::InvalidArgumentError("batcher: pad and run are required");
  }
  if (options.max_batch_rows < 1 || options.max_batch_tokens < 1 ||
      options.max_queue_rows < 1) {
    return absl::InvalidArgumentError(
        "batcher: max_batch_rows, max_batch_tokens and max_queue_rows must "
        "be positive");
  }
  return std::unique_ptr<Batcher>(new Batcher(std::move(options)));
}

Batcher::Batcher(BatcherOptions options) : options_(std::move(options)) {
  executor_ = std::thread([this] { Loop(); });
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  executor_.join();
}

int Batcher::QueueRows(TaskKind kind) const {
  std::lock_guard<std::mutex> l(mu_);
  return queued_rows_[static_cast<int>(kind)];
}

absl::StatusOr<SubmitResult> Batcher::Submit(TaskKind kind,
                                             std::vector<Encoding> rows,
                                             const CallContext& ctx,
                                             int model) {
  if (model < 0 || model >= kMaxModels) {
    return absl::InvalidArgumentError(
        absl::StrCat("batcher: model slot ", model, " out of range"));
  }
  if (rows.empty()) return SubmitResult{};
  if (absl::Status s = ctx.Check(TaskKindName(kind)); !s.ok()) return s;
  auto req = std::make_shared<Request>();
  req->deadline = ctx.deadline;
  req->model = model;
  for (const Encoding& e : rows) {
    req->longest = std::max<int>(req->longest, e.ids.size());
  }
  req->rows = std::move(rows);
  std::future<absl::StatusOr<SubmitResult>> future = req->done.get_future();
  const int k = static_cast<int>(kind);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return absl::UnavailableError("batcher is stopping");
    const int n = static_cast<int>(req->rows.size());
    if (queued_rows_[k] + n > options_.max_queue_rows) {
      return absl::ResourceExhaustedError(absl::StrCat(
          TaskKindName(kind), " queue is full (", queued_rows_[k], " of ",
          options_.max_queue_rows, " rows waiting); retry with backoff"));
    }
    queued_rows_[k] += n;
    req->enqueued = absl::Now();
    queues_[k].push_back(req);
  }
  cv_.notify_one();
  // Wait, waking now and then to notice the deadline or a cancellation.
  while (future.wait_for(std::chrono::milliseconds(20)) !=
         std::future_status::ready) {
    if (absl::Status s = ctx.Check(TaskKindName(kind)); !s.ok()) {
      req->abandoned.store(true);
      // The executor may have finished it meanwhile; prefer its result.
      if (future.wait_for(std::chrono::seconds(0)) ==
          std::future_status::ready) {
        break;
      }
      return s;
    }
  }
  return future.get();
}

int Batcher::PickQueueLocked(absl::Time now) const {
  const auto& docs = queues_[static_cast<int>(TaskKind::kDocumentEmbed)];
  if (!docs.empty() && now - docs.front()->enqueued > options_.max_starvation) {
    return static_cast<int>(TaskKind::kDocumentEmbed);
  }
  for (int k = 0; k < kNumTaskKinds; ++k) {
    if (!queues_[k].empty()) return k;
  }
  return -1;
}

std::vector<std::shared_ptr<Batcher::Request>> Batcher::TakeBatchLocked(
    TaskKind kind) {
  const int k = static_cast<int>(kind);
  std::deque<std::shared_ptr<Request>>& q = queues_[k];
  std::vector<std::shared_ptr<Request>> batch;
  if (q.empty()) return batch;
  // The oldest request's model; requests of other models keep their places.
  const int model = q.front()->model;
  int rows = 0, longest = 0;
  for (auto it = q.begin(); it != q.end();) {
    const std::shared_ptr<Request>& r = *it;
    if (r->model != model) {
      ++it;
      continue;
    }
    const int n = static_cast<int>(r->rows.size());
    const int l = std::max(longest, r->longest);
    if (!batch.empty() && (rows + n > options_.max_batch_rows ||
                           int64_t{rows + n} * l > options_.max_batch_tokens)) {
      break;
    }
    rows += n;
    longest = l;
    queued_rows_[k] -= n;
    batch.push_back(r);
    it = q.erase(it);
  }
  return batch;
}

void Batcher::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] {
      return stopping_ || std::any_of(queues_.begin(), queues_.end(),
                                      [](const auto& q) { return !q.empty(); });
    });
    if (stopping_) break;
    const absl::Time now = absl::Now();
    const int k = PickQueueLocked(now);
    // Wait up to max_delay after the oldest request for the batch to fill.
    const auto& q = queues_[k];
    int rows = 0, longest = 0;
    for (const auto& r : q) {
      rows += static_cast<int>(r->rows.size());
      longest = std::max(longest, r->longest);
    }
    const bool full = rows >= options_.max_batch_rows ||
                      int64_t{rows} * longest >= options_.max_batch_tokens;
    const absl::Time close = q.front()->enqueued + options_.max_delay;
    if (!full && now < close) {
      cv_.wait_until(l, absl::ToChronoTime(close));
      continue;
    }
    const int model = q.front()->model;
    std::vector<std::shared_ptr<Request>> batch =
        TakeBatchLocked(static_cast<TaskKind>(k));
    l.unlock();
    Execute(static_cast<TaskKind>(k), model, std::move(batch));
    l.lock();
  }
  for (auto& q : queues_) {
    for (auto& r : q) {
      r->done.set_value(absl::UnavailableError("server is shutting down"));
    }
    q.clear();
  }
}

void Batcher::Execute(TaskKind kind, int model,
                      std::vector<std::shared_ptr<Request>> batch) {
  const absl::Time start = absl::Now();
  // Drop what expired, was cancelled or abandoned while queued.
  std::vector<std::shared_ptr<Request>> live;
  for (auto& r : batch) {
    if (r->abandoned.load()) continue;  // its caller already returned
    if (start >= r->deadline) {
      r->done.set_value(absl::DeadlineExceededError(absl::StrCat(
          "deadline passed while queued for ", TaskKindName(kind))));
      continue;
    }
    live.push_back(std::move(r));
  }
  if (live.empty()) return;
  // Flatten, then run in chunks that respect the batch limits (one chunk
  // unless the rows exceed a batch). Chunks follow the rows sorted by
  // length, so each pads to a similar length (length bucketing: a 256-row
  // upsert of mixed texts pads far less); outputs go back to row order.
  std::vector<const Encoding*> rows;
  std::vector<int> owner;  // index into `live` of each row
  for (size_t j = 0; j < live.size(); ++j) {
    for (const Encoding& e : live[j]->rows) {
      rows.push_back(&e);
      owner.push_back(static_cast<int>(j));
    }
  }
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return rows[a]->ids.size() < rows[b]->ids.size();
  });
  // A request that expires or is abandoned while its rows are computed stops
  // at the next chunk: its remaining rows are skipped (a timed-out 200-pair
  // rerank no longer holds the executor for every other caller).
  std::vector<char> dead(live.size(), 0);
  int alive = static_cast<int>(live.size());
  auto reap = [&] {
    const absl::Time now = absl::Now();
    for (size_t j = 0; j < live.size(); ++j) {
      if (dead[j]) continue;
      if (live[j]->abandoned.load()) {
        dead[j] = 1;
      } else if (now >= live[j]->deadline) {
        dead[j] = 1;
        live[j]->done.set_value(absl::DeadlineExceededError(absl::StrCat(
            "deadline passed while computing ", TaskKindName(kind))));
      } else {
        continue;
      }
      --alive;
    }
  };
  std::vector<float> out;
  int width = 0;
  absl::Status status;
  size_t begin = 0;
  bool first = true;
  while (status.ok()) {
    if (!first) reap();  // the first chunk was checked just above
    first = false;
    while (begin < rows.size() && dead[owner[order[begin]]]) ++begin;
    if (begin >= rows.size() || alive == 0) break;
    std::vector<size_t> picked;  // positions in `order` of this chunk's rows
    size_t end = begin;
    size_t longest = 0;
    while (end < rows.size()) {
      if (dead[owner[order[end]]]) {
        ++end;
        continue;
      }
      const size_t l = std::max(longest, rows[order[end]]->ids.size());
      const size_t n = picked.size() + 1;
      if (!picked.empty() &&
          (static_cast<int>(n) > options_.max_batch_rows ||
           static_cast<int64_t>(n * l) > options_.max_batch_tokens)) {
        break;
      }
      longest = l;
      picked.push_back(end);
      ++end;
    }
    std::vector<Encoding> chunk;
    chunk.reserve(picked.size());
    for (size_t p : picked) chunk.push_back(*rows[order[p]]);
    const TokenBatch tb = options_.pad(kind, model, chunk);
    const absl::Time t0 = absl::Now();
    absl::StatusOr<std::vector<float>> v = options_.run(kind, model, tb);
    BatchEvent ev{kind, tb.batch, tb.padded_tokens(), absl::Now() - t0, v.ok()};
    if (options_.on_batch) options_.on_batch(ev);
    if (!v.ok()) {
      status = v.status();
      break;
    }
    const int w = tb.batch > 0 ? static_cast<int>(v->size()) / tb.batch : 0;
    if (width == 0) {
      width = w;
      out.assign(rows.size() * size_t(w), 0.0f);
    }
    if (w != width || v->size() != size_t(w) * tb.batch) {
      status = absl::InternalError("model returned a malformed batch");
      break;
    }
    for (size_t c = 0; c < picked.size(); ++c) {
      std::copy_n(v->begin() + c * w, w,
                  out.begin() + order[picked[c]] * size_t(w));
    }
    begin = end;
  }
  size_t offset = 0;
  for (size_t j = 0; j < live.size(); ++j) {
    auto& r = live[j];
    const size_t n = r->rows.size() * size_t(width);
    const size_t at = offset;
    offset += n;
    if (dead[j]) continue;  // answered (or abandoned) above
    if (!status.ok()) {
      r->done.set_value(status);
      continue;
    }
    SubmitResult res;
    res.width = width;
    res.values.assign(out.begin() + at, out.begin() + at + n);
    res.queued = start - r->enqueued;
    r->done.set_value(std::move(res));
  }
}

}  // namespace diffrank::encoder
