// worker_pool.h: a fixed pool of threads that run request pipelines.
//
// gRPC callback handlers never block: they hand the (blocking) pipeline call
// to this pool and return. TrySubmit refuses at once when `max_pending`
// tasks already wait, which the handler turns into RESOURCE_EXHAUSTED.
// Shutdown runs every queued task, then joins. Thread-safety: thread-safe.
#ifndef DIFFRANK_SERVICE_WORKER_POOL_H_
#define DIFFRANK_SERVICE_WORKER_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace diffrank::service {

class WorkerPool {
 public:
  WorkerPool(int threads, int max_pending) : max_pending_(max_pending) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] { Run(); });
    }
  }
  ~WorkerPool() { Shutdown(); }

  // TrySubmit queues `task`; false when the queue is full or shut down.
  bool TrySubmit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_ || static_cast<int>(tasks_.size()) >= max_pending_) {
        return false;
      }
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }

  void Shutdown() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void Run() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopping and drained
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  const int max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_WORKER_POOL_H_
