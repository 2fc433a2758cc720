// collections_test.cc: the named collections of a data directory under
// operator mistakes and concurrent admin calls (issue 12): a second opener of
// the same directory, a collection that cannot be opened, and drop/re-create
// of one name while writes and searches run.
#include "pipeline/collections.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace diffrank::pipeline {
namespace {

namespace fs = std::filesystem;
constexpr int kDim = 8;

class CollectionsTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) /
           absl::StrCat(
               "collections_", getpid(), "_",
               testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  CollectionsOptions Options() const {
    CollectionsOptions o;
    o.data_dir = dir_.string();
    o.model_id = "m";
    o.dimension = kDim;
    o.collection.sync_full = false;
    return o;
  }
  static index::Document Doc(const std::string& id, std::mt19937& rng) {
    std::normal_distribution<float> n;
    index::Document d;
    d.id = id;
    d.text = "word " + id;
    d.vector.resize(kDim);
    for (float& x : d.vector) x = n(rng);
    return d;
  }
  fs::path dir_;
};

TEST_F(CollectionsTest, ASecondOpenerOfTheDataDirIsRefused) {
  auto first = Collections::Open(Options());
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Collections::Open(Options());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another diffrank"),
            std::string::npos)
      << second.status();
  EXPECT_NE(second.status().message().find(absl::StrCat(getpid())),
            std::string::npos);
  first->reset();
  EXPECT_TRUE(Collections::Open(Options()).ok());
}

TEST_F(CollectionsTest, ACollectionThatCannotOpenIsSetAsideNotFatal) {
  {
    auto c = *Collections::Open(Options());
    ASSERT_TRUE(c->Create("good", "Flat").ok());
    ASSERT_TRUE(c->Create("bad", "Flat").ok());
    ASSERT_TRUE(c->Create("garbage", "Flat").ok());
  }
  // An index string this version refuses (HNSW0 crash-looped restarts),
  // and a manifest that is not JSON.
  std::ofstream(dir_ / "bad" / "manifest.json")
      << R"({"format_version": 1, "model_id": "m", "dimension": 8, )"
         R"("metric": "ip", "factory": "HNSW0", "documents": 0})";
  std::ofstream(dir_ / "garbage" / "manifest.json") << "{not json";
  auto c = Collections::Open(Options());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE((*c)->Get("good").ok());
  for (const char* name : {"bad", "garbage"}) {
    auto st = (*c)->Get(name).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << name;
    EXPECT_NE(st.message().find("unavailable"), std::string::npos) << st;
    EXPECT_EQ((*c)->Create(name, "Flat").status().code(),
              absl::StatusCode::kAlreadyExists);
  }
  EXPECT_EQ((*c)->List().size(), 1u);
  EXPECT_EQ((*c)->Unavailable().size(), 2u);
  ASSERT_TRUE((*c)->Drop("bad").ok());
  EXPECT_EQ((*c)->Get("bad").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE((*c)->Create("bad", "HNSW32").ok());
  // Another model's collection still refuses the start.
  CollectionsOptions other = Options();
  other.model_id = "other-model";
  c->reset();
  EXPECT_EQ(Collections::Open(other).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CollectionsTest, DropAndRecreateWhileWritingLosesNothingAcknowledged) {
  auto cs = *Collections::Open(Options());
  ASSERT_TRUE(cs->Create("c", "Flat").ok());
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> unexpected;
  auto expect_code = [&](const absl::Status& s, const char* what) {
    if (s.ok() || s.code() == absl::StatusCode::kNotFound ||
        s.code() == absl::StatusCode::kAlreadyExists) {
      return;
    }
    std::lock_guard<std::mutex> l(mu);
    unexpected.push_back(absl::StrCat(what, ": ", s.ToString()));
  };
  // Acknowledged writes, by the collection object they went to.
  std::vector<std::pair<std::shared_ptr<index::Collection>, std::string>> acked;
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937 rng(w);
      for (int i = 0; !stop; ++i) {
        auto col = cs->Get("c");
        expect_code(col.status(), "get");
        if (!col.ok()) continue;
        std::vector<index::Document> docs;
        for (int k = 0; k < 5; ++k)
          docs.push_back(Doc(absl::StrCat(w, "-", i, "-", k), rng));
        absl::Status s = (*col)->Upsert(docs);
        expect_code(s, "upsert");
        if (s.ok()) {
          std::lock_guard<std::mutex> l(mu);
          for (const auto& d : docs) acked.emplace_back(*col, d.id);
        }
      }
    });
  }
  threads.emplace_back([&] {
    std::mt19937 rng(9);
    index::SearchOptions o;
    while (!stop) {
      auto col = cs->Get("c");
      if (!col.ok()) continue;
      expect_code((*col)->SearchDense(Doc("q", rng).vector, o).status(),
                  "dense");
      expect_code((*col)->SearchLexical("word", o).status(), "lexical");
    }
  });
  threads.emplace_back([&] {
    for (int i = 0; i < 30; ++i) {
      expect_code(cs->Drop("c"), "drop");
      expect_code(cs->Create("c", i % 2 ? "HNSW16" : "Flat").status(),
                  "create");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop = true;
  });
  for (auto& t : threads) t.join();
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  // Everything acknowledged by the final collection object is there.
  auto final_col = *cs->Get("c");
  std::vector<std::string> want;
  for (const auto& [col, id] : acked)
    if (col == final_col) want.push_back(id);
  EXPECT_EQ(static_cast<int64_t>((*final_col->Get(want)).size()),
            static_cast<int64_t>(want.size()));
  final_col.reset();
  acked.clear();
  // After a restart the collection is consistent: as many live vectors as
  // documents, each found by its own vector.
  cs.reset();
  cs = *Collections::Open(Options());
  auto col = *cs->Get("c");
  const index::CollectionStats st = col->Stats();
  EXPECT_EQ(st.index_vectors - st.dead_vectors, st.documents);
  EXPECT_EQ(st.documents, static_cast<int64_t>(want.size()));
  std::vector<std::string> some(
      want.begin(), want.begin() + std::min<size_t>(want.size(), 20));
  index::SearchOptions top1;
  top1.top_k = 1;
  auto stored = col->Get(some, /*with_vectors=*/true);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->size(), some.size());
  for (const auto& d : *stored) {
    auto hits = col->SearchDense(d.vector, top1);
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].id, d.id);
  }
  // No trash left behind.
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename().string().rfind(".dropped-", 0),
              std::string::npos)
        << e.path();
  }
}

TEST_F(CollectionsTest, PublishSwapsInABuiltVersionWhileSearchesRun) {
  auto cs = *Collections::Open(Options());
  std::mt19937 rng(5);
  // Builds a version in the staging directory, as the offline indexer does.
  auto build = [&](const std::string& version, const std::string& prefix,
                   const std::string& model) {
    index::CollectionOptions o;
    o.dir = (fs::path(cs->StagingDir()) / version).string();
    o.model_id = model;
    o.dimension = kDim;
    o.sync_full = false;
    auto c = *index::Collection::Create(o);
    std::vector<index::Document> docs;
    for (int i = 0; i < 50; ++i)
      docs.push_back(Doc(absl::StrCat(prefix, i), rng));
    EXPECT_TRUE(c->Upsert(docs).ok());
  };
  EXPECT_EQ(cs->Publish("c", "../etc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cs->Publish("c", "nothing").status().code(),
            absl::StatusCode::kNotFound);
  build("v1", "old", "m");
  auto first = cs->Publish("c", "v1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->stats.documents, 50);
  auto old = *cs->Get("c");
  build("v2", "new", "m");
  build("alien", "x", "another-model");
  EXPECT_EQ(cs->Publish("c", "alien").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*cs->Get("c"))->Get({"old0"})->size() == 1);
  // Searches run throughout the switch; none may fail.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, searches{0};
  std::thread reader([&] {
    std::mt19937 r(9);
    index::SearchOptions o;
    while (!stop) {
      auto col = cs->Get("c");
      if (!col.ok()) {
        ++failures;
        continue;
      }
      if (!(*col)->SearchDense(Doc("q", r).vector, o).ok()) ++failures;
      if (!(*col)->SearchLexical("word", o).ok()) ++failures;
      ++searches;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto second = cs->Publish("c", "v2");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  reader.join();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(failures, 0);
  EXPECT_GT(searches, 10);
  // The old object still answers reads, refuses writes.
  index::SearchOptions o;
  EXPECT_TRUE(old->SearchLexical("word", o).ok());
  EXPECT_EQ(old->Upsert({Doc("late", rng)}).code(),
            absl::StatusCode::kNotFound);
  old.reset();
  auto live = *cs->Get("c");
  EXPECT_EQ(live->Get({"new0", "old0"})->size(), 1u);
  EXPECT_FALSE(fs::exists(fs::path(cs->StagingDir()) / "v2"));
  // A restart serves the new version.
  live.reset();
  cs.reset();
  cs = *Collections::Open(Options());
  EXPECT_EQ((*cs->Get("c"))->Stats().documents, 50);
  EXPECT_EQ((*cs->Get("c"))->Get({"new7"})->size(), 1u);
}

// A staging directory on another file system (the volume a bulk-indexing Job
// shares with a shard): Publish copies the version next to the collections,
// switches to it, and removes both copies of the staged files.
TEST_F(CollectionsTest, PublishFromAnotherFileSystemCopiesThenSwitches) {
  const fs::path shm = "/dev/shm";
  struct stat a, b;
  fs::create_directories(dir_);
  if (::stat(shm.c_str(), &a) != 0 || ::stat(dir_.c_str(), &b) != 0 ||
      a.st_dev == b.st_dev) {
    GTEST_SKIP() << "no second file system (/dev/shm) here";
  }
  auto cs = *Collections::Open(Options());
  const fs::path elsewhere =
      shm / absl::StrCat("diffrank-staging-", ::getpid());
  fs::remove_all(elsewhere);
  fs::create_directories(elsewhere);
  fs::remove_all(cs->StagingDir());
  fs::create_directory_symlink(elsewhere, cs->StagingDir());
  std::mt19937 rng(3);
  for (const std::string version : {"v1", "v2"}) {
    index::CollectionOptions o;
    o.dir = (elsewhere / version).string();
    o.model_id = "m";
    o.dimension = kDim;
    auto c = *index::Collection::Create(o);
    std::vector<index::Document> docs;
    for (int i = 0; i < 20; ++i)
      docs.push_back(Doc(version + "-" + std::to_string(i), rng));
    ASSERT_TRUE(c->Upsert(docs).ok());
  }
  auto first = cs->Publish("c", "v1");
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = cs->Publish("c", "v2");  // replaces a live version too
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->stats.documents, 20);
  auto col = *cs->Get("c");
  EXPECT_EQ(col->Get({"v2-0", "v1-0"})->size(), 1u);
  EXPECT_FALSE(fs::exists(elsewhere / "v1"));
  EXPECT_FALSE(fs::exists(elsewhere / "v2"));
  EXPECT_FALSE(fs::exists(dir_ / ".incoming" / "v2"));
  // It survives a reopen (the copy was made durable before the switch).
  col.reset();
  cs.reset();
  auto again = *Collections::Open(Options());
  EXPECT_EQ((*again->Get("c"))->Stats().documents, 20);
  fs::remove_all(elsewhere);
}

}  // namespace
}  // namespace diffrank::pipeline
