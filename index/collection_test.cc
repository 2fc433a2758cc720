// Tests of Collection on real SQLite files and real FAISS indexes in
// temporary directories.
#include "index/collection.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "index/test_util.h"

namespace diffrank::index {
namespace {

namespace fs = std::filesystem;
using testing_util::Doc;
using testing_util::Opts;
using testing_util::RandomVector;
using testing_util::TempDir;

std::vector<std::string> Ids(const std::vector<Hit>& hits) {
  std::vector<std::string> out;
  for (const Hit& h : hits) out.push_back(h.id);
  return out;
}

TEST(Collection, CreateOpenAndRefuseMismatches) {
  const std::string dir = TempDir("lifecycle");
  {
    auto c = Collection::Create(Opts(dir));
    ASSERT_TRUE(c.ok()) << c.status();
  }
  EXPECT_EQ(Collection::Create(Opts(dir)).status().code(),
            absl::StatusCode::kAlreadyExists);
  CollectionOptions other = Opts(dir);
  other.model_id = "another-model";
  auto st = Collection::Open(other).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("another-model"), std::string::npos);
  EXPECT_EQ(Collection::Open(Opts(dir, 16)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Collection::Open(Opts(TempDir("absent"))).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(Collection::Open(Opts(dir)).ok());
  EXPECT_EQ(Collection::Create(Opts(TempDir("badfactory"), 8, "HNSW-banana"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* f : {"docs.sqlite", "manifest.json", "vectors.faiss"}) {
    EXPECT_TRUE(fs::exists(dir + "/" + f)) << f;
  }
}

TEST(Collection, UpsertReplaceDeleteVisibleToBothRetrievers) {
  std::mt19937 rng(1);
  auto c = *Collection::Create(Opts(TempDir("crud")));
  auto va = RandomVector(rng, 8), vb = RandomVector(rng, 8);
  ASSERT_TRUE(
      c->Upsert({Doc("a", "the quick brown fox", va, R"({"lang": "en"})"),
                 Doc("b", "lazy dogs sleep", vb)})
          .ok());
  SearchOptions top1;
  top1.top_k = 1;
  EXPECT_EQ(Ids(*c->SearchDense(va, top1)), std::vector<std::string>{"a"});
  EXPECT_EQ(Ids(*c->SearchLexical("fox", top1)), std::vector<std::string>{"a"});
  // Replace "a": new text and vector; the old ones are gone from both.
  auto va2 = RandomVector(rng, 8);
  ASSERT_TRUE(c->Upsert({Doc("a", "a green turtle", va2)}).ok());
  EXPECT_TRUE(c->SearchLexical("fox", top1)->empty());
  EXPECT_EQ(Ids(*c->SearchLexical("turtle", top1)),
            std::vector<std::string>{"a"});
  auto dense = *c->SearchDense(va2, top1);
  EXPECT_EQ(Ids(dense), std::vector<std::string>{"a"});
  EXPECT_NEAR(*dense[0].dense_score, 1.0, 1e-5);
  auto got = *c->Get({"a", "missing", "b"});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].text, "a green turtle");
  EXPECT_EQ(got[0].metadata, "{}");
  EXPECT_EQ(*c->Delete({"a", "missing"}), 1);
  EXPECT_TRUE(c->SearchLexical("turtle", top1)->empty());
  SearchOptions top5;
  top5.top_k = 5;
  EXPECT_EQ(Ids(*c->SearchDense(va2, top5)), std::vector<std::string>{"b"});
  EXPECT_EQ(c->Stats().documents, 1);
}

TEST(Collection, HybridFusesBothRetrieversAndKeepsTheirScores) {
  std::mt19937 rng(12);
  auto c = *Collection::Create(Opts(TempDir("hybrid")));
  auto vq = RandomVector(rng, 8);
  std::vector<Document> docs = {
      Doc("dense_only", "unrelated words", vq),  // same vector as the query
      Doc("lexical_only", "zebra crossing", RandomVector(rng, 8)),
  };
  for (int i = 0; i < 50; ++i) {
    docs.push_back(
        Doc(absl::StrCat("filler", i), "filler text", RandomVector(rng, 8)));
  }
  ASSERT_TRUE(c->Upsert(docs).ok());
  SearchOptions o;
  o.top_k = 5;
  auto hits = *c->SearchHybrid(vq, "zebra", o, FusionOptions{});
  ASSERT_EQ(hits.size(), 5u);
  std::set<std::string> top2 = {hits[0].id, hits[1].id};
  EXPECT_EQ(top2, (std::set<std::string>{"dense_only", "lexical_only"}));
  for (const Hit& h : hits) {
    if (h.id == "dense_only") {
      EXPECT_EQ(*h.dense_rank, 1);
      EXPECT_NEAR(*h.dense_score, 1.0, 1e-5);
      EXPECT_FALSE(h.lexical_rank.has_value());
      EXPECT_NEAR(h.score, 1.0 / 61, 1e-9);  // RRF, k = 60
    }
    if (h.id == "lexical_only") {
      EXPECT_EQ(*h.lexical_rank, 1);
      EXPECT_GT(*h.lexical_score, 0);
    }
  }
  FusionOptions weighted;
  weighted.method = FusionOptions::Method::kWeighted;
  weighted.dense_weight = 0.9;
  auto w = *c->SearchHybrid(vq, "zebra", o, weighted);
  EXPECT_EQ(w[0].id, "dense_only");
  EXPECT_EQ(c->SearchHybrid(vq, "zebra", o, {}, 2).status().code(),
            absl::StatusCode::kInvalidArgument);  // candidates < top_k
}

TEST(Collection, BadInputIsRejectedAndNothingIsWritten) {
  std::mt19937 rng(2);
  auto c = *Collection::Create(Opts(TempDir("bad")));
  ASSERT_TRUE(c->Upsert({Doc("keep", "kept", RandomVector(rng, 8))}).ok());
  std::vector<float> nan_v(8, 0.1f);
  nan_v[3] = std::nanf("");
  const std::vector<std::pair<std::vector<Document>, std::string>> cases = {
      {{Doc("x", "t", RandomVector(rng, 4))}, "documents[0].vector"},
      {{Doc("x", "t", nan_v)}, "NaN"},
      {{Doc("x", "t", std::vector<float>(8, 0.0f))}, "zeros"},
      {{Doc("", "t", RandomVector(rng, 8))}, "documents[0].id"},
      {{Doc("x", std::string(2 << 20, 'a'), RandomVector(rng, 8))},
       "documents[0].text"},
      {{Doc("x", "t", RandomVector(rng, 8), "{not json")}, "metadata"},
      {{Doc("x", "t", RandomVector(rng, 8), "[1, 2]")}, "metadata"},
      {{Doc("x", "bad \xFF utf8", RandomVector(rng, 8))}, "UTF-8"},
      {{Doc("x", "t", RandomVector(rng, 8)),
        Doc("x", "u", RandomVector(rng, 8))},
       "duplicate"},
      {{Doc("ok", "t", RandomVector(rng, 8)),
        Doc("y", "t", RandomVector(rng, 3))},
       "documents[1]"},
  };
  for (const auto& [docs, needle] : cases) {
    absl::Status st = c->Upsert(docs);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << needle;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st;
  }
  EXPECT_EQ(c->Stats().documents, 1);  // the valid "ok" of the last batch too
  EXPECT_TRUE(c->Get({"ok", "x", "y"})->empty());
  SearchOptions o;
  EXPECT_EQ(c->SearchDense(std::vector<float>(5, 1.0f), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.top_k = 0;
  EXPECT_EQ(c->SearchLexical("kept", o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Collection, LexicalQueriesAreNeverFts5Syntax) {
  std::mt19937 rng(3);
  auto c = *Collection::Create(Opts(TempDir("fts")));
  ASSERT_TRUE(c->Upsert({Doc("a", "near the star field", RandomVector(rng, 8)),
                         Doc("b", "and or not", RandomVector(rng, 8))})
                  .ok());
  SearchOptions o;
  for (const char* q :
       {"\"", "near(", "NEAR(star field)", "star*", "-star", "a:b", "AND",
        "OR OR", "NOT star", "(((", "'; DROP TABLE docs; --", "^star", "{star}",
        "\"unbalanced quote"}) {
    auto r = c->SearchLexical(q, o);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status();
  }
  EXPECT_EQ(Ids(*c->SearchLexical("NEAR(star field)", o)).front(), "a");
  EXPECT_EQ(Ids(*c->SearchLexical("NOT", o)).front(), "b");
  EXPECT_TRUE(c->SearchLexical("!!! ...", o)->empty());
}

// Brute-force reference for filter tests.
struct Ref {
  std::string id;
  std::vector<float> v;
  std::string lang;
  int year;
  std::vector<std::string> tags;
  std::string text;
};

class FilteredSearch : public testing::TestWithParam<std::string> {};

TEST_P(FilteredSearch, MatchesBruteForceAndFillsTopK) {
  const std::string factory = GetParam();
  std::mt19937 rng(4);
  auto c = *Collection::Create(
      Opts(TempDir("filter_" + std::to_string(factory.size())), 16, factory));
  std::vector<Ref> refs;
  std::vector<Document> docs;
  const char* langs[] = {"en", "fr", "de"};
  const char* words[] = {"alpha", "beta", "gamma", "delta", "omega"};
  for (int i = 0; i < 6000; ++i) {
    Ref r{absl::StrCat("d", i),
          RandomVector(rng, 16),
          langs[i % 3],
          1950 + i % 70,
          {words[i % 5], words[(i / 5) % 5]},
          ""};
    r.text = absl::StrCat(words[i % 5], " ", words[(i / 7) % 5], " shared");
    const std::string meta = absl::StrCat(
        R"({"lang": ")", r.lang, R"(", "year": )", r.year, R"(, "tags": [")",
        r.tags[0], R"(", ")", r.tags[1], R"("]})");
    docs.push_back(Doc(r.id, r.text, r.v, meta));
    refs.push_back(r);
  }
  ASSERT_TRUE(c->Upsert(docs).ok());
  auto f = *ParseFilterJson(
      R"({"and": [{"field": "lang", "in": ["fr", "de"]},
                  {"field": "year", "gte": 1960, "lt": 1990},
                  {"field": "tags", "eq": "gamma"}]})");
  auto matches = [](const Ref& r) {
    return (r.lang == "fr" || r.lang == "de") && r.year >= 1960 &&
           r.year < 1990 &&
           std::count(r.tags.begin(), r.tags.end(), "gamma") > 0;
  };
  int n_match = 0;
  for (const Ref& r : refs) n_match += matches(r);
  ASSERT_GT(n_match, 50);
  SearchOptions o;
  o.top_k = 20;
  o.filter = &f;
  o.knobs.ef_search = 128;
  for (int trial = 0; trial < 5; ++trial) {
    auto q = RandomVector(rng, 16);
    auto hits = *c->SearchDense(q, o);
    ASSERT_EQ(hits.size(),
              20u);  // top_k filled although most docs are excluded
    std::vector<std::pair<float, std::string>> exact;
    for (const Ref& r : refs) {
      if (!matches(r)) continue;
      float ip = 0;
      for (int k = 0; k < 16; ++k) ip += r.v[k] * q[k];
      exact.emplace_back(-ip, r.id);
    }
    std::sort(exact.begin(), exact.end());
    std::set<std::string> want;
    for (int k = 0; k < 20; ++k) want.insert(exact[k].second);
    int overlap = 0;
    for (const Hit& h : hits) {
      overlap += want.count(h.id);
      const Ref& r = refs[std::stoi(h.id.substr(1))];
      EXPECT_TRUE(matches(r)) << h.id;
    }
    EXPECT_GE(overlap, 19) << factory;  // exact path: the allowed set is small
  }
  // Lexical with the same filter: every hit matches, and top_k is filled.
  auto lex = *c->SearchLexical("gamma shared", o);
  EXPECT_EQ(lex.size(), 20u);
  for (const Hit& h : lex)
    EXPECT_TRUE(matches(refs[std::stoi(h.id.substr(1))]));
  // A broad filter (most documents) goes through FAISS with an allow-list.
  auto broad = *ParseFilterJson(R"({"field": "year", "gte": 1951})");
  o.filter = &broad;
  auto q = RandomVector(rng, 16);
  auto hits = *c->SearchDense(q, o);
  ASSERT_EQ(hits.size(), 20u);
  for (const Hit& h : hits)
    EXPECT_GE(refs[std::stoi(h.id.substr(1))].year, 1951);
  // A field no document has matches nothing (no error).
  auto unknown = *ParseFilterJson(R"({"field": "colour", "eq": "red"})");
  o.filter = &unknown;
  EXPECT_TRUE(c->SearchDense(q, o)->empty());
  EXPECT_TRUE(c->SearchLexical("gamma", o)->empty());
  EXPECT_EQ(*c->DeleteByFilter(unknown), 0);
  // Delete by filter.
  auto fr = *ParseFilterJson(R"({"field": "lang", "eq": "fr"})");
  EXPECT_EQ(*c->DeleteByFilter(fr), 2000);
  o.filter = &fr;
  EXPECT_TRUE(c->SearchDense(q, o)->empty());
  EXPECT_TRUE(c->SearchLexical("gamma", o)->empty());
}

TEST(Collection, ListPagesThroughEveryDocumentInIdOrder) {
  std::mt19937 rng(9);
  auto c = *Collection::Create(Opts(TempDir("list")));
  std::vector<Document> docs;
  std::vector<std::string> want;
  for (int i = 0; i < 25; ++i) {
    want.push_back(absl::StrCat("d", 100 + (i * 7) % 25));
    docs.push_back(Doc(want.back(), "text", RandomVector(rng, 8)));
  }
  ASSERT_TRUE(c->Upsert(docs).ok());
  std::sort(want.begin(), want.end());
  std::vector<std::string> got;
  std::string after;
  for (int page = 0; page < 10; ++page) {
    auto p = c->List(after, 7, Collection::GetOptions{});
    ASSERT_TRUE(p.ok()) << p.status();
    if (p->empty()) break;
    EXPECT_LE(p->size(), 7u);
    for (const Document& d : *p) got.push_back(d.id);
    after = p->back().id;
  }
  EXPECT_EQ(got, want);
  EXPECT_TRUE(c->List("zzz", 7, Collection::GetOptions{})->empty());
}

TEST(Collection, FiltersMatchNumbersAndTheirDecimalStringsAlike) {
  // Issue 25 item 4: {"field": "section", "eq": 8} matched nothing when the
  // metadata held "8" (CSV loads hold numbers as strings).
  std::mt19937 rng(5);
  auto c = *Collection::Create(Opts(TempDir("coerce")));
  std::vector<Document> docs;
  for (const auto& [id, meta] :
       std::vector<std::pair<std::string, std::string>>{
           {"int", R"({"section": 8})"},
           {"real", R"({"section": 8.0})"},
           {"str", R"({"section": "8"})"},
           {"frac", R"({"section": 8.5})"},
           {"fracstr", R"({"section": "8.5"})"},
           {"word", R"({"section": "eight"})"},
           {"flag", R"({"section": true})"},
           {"list", R"({"section": ["7", "8"]})"}}) {
    Document d = Doc(id, "text", RandomVector(rng, 8));
    d.metadata = meta;
    docs.push_back(d);
  }
  ASSERT_TRUE(c->Upsert(docs).ok());
  auto ids = [&](const char* filter) {
    auto f = *ParseFilterJson(filter);
    SearchOptions o;
    o.top_k = 20;
    o.filter = &f;
    std::vector<std::string> got = Ids(*c->SearchLexical("text", o));
    std::sort(got.begin(), got.end());
    return got;
  };
  const std::vector<std::string> eight = {"int", "list", "real", "str"};
  EXPECT_EQ(ids(R"({"field": "section", "eq": 8})"), eight);
  EXPECT_EQ(ids(R"({"field": "section", "eq": "8"})"), eight);
  EXPECT_EQ(ids(R"({"field": "section", "in": [8.5]})"),
            (std::vector<std::string>{"frac", "fracstr"}));
  EXPECT_EQ(ids(R"({"field": "section", "eq": "eight"})"),
            (std::vector<std::string>{"word"}));
  EXPECT_EQ(ids(R"({"field": "section", "eq": true})"),
            (std::vector<std::string>{"flag"}));
  // Ranges stay numeric: "8" is text.
  EXPECT_EQ(ids(R"({"field": "section", "gte": 8, "lt": 9})"),
            (std::vector<std::string>{"frac", "int", "real"}));
}

INSTANTIATE_TEST_SUITE_P(Factories, FilteredSearch,
                         testing::Values("Flat", "HNSW32"));

struct RecallCase {
  std::string factory;
  int n;
  double min_recall;
  SearchKnobs knobs = {};
};

class Recall : public testing::TestWithParam<RecallCase> {};

TEST_P(Recall, OfFactoryVersusExactSearch) {
  const RecallCase rc = GetParam();
  const int dim = 32;
  std::mt19937 rng(5);
  auto c = *Collection::Create(
      Opts(TempDir(absl::StrCat("recall_", rc.n, "_", rc.factory.size(), "_",
                                rc.knobs.ef_search, "_", rc.knobs.nprobe)),
           dim, rc.factory));
  std::vector<Document> docs;
  std::vector<std::vector<float>> vs;
  for (int i = 0; i < rc.n; ++i) {
    vs.push_back(RandomVector(rng, dim));
    docs.push_back(Doc(absl::StrCat(i), "x", vs.back()));
  }
  ASSERT_TRUE(c->Upsert(docs).ok());
  EXPECT_EQ(c->Stats().active_factory, rc.factory);
  SearchOptions o;
  o.top_k = 10;
  o.knobs = rc.knobs;
  double hit = 0;
  const int queries = 50;
  for (int t = 0; t < queries; ++t) {
    auto q = RandomVector(rng, dim);
    std::vector<std::pair<float, int>> exact;
    for (int i = 0; i < rc.n; ++i) {
      float ip = 0;
      for (int k = 0; k < dim; ++k) ip += vs[i][k] * q[k];
      exact.emplace_back(-ip, i);
    }
    std::partial_sort(exact.begin(), exact.begin() + 10, exact.end());
    std::set<std::string> want;
    for (int k = 0; k < 10; ++k) want.insert(std::to_string(exact[k].second));
    // (Not `for (h : *c->SearchDense(...))`: the StatusOr would dangle.)
    const std::vector<Hit> got = *c->SearchDense(q, o);
    for (const Hit& h : got) hit += want.count(h.id);
  }
  const double recall = hit / (10.0 * queries);
  std::cout << rc.factory << " efSearch " << rc.knobs.ef_search << " nprobe "
            << rc.knobs.nprobe << ": recall@10 = " << recall << "\n";
  EXPECT_GE(recall, rc.min_recall);
}

INSTANTIATE_TEST_SUITE_P(
    Factories, Recall,
    testing::Values(RecallCase{"Flat", 3000, 1.0},
                    RecallCase{"HNSW32", 3000, 0.95},
                    // efSearch per call: a wider search finds (nearly) all.
                    RecallCase{"HNSW32", 3000, 0.99, {256, 0}},
                    RecallCase{"IVF32,Flat", 3000, 0.85},
                    // nprobe = nlist visits every list: exact.
                    RecallCase{"IVF32,Flat", 3000, 1.0, {0, 32}},
                    // PQ is lossy (8 bytes per 32-d vector); random data is
                    // its worst case.
                    RecallCase{"IVF16,PQ8", 12000, 0.3}),
    [](const testing::TestParamInfo<RecallCase>& info) {
      std::string name =
          absl::StrCat(info.param.factory, "_ef", info.param.knobs.ef_search,
                       "_nprobe", info.param.knobs.nprobe);
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

TEST(Collection, TrainedIndexesServeFlatUntilEnoughData) {
  std::mt19937 rng(6);
  const std::string dir = TempDir("fallback");
  auto c = *Collection::Create(Opts(dir, 8, "IVF32,Flat"));  // needs 39 * 32
  std::vector<Document> docs;
  for (int i = 0; i < 1000; ++i)
    docs.push_back(Doc(absl::StrCat(i), "t", RandomVector(rng, 8)));
  ASSERT_TRUE(c->Upsert(docs).ok());
  EXPECT_EQ(c->Stats().active_factory, "Flat");
  docs.clear();
  for (int i = 1000; i < 1400; ++i)
    docs.push_back(Doc(absl::StrCat(i), "t", RandomVector(rng, 8)));
  ASSERT_TRUE(c->Upsert(docs).ok());
  EXPECT_EQ(c->Stats().active_factory, "IVF32,Flat");
  c.reset();
  auto again = *Collection::Open(Opts(dir));
  EXPECT_EQ(again->Stats().active_factory, "IVF32,Flat");
  EXPECT_EQ(again->Stats().documents, 1400);
}

TEST(Collection, CorruptOrMissingSnapshotIsRebuiltNotServed) {
  std::mt19937 rng(7);
  const std::string dir = TempDir("corrupt");
  std::vector<float> v0;
  {
    auto c = *Collection::Create(Opts(dir, 8, "HNSW32"));
    std::vector<Document> docs;
    for (int i = 0; i < 500; ++i)
      docs.push_back(Doc(absl::StrCat(i), "t", RandomVector(rng, 8)));
    v0 = docs[0].vector;
    ASSERT_TRUE(c->Upsert(docs).ok());
    ASSERT_TRUE(c->Snapshot().ok());
  }
  {  // Flip bytes in the middle of the snapshot.
    std::fstream f(dir + "/vectors.faiss",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.write("garbage!", 8);
  }
  SearchOptions o;
  o.top_k = 1;
  {
    auto c = *Collection::Open(Opts(dir));
    EXPECT_EQ(c->Stats().snapshots_rebuilt, 1);
    EXPECT_EQ(Ids(*c->SearchDense(v0, o)), std::vector<std::string>{"0"});
  }
  fs::remove(dir + "/vectors.faiss");
  auto c = *Collection::Open(Opts(dir));
  EXPECT_EQ(c->Stats().snapshots_rebuilt, 1);
  EXPECT_EQ(c->Stats().documents, 500);
  EXPECT_EQ(Ids(*c->SearchDense(v0, o)), std::vector<std::string>{"0"});
}

TEST(Collection, CompactionDropsDeadEntriesAndKeepsResults) {
  std::mt19937 rng(8);
  const std::string dir = TempDir("compact");
  auto c = *Collection::Create(Opts(dir, 8, "HNSW32"));
  std::vector<Document> docs;
  for (int i = 0; i < 3000; ++i)
    docs.push_back(
        Doc(absl::StrCat(i), absl::StrCat("w", i), RandomVector(rng, 8)));
  ASSERT_TRUE(c->Upsert(docs).ok());
  std::vector<std::string> del;
  for (int i = 0; i < 2000; ++i) del.push_back(absl::StrCat(i));
  ASSERT_EQ(*c->Delete(del), 2000);
  auto s = c->Stats();
  EXPECT_EQ(s.documents, 1000);
  EXPECT_EQ(s.dead_vectors, 0);  // automatic compaction ran
  SearchOptions o;
  o.top_k = 1;
  EXPECT_EQ(Ids(*c->SearchDense(docs[2500].vector, o)),
            std::vector<std::string>{"2500"});
  EXPECT_EQ(Ids(*c->SearchLexical("w2999", o)),
            std::vector<std::string>{"2999"});
  c.reset();
  auto again = *Collection::Open(Opts(dir));
  EXPECT_EQ(again->Stats().snapshots_rebuilt, 0);
  EXPECT_EQ(Ids(*again->SearchDense(docs[2999].vector, o)),
            std::vector<std::string>{"2999"});
}

TEST(Collection, ConcurrentSearchesWithConcurrentWrites) {
  std::mt19937 rng(9);
  auto c = *Collection::Create(Opts(TempDir("concurrent"), 8, "HNSW32"));
  std::vector<Document> base;
  for (int i = 0; i < 2000; ++i)
    base.push_back(
        Doc(absl::StrCat("base", i), "stable text", RandomVector(rng, 8)));
  ASSERT_TRUE(c->Upsert(base).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0}, searches{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 r(100 + t);
      SearchOptions o;
      o.top_k = 10;
      while (!stop) {
        auto q = RandomVector(r, 8);
        auto d = c->SearchDense(q, o);
        auto l = c->SearchLexical("stable churn", o);
        if (!d.ok() || !l.ok() || d->size() != 10) {
          if (errors++ == 0) {
            std::cerr << "first error: " << d.status() << " " << l.status()
                      << " " << (d.ok() ? d->size() : 0) << "\n";
          }
        }
        ++searches;
      }
    });
  }
  for (int round = 0; round < 200; ++round) {
    std::vector<Document> batch;
    for (int i = 0; i < 10; ++i)
      batch.push_back(Doc(absl::StrCat("churn", round * 10 + i), "churn",
                          RandomVector(rng, 8)));
    ASSERT_TRUE(c->Upsert(batch).ok());
    if (round % 3 == 0) {
      ASSERT_TRUE(c->Delete({absl::StrCat("churn", round * 10)}).ok());
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(searches.load(), 10);
  EXPECT_EQ(c->Stats().documents, 2000 + 2000 - 67);
}

}  // namespace
}  // namespace diffrank::index
