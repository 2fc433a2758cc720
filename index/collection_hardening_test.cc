// collection_hardening_test.cc: regression tests for the failures an outside
// probe found (issue 12) at the index layer: factory strings that crashed or
// hung FAISS, a refused factory in an existing manifest, metadata nested
// deep enough to poison filtered queries, a dropped collection writing into
// its directory afterwards, and SQL text in error messages.
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "index/collection.h"
#include "index/sqlite_db.h"
#include "index/test_util.h"

namespace diffrank::index {
namespace {

namespace fs = std::filesystem;
using testing_util::Doc;
using testing_util::Opts;
using testing_util::RandomVector;
using testing_util::TempDir;

TEST(Hardening, ProbeFactoryStringsWorkOrAreRefused) {
  std::mt19937 rng(1);
  // Crashed at create (trained on zero vectors): now serve Flat until 1000.
  for (const char* f : {"SQ8", "SQ4", "HNSW32,SQ8"}) {
    const std::string dir = TempDir(absl::StrCat("sq", std::string(f).size()));
    auto c = Collection::Create(Opts(dir, 8, f));
    ASSERT_TRUE(c.ok()) << f << ": " << c.status();
    std::vector<float> v = RandomVector(rng, 8);
    ASSERT_TRUE((*c)->Upsert({Doc("a", "alpha", v),
                              Doc("b", "beta", RandomVector(rng, 8))})
                    .ok());
    SearchOptions o;
    o.top_k = 1;
    auto hits = (*c)->SearchDense(v, o);
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].id, "a");
    EXPECT_EQ((*c)->Stats().active_factory, "Flat");
    c->reset();
    EXPECT_TRUE(Collection::Open(Opts(dir)).ok()) << f;
  }
  // Crashed, hung or failed INTERNAL later: now InvalidArgument, no files.
  for (const char* f : {"PQ0", "OPQ0,PQ0", "HNSW0", "NSG32", "IVF0,Flat",
                        "HNSW1", "PCA8,Flat", "RQ1x8"}) {
    const std::string dir = TempDir("refused");
    auto st = Collection::Create(Opts(dir, 8, f)).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << f;
    EXPECT_FALSE(fs::exists(dir + "/manifest.json")) << f;
  }
}

TEST(Hardening, RefusedFactoryInAnExistingManifestFailsOpenCleanly) {
  // A collection made before the grammar existed (e.g. "HNSW0", which
  // crashed every restart) must be refused at open, not crash.
  const std::string dir = TempDir("oldfactory");
  ASSERT_TRUE(Collection::Create(Opts(dir)).ok());
  std::string text;
  {
    std::ifstream in(dir + "/manifest.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  text = absl::StrReplaceAll(text, {{"\"Flat\"", "\"HNSW0\""}});
  std::ofstream(dir + "/manifest.json") << text;
  auto st = Collection::Open(Opts(dir)).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("HNSW0"), std::string::npos) << st;
}

TEST(Hardening, DeeplyNestedMetadataIsRefusedAndCannotPoisonFilters) {
  std::mt19937 rng(2);
  auto c = *Collection::Create(Opts(TempDir("nested")));
  std::string deep = "1";
  for (int i = 0; i < 2000; ++i) deep = "[" + deep + "]";
  auto st = c->Upsert({Doc("x", "t", RandomVector(rng, 8),
                           absl::StrCat(R"({"a": )", deep, "}"))});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("documents[0].metadata"), std::string::npos);
  // Brackets inside strings do not count; 32 levels are fine.
  std::string ok = "1";
  for (int i = 0; i < 31; ++i) ok = "[" + ok + "]";
  ASSERT_TRUE(
      c->Upsert(
           {Doc("y", "t", RandomVector(rng, 8),
                absl::StrCat(
                    R"({"a": )", ok,
                    R"(, "s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})"))})
          .ok());
  auto f = ParseFilterJson(R"({"field": "s", "eq": "x"})");
  SearchOptions o;
  o.filter = &*f;
  EXPECT_TRUE(c->SearchLexical("t", o).ok());
  EXPECT_TRUE(c->DeleteByFilter(*f).ok());
}

TEST(Hardening, ADroppedCollectionNeverWritesAgain) {
  std::mt19937 rng(3);
  const std::string dir = TempDir("dropped");
  auto old = *Collection::Create(Opts(dir));
  ASSERT_TRUE(old->Upsert({Doc("a", "t", RandomVector(rng, 8))}).ok());
  old->MarkDropped();
  std::vector<float> v = RandomVector(rng, 8);
  EXPECT_EQ(old->Upsert({Doc("b", "t", v)}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(old->Delete({"a"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(old->Snapshot().code(), absl::StatusCode::kNotFound);
  SearchOptions o;
  EXPECT_EQ(old->SearchDense(v, o).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(old->SearchLexical("t", o).status().code(),
            absl::StatusCode::kNotFound);
  // A new collection takes the directory; the old object's teardown must
  // not write its snapshot there (issue 12: 5 documents, 556 vectors).
  fs::rename(dir, dir + ".trash");
  auto fresh = *Collection::Create(Opts(dir));
  ASSERT_TRUE(fresh->Upsert({Doc("new", "t", v)}).ok());
  fresh.reset();
  old.reset();
  auto back = *Collection::Open(Opts(dir));
  EXPECT_EQ(back->Stats().documents, 1);
  EXPECT_EQ(back->Stats().index_vectors, 1);
  EXPECT_EQ(back->Stats().snapshots_rebuilt, 0);
}

TEST(Hardening, SqliteErrorsDoNotCarryTheSql) {
  const std::string dir = TempDir("sqlerr");
  fs::create_directories(dir);
  Db::Options o;
  o.create = true;
  auto db = *Db::Open(dir + "/x.sqlite", o);
  auto st = db->Prepare("SELECT secret_column_name FROM t WHERE 1").status();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().find("secret_column_name FROM"), std::string::npos)
      << st;
  EXPECT_NE(st.message().find("SELECT statement"), std::string::npos) << st;
}

}  // namespace
}  // namespace diffrank::index
