// Crash test (ctest label slow): a child process (crash_writer) upserts
// continuously and is killed with SIGKILL at random moments, some of them
// while it writes a FAISS snapshot. After each kill the collection is
// reopened (recovery) and checked: every acknowledged document is present
// with its exact content and is found by both retrievers; the batch in flight
// is all there or not there at all; nothing else is.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/index/crash_common.h"

namespace diffrank::crash {
namespace {

struct Child {
  pid_t pid;
  FILE* out;
};

Child Spawn(const std::string& writer, const std::string& dir, int64_t first) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    const std::string f = std::to_string(first);
    execl(writer.c_str(), writer.c_str(), dir.c_str(), f.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  return {pid, fdopen(fds[0], "r")};
}

TEST(CrashTest, AcknowledgedWritesSurviveSigkill) {
  const char* writer = std::getenv("CRASH_WRITER");
  ASSERT_NE(writer, nullptr) << "set CRASH_WRITER to the crash_writer binary";
  const std::string dir =
      testing::TempDir() + "/crash_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::mt19937 rng(20261128);
  int64_t next_batch = 1, acked_through = 0;
  int trials = 0, during_snapshot = 0;
  for (; trials < 24; ++trials) {
    Child child = Spawn(writer, dir, next_batch);
    // Wait for recovery to finish, then let it write for a random while.
    // Every fourth trial is killed right after a snapshot starts.
    const bool at_snapshot = trials % 4 == 3;
    const auto run_for = std::chrono::milliseconds(
        std::uniform_int_distribution<int>(30, 400)(rng));
    auto start = std::chrono::steady_clock::time_point::max();
    bool in_snapshot = false;
    char line[128];
    while (std::fgets(line, sizeof(line), child.out) != nullptr) {
      const std::string l(line);
      if (l == "READY\n") start = std::chrono::steady_clock::now();
      if (l.rfind("ACK ", 0) == 0) acked_through = std::atoll(l.c_str() + 4);
      in_snapshot = l == "SNAP-BEGIN\n" ? true
                    : l == "SNAP-END\n" ? false
                                        : in_snapshot;
      if (at_snapshot ? in_snapshot &&
                            std::chrono::steady_clock::now() > start + run_for
                      : std::chrono::steady_clock::now() > start + run_for) {
        break;
      }
    }
    kill(child.pid, SIGKILL);
    int status = 0;
    waitpid(child.pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited on its own: " << status;
    // Acks already in the pipe were acknowledged before the kill.
    while (std::fgets(line, sizeof(line), child.out) != nullptr) {
      const std::string l(line);
      if (l.rfind("ACK ", 0) == 0) acked_through = std::atoll(l.c_str() + 4);
      if (l == "SNAP-BEGIN\n") in_snapshot = true;
      if (l == "SNAP-END\n") in_snapshot = false;
    }
    fclose(child.out);
    during_snapshot += in_snapshot;

    // Recover and verify.
    auto c = index::Collection::Open(Options(dir));
    ASSERT_TRUE(c.ok()) << c.status();
    const int64_t in_flight = acked_through + 1;
    int64_t present_in_flight = 0;
    for (int64_t b = 1; b <= in_flight; ++b) {
      std::vector<std::string> ids;
      for (int i = 0; i < kPerBatch; ++i) ids.push_back(Id(b, i));
      auto docs = (*c)->Get(ids, /*with_vectors=*/true);
      ASSERT_TRUE(docs.ok()) << docs.status();
      if (b == in_flight) {
        present_in_flight = docs->size();
        ASSERT_TRUE(docs->empty() || docs->size() == ids.size())
            << "batch " << b << " half-written: " << docs->size();
      } else {
        ASSERT_EQ(docs->size(), ids.size())
            << "acknowledged batch " << b << " lost";
      }
      for (const index::Document& d : *docs) {
        const int64_t version = nlohmann::json::parse(d.metadata)["version"];
        ASSERT_EQ(d.text, Text(d.id, version)) << d.id;
        const std::vector<float> want = Vector(d.id, version);
        for (int k = 0; k < kDim; ++k)
          ASSERT_NEAR(d.vector[k], want[k], 1e-6) << d.id;
      }
    }
    // Both retrievers find a sample of acknowledged documents.
    index::SearchOptions o;
    o.top_k = 1;
    o.knobs.ef_search = 256;
    for (int probe = 0; probe < 20 && acked_through > 0; ++probe) {
      const int64_t b =
          std::uniform_int_distribution<int64_t>(1, acked_through)(rng);
      const int i = 1 + probe % (kPerBatch - 1);  // i > 0: never replaced
      const std::string id = Id(b, i);
      auto dense = (*c)->SearchDense(Vector(id, b), o);
      ASSERT_TRUE(dense.ok() && dense->size() == 1 && (*dense)[0].id == id)
          << "dense search lost " << id;
      auto lex = (*c)->SearchLexical(absl::StrCat("uid", id), o);
      ASSERT_TRUE(lex.ok() && lex->size() == 1 && (*lex)[0].id == id)
          << "lexical search lost " << id;
    }
    EXPECT_EQ((*c)->Stats().documents,
              (acked_through + (present_in_flight ? 1 : 0)) * kPerBatch);
    // Continue after whatever was committed.
    next_batch = present_in_flight ? in_flight + 1 : in_flight;
    acked_through = next_batch - 1;
  }
  std::printf(
      "%d kills, %d of them during a snapshot; %lld batches acknowledged\n",
      trials, during_snapshot, static_cast<long long>(acked_through));
  EXPECT_GE(trials, 20);
  EXPECT_GE(during_snapshot, 3);
}

}  // namespace
}  // namespace diffrank::crash
