// Collections built by different embedders in one process: each is written
// and searched with its own model, new ones get the default or the model
// they name, and a re-embedded version (another model) can be published
// over a live collection (issue 24, part 4). Fake models, real collections.
#include <filesystem>

#include "gtest/gtest.h"
#include "pipeline/fake_models.h"
#include "pipeline/pipeline.h"

namespace diffrank::pipeline {
namespace {

namespace fs = std::filesystem;
using testing_fakes::FakeEmbedder;
using testing_fakes::FakeScorer;
using testing_fakes::kDim;

class ModelsPerCollectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    ASSERT_TRUE(Open().ok());
  }
  void TearDown() override {
    pipeline_.reset();
    collections_.reset();
    fs::remove_all(dir_);
  }
  // Opens the data directory as a server whose default model is `fresh`
  // and that can also load `old`.
  absl::Status Open() {
    pipeline_.reset();
    collections_.reset();
    CollectionsOptions o;
    o.data_dir = dir_.string();
    o.model_id = fresh_.description().id;
    o.dimension = kDim;
    o.collection.sync_full = false;
    o.models = [this](const std::string& id) -> absl::StatusOr<int> {
      absl::StatusOr<TextEmbedder*> e = embedders_.Get(id);
      if (!e.ok()) return e.status();
      ++loads;
      return (*e)->description().dimension;
    };
    absl::StatusOr<std::unique_ptr<Collections>> c = Collections::Open(o);
    if (!c.ok()) return c.status();
    collections_ = *std::move(c);
    pipeline_ = std::make_unique<Pipeline>(&embedders_, &scorer_,
                                           collections_.get(), Limits());
    return absl::OkStatus();
  }
  absl::Status Put(const std::string& collection, const std::string& id,
                   const std::string& text) {
    UpsertBatch b;
    b.collection = collection;
    index::Document d;
    d.id = id;
    d.text = text;
    b.documents.push_back(d);
    return pipeline_->Upsert(std::move(b), CallContext{}).status();
  }
  absl::StatusOr<SearchResult> Dense(const std::string& collection,
                                     const std::string& query) {
    SearchRequest r;
    r.collection = collection;
    r.query = query;
    r.mode = SearchMode::kDense;
    return pipeline_->Search(r, CallContext{});
  }

  fs::path dir_;
  FakeEmbedder old_{"embed-old", 0};
  FakeEmbedder fresh_{"embed-new", 7};
  FixedEmbedders embedders_{{&fresh_, &old_}};
  FakeScorer scorer_;
  int loads = 0;
  std::unique_ptr<Collections> collections_;
  std::unique_ptr<Pipeline> pipeline_;
};

TEST_F(ModelsPerCollectionTest, EachCollectionIsWrittenAndSearchedByItsModel) {
  auto a = collections_->Create("a", "Flat", "embed-old");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->model_id, "embed-old");
  auto b = collections_->Create("b", "Flat");  // the default
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->model_id, "embed-new");
  ASSERT_TRUE(Put("a", "1", "river bank water").ok());
  ASSERT_TRUE(Put("b", "1", "river bank water").ok());
  EXPECT_EQ(old_.calls, 1);
  EXPECT_EQ(fresh_.calls, 1);
  // A query equal to the document scores cosine 1 only with the same model.
  for (const char* c : {"a", "b"}) {
    auto r = Dense(c, "river bank water");
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->hits.size(), 1u);
    EXPECT_NEAR(*r->hits[0].dense_score, 1.0, 1e-5) << c;
  }
  EXPECT_EQ(old_.calls, 2);
  EXPECT_EQ(fresh_.calls, 2);
}

TEST_F(ModelsPerCollectionTest, ADataDirectoryOfAnOlderModelKeepsServing) {
  ASSERT_TRUE(collections_->Create("old", "Flat", "embed-old").ok());
  ASSERT_TRUE(Put("old", "1", "river bank water").ok());
  ASSERT_TRUE(Open().ok());  // the restart after an upgrade
  EXPECT_GE(loads, 1) << "the collection's model was not asked for at start";
  auto d = collections_->Describe("old");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->model_id, "embed-old");
  auto r = Dense("old", "river bank water");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->hits.size(), 1u);
  EXPECT_NEAR(*r->hits[0].dense_score, 1.0, 1e-5);
}

TEST_F(ModelsPerCollectionTest, AMissingModelRefusesTheStartNamingIt) {
  ASSERT_TRUE(collections_->Create("old", "Flat", "embed-old").ok());
  FixedEmbedders only_new({&fresh_});
  CollectionsOptions o;
  o.data_dir = dir_.string();
  o.model_id = "embed-new";
  o.dimension = kDim;
  o.models = [&](const std::string& id) -> absl::StatusOr<int> {
    absl::StatusOr<TextEmbedder*> e = only_new.Get(id);
    if (!e.ok()) return e.status();
    return kDim;
  };
  pipeline_.reset();
  collections_.reset();
  auto c = Collections::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(c.status().message().find("\"embed-old\""), std::string::npos)
      << c.status();
}

TEST_F(ModelsPerCollectionTest, UnknownModelsAreRefusedNamingTheField) {
  auto c = collections_->Create("x", "Flat", "no-such-model");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound) << c.status();
  EXPECT_NE(c.status().message().find("model"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "x"));
  EmbedRequest e;
  e.texts = {"hello"};
  e.model = "no-such-model";
  auto out = pipeline_->Embed(e, CallContext{});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kNotFound) << out.status();
  EXPECT_NE(out.status().message().find("model"), std::string::npos);
  e.model = "embed-old";
  out = pipeline_->Embed(e, CallContext{});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->model, "embed-old");
  e.model = "";
  out = pipeline_->Embed(e, CallContext{});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->model, "embed-new");
}

TEST_F(ModelsPerCollectionTest, AQueryVectorOfAnotherModelIsRefused) {
  ASSERT_TRUE(collections_->Create("old", "Flat", "embed-old").ok());
  ASSERT_TRUE(Put("old", "1", "river bank water").ok());
  SearchRequest r;
  r.collection = "old";
  r.mode = SearchMode::kDense;
  r.rerank = false;
  r.query_vector.assign(kDim, 0.5f);
  r.query_vector_model = "embed-new";
  auto res = pipeline_->Search(r, CallContext{});
  EXPECT_EQ(res.status().code(), absl::StatusCode::kFailedPrecondition)
      << res.status();
  EXPECT_NE(res.status().message().find("embed-old"), std::string::npos);
  r.query_vector_model = "embed-old";
  EXPECT_TRUE(pipeline_->Search(r, CallContext{}).ok());
  r.query_vector_model = "";  // not said: trusted
  EXPECT_TRUE(pipeline_->Search(r, CallContext{}).ok());
}

TEST_F(ModelsPerCollectionTest, AReembeddedVersionReplacesTheLiveOne) {
  ASSERT_TRUE(collections_->Create("docs", "Flat", "embed-old").ok());
  ASSERT_TRUE(Put("docs", "1", "river bank water").ok());
  // A version built by the new model in staging (as diffrank-index
  // --reembed builds it), then published over the live collection.
  index::CollectionOptions o;
  o.dir = (fs::path(collections_->StagingDir()) / "docs-v3").string();
  o.model_id = "embed-new";
  o.dimension = kDim;
  o.sync_full = false;
  fs::create_directories(collections_->StagingDir());
  {
    auto staged = index::Collection::Create(o);
    ASSERT_TRUE(staged.ok()) << staged.status();
    auto e = fresh_.Embed({"river bank water"}, EmbedKind::kDocument, true,
                          CallContext{});
    index::Document d;
    d.id = "1";
    d.text = "river bank water";
    d.metadata = "{}";
    d.vector = e->values;
    ASSERT_TRUE((*staged)->Upsert({d}).ok());
  }
  // A write after the counters were read: not published (the write would be
  // lost), and the live collection serves and takes writes on.
  const index::CollectionStats st = (*collections_->Get("docs"))->Stats();
  const CollectionCounters then{st.documents, st.index_vectors,
                                st.dead_vectors};
  ASSERT_TRUE(Put("docs", "w", "written during the re-embed").ok());
  auto refused = collections_->Publish("docs", "docs-v3", then);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAborted)
      << refused.status();
  EXPECT_EQ((*collections_->Describe("docs")).model_id, "embed-old");
  ASSERT_TRUE(Put("docs", "w2", "and after the refusal").ok());
  ASSERT_TRUE(collections_->Get("docs").ok());
  EXPECT_EQ((*collections_->Get("docs"))->Stats().documents, 3);
  const index::CollectionStats now = (*collections_->Get("docs"))->Stats();
  auto p = collections_->Publish(
      "docs", "docs-v3",
      CollectionCounters{now.documents, now.index_vectors, now.dead_vectors});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->model_id, "embed-new");
  auto r = Dense("docs", "river bank water");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_GE(r->hits.size(), 1u);
  EXPECT_EQ(r->hits[0].id, "1");
  EXPECT_NEAR(*r->hits[0].dense_score, 1.0, 1e-5);
  // Writes now embed with the new model.
  const int before = fresh_.calls;
  ASSERT_TRUE(Put("docs", "2", "another text").ok());
  EXPECT_EQ(fresh_.calls, before + 1);
  // A write embedded for the old model (it raced the publish) is refused.
  LocalStore store(collections_.get());
  index::Document d;
  d.id = "3";
  d.text = "late";
  d.metadata = "{}";
  d.vector.assign(kDim, 0.25f);
  auto w = store.Write("docs", {d}, "embed-old", CallContext{});
  EXPECT_EQ(w.status().code(), absl::StatusCode::kAborted) << w.status();
}

}  // namespace
}  // namespace diffrank::pipeline
