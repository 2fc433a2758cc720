// crash_writer: the child of crash_test. Upserts batches into a collection
// forever and prints a line after each acknowledged write, so a parent that
// kills it with SIGKILL knows exactly what was acknowledged:
//   ACK <batch>            batch <batch> (10 documents) was upserted
//   SNAP-BEGIN / SNAP-END  around an explicit snapshot
//   READY                  the collection is open (recovery done)
// Usage: crash_writer DIR FIRST_BATCH
// Document ids, texts and vectors are pure functions of (batch, i), see
// crash_common.h, so the parent can verify content without shared state.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "index/collection.h"
#include "tests/index/crash_common.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: crash_writer DIR FIRST_BATCH\n";
    return 2;
  }
  namespace di = diffrank::index;
  di::CollectionOptions o = diffrank::crash::Options(argv[1]);
  auto c = di::Collection::Open(o);
  if (!c.ok() && c.status().code() == absl::StatusCode::kNotFound) {
    c = di::Collection::Create(o);
  }
  if (!c.ok()) {
    std::cerr << c.status() << "\n";
    return 1;
  }
  std::printf("READY\n");
  std::fflush(stdout);
  for (int64_t batch = std::atoll(argv[2]);; ++batch) {
    absl::Status st = (*c)->Upsert(diffrank::crash::Batch(batch));
    if (!st.ok()) {
      std::cerr << st << "\n";
      return 1;
    }
    std::printf("ACK %lld\n", static_cast<long long>(batch));
    std::fflush(stdout);
    if (batch % 15 == 0) {
      std::printf("SNAP-BEGIN\n");
      std::fflush(stdout);
      st = (*c)->Snapshot();
      if (!st.ok()) {
        std::cerr << st << "\n";
        return 1;
      }
      std::printf("SNAP-END\n");
      std::fflush(stdout);
    }
  }
}
