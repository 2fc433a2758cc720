// Pipeline tests over fake models and real (temporary) collections.
#include "pipeline/pipeline.h"

#include <cmath>
#include <filesystem>
#include <functional>

#include "absl/strings/str_split.h"
#include "common/utf8.h"
#include "gtest/gtest.h"
#include "pipeline/fake_models.h"

namespace diffrank::pipeline {
namespace {

using testing_fakes::FakeEmbedder;
using testing_fakes::FakeScorer;
using testing_fakes::kDim;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    CollectionsOptions o;
    o.data_dir = dir_.string();
    o.model_id = "fake-embed";
    o.dimension = kDim;
    o.collection.sync_full = false;
    collections_ = *Collections::Open(o);
    ASSERT_TRUE(collections_->Create("docs", "Flat").ok());
    pipeline_ = std::make_unique<Pipeline>(&embedder_, &scorer_,
                                           collections_.get(), Limits());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::Status Put(std::vector<std::pair<std::string, std::string>> docs) {
    UpsertBatch b;
    b.collection = "docs";
    for (auto& [id, text] : docs) {
      index::Document d;
      d.id = id;
      d.text = text;
      b.documents.push_back(d);
    }
    CallContext ctx;
    return pipeline_->Upsert(std::move(b), ctx).status();
  }

  std::filesystem::path dir_;
  FakeEmbedder embedder_;
  FakeScorer scorer_;
  // Four documents where the fake reranker's choice ("c", two "gold")
  // differs from the retrieval order for the query "river bank".
  absl::Status PutRiverDocs() {
    return Put({{"a", "river bank water flow"},
                {"b", "river bank money loan"},
                {"c", "river gold gold nugget"},
                {"d", "unrelated text about cats"}});
  }

  std::unique_ptr<Collections> collections_;
  std::unique_ptr<Pipeline> pipeline_;
};

TEST_F(PipelineTest, HybridSearchRerankPutsTheRerankersChoiceFirst) {
  ASSERT_TRUE(PutRiverDocs().ok());
  SearchRequest r;
  r.collection = "docs";
  r.query = "river bank";
  r.top_k = 2;
  r.rerank_depth = 3;  // "c" is third in the retrieval order
  r.include_text = true;
  r.rerank_fusion_weight = 0;  // the cross-encoder alone
  CallContext ctx;
  auto res = pipeline_->Search(r, ctx);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->hits.size(), 2u);
  EXPECT_EQ(res->hits[0].id, "c");
  EXPECT_EQ(res->hits[0].rerank_score, 2.0);
  EXPECT_EQ(res->hits[0].text, "river gold gold nugget");
  EXPECT_GE(res->reranked, 3);
  EXPECT_GT(res->timing.total, absl::ZeroDuration());
}

TEST_F(PipelineTest, FusionWeightBlendsTheRetrievalOrderBack) {
  ASSERT_TRUE(PutRiverDocs().ok());
  SearchRequest r;
  r.collection = "docs";
  r.query = "river bank";
  r.top_k = 3;
  r.rerank_depth = 3;
  CallContext ctx;
  r.rerank = false;
  auto fused = pipeline_->Search(r, ctx);
  ASSERT_TRUE(fused.ok()) << fused.status();
  r.rerank = true;
  r.rerank_fusion_weight = 0;  // the cross-encoder alone
  auto alone = pipeline_->Search(r, ctx);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->hits[0].id, "c");
  EXPECT_EQ(alone->hits[0].score, *alone->hits[0].rerank_score);
  r.rerank_fusion_weight = 100;  // the retrieval order dominates
  auto kept = pipeline_->Search(r, ctx);
  ASSERT_TRUE(kept.ok()) << kept.status();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(kept->hits[i].id, fused->hits[i].id) << i;
    EXPECT_TRUE(kept->hits[i].rerank_score.has_value());
  }
  EXPECT_GT(kept->hits[0].score, kept->hits[1].score);
  for (double bad : {-1.0, 101.0}) {
    r.rerank_fusion_weight = bad;
    auto st = pipeline_->Search(r, ctx).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("rerank_fusion_weight"), std::string::npos);
  }
}

TEST_F(PipelineTest, RerankFalseKeepsFusedOrderAndScoresNothing) {
  ASSERT_TRUE(Put({{"a", "river bank"}, {"c", "gold gold"}}).ok());
  SearchRequest r;
  r.collection = "docs";
  r.query = "river bank";
  r.rerank = false;
  CallContext ctx;
  auto res = pipeline_->Search(r, ctx);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->hits[0].id, "a");
  EXPECT_EQ(res->reranked, 0);
  EXPECT_EQ(scorer_.scored, 0u);
}

TEST_F(PipelineTest, LexicalSearchDoesNotEmbed) {
  ASSERT_TRUE(Put({{"a", "river bank"}}).ok());
  const int before = embedder_.calls;
  SearchRequest r;
  r.collection = "docs";
  r.query = "river";
  r.mode = SearchMode::kLexical;
  r.rerank = false;
  CallContext ctx;
  auto res = pipeline_->Search(r, ctx);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(res->hits.size(), 1u);
  EXPECT_EQ(embedder_.calls, before);
}

TEST_F(PipelineTest, QueryVectorSearchesLikeTheEmbeddedQuery) {
  ASSERT_TRUE(PutRiverDocs().ok());
  CallContext ctx;
  auto ids = [](const SearchResult& r) {
    std::vector<std::string> out;
    for (const auto& h : r.hits) out.push_back(h.id);
    return out;
  };
  for (SearchMode mode : {SearchMode::kDense, SearchMode::kHybrid}) {
    SearchRequest text;
    text.collection = "docs";
    text.query = "river bank";
    text.mode = mode;
    text.rerank = false;
    auto want = pipeline_->Search(text, ctx);
    ASSERT_TRUE(want.ok()) << want.status();
    auto e = embedder_.Embed({"river bank"}, EmbedKind::kQuery, true, ctx);
    ASSERT_TRUE(e.ok());
    SearchRequest vec = text;
    for (float v : e->values) vec.query_vector.push_back(3 * v);  // any length
    if (mode == SearchMode::kDense) vec.query = "";  // text not needed
    const int calls = embedder_.calls;
    auto got = pipeline_->Search(vec, ctx);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(embedder_.calls, calls) << "a given vector is not re-embedded";
    EXPECT_EQ(ids(*got), ids(*want));
    ASSERT_FALSE(got->hits.empty());
    if (mode == SearchMode::kDense) {
      EXPECT_LE(*got->hits[0].dense_score, 1.0 + 1e-5) << "unit length";
    }
  }
}

TEST_F(PipelineTest, QueryVectorValidationNamesTheProblem) {
  ASSERT_TRUE(PutRiverDocs().ok());
  CallContext ctx;
  SearchRequest ok;
  ok.collection = "docs";
  ok.query = "river";
  ok.mode = SearchMode::kDense;
  ok.query_vector.assign(kDim, 0.5f);
  ASSERT_TRUE(pipeline_->Search(ok, ctx).ok());
  auto expect = [&](SearchRequest r, absl::string_view needle) {
    auto res = pipeline_->Search(r, ctx);
    EXPECT_EQ(res.status().code(), absl::StatusCode::kInvalidArgument)
        << res.status();
    EXPECT_NE(res.status().message().find(needle), absl::string_view::npos)
        << res.status();
  };
  SearchRequest r = ok;
  r.query_vector.pop_back();
  expect(r, "dimension is 16");
  r = ok;
  r.query_vector[3] = std::nanf("");
  expect(r, "query_vector[3] is not a finite");
  r = ok;
  r.query_vector[0] = INFINITY;
  expect(r, "query_vector[0]");
  r = ok;
  r.query_vector.assign(kDim, 0.0f);
  expect(r, "no direction");
  r = ok;
  r.mode = SearchMode::kLexical;
  expect(r, "LEXICAL");
  r = ok;
  r.query = "";  // reranking (the default) reads the text
  expect(r, "query is required with a query_vector");
  r.mode = SearchMode::kHybrid;
  r.rerank = false;  // BM25 reads it
  expect(r, "query is required with a query_vector");
  r.mode = SearchMode::kDense;
  EXPECT_TRUE(pipeline_->Search(r, ctx).ok());
}

TEST_F(PipelineTest, SearchValidationNamesTheField) {
  CallContext ctx;
  auto expect = [&](SearchRequest r, absl::StatusCode code,
                    absl::string_view field) {
    auto res = pipeline_->Search(r, ctx);
    EXPECT_EQ(res.status().code(), code) << res.status();
    EXPECT_NE(res.status().message().find(field), absl::string_view::npos)
        << res.status();
  };
  SearchRequest ok;
  ok.collection = "docs";
  ok.query = "q";
  SearchRequest r = ok;
  r.query = "  ";
  expect(r, absl::StatusCode::kInvalidArgument, "query");
  r = ok;
  r.query = "bad \xff utf8";
  expect(r, absl::StatusCode::kInvalidArgument, "query");
  r = ok;
  r.top_k = -1;
  expect(r, absl::StatusCode::kInvalidArgument, "top_k");
  r = ok;
  r.top_k = 1000000;
  expect(r, absl::StatusCode::kInvalidArgument, "top_k");
  r = ok;
  r.rerank_depth = 100000;
  expect(r, absl::StatusCode::kInvalidArgument, "rerank_depth");
  r = ok;
  r.candidates = 3;
  expect(r, absl::StatusCode::kInvalidArgument, "candidates");
  r = ok;
  r.filter = "{not json";
  expect(r, absl::StatusCode::kInvalidArgument, "filter");
  r = ok;
  r.collection = "nope";
  expect(r, absl::StatusCode::kNotFound, "nope");
  r = ok;
  r.collection = "../etc";
  expect(r, absl::StatusCode::kInvalidArgument, "collection");
}

TEST_F(PipelineTest, ExpiredDeadlineIsNotComputed) {
  ASSERT_TRUE(Put({{"a", "river bank"}}).ok());
  const int before = embedder_.calls;
  SearchRequest r;
  r.collection = "docs";
  r.query = "river";
  CallContext ctx;
  ctx.deadline = absl::Now() - absl::Seconds(1);
  auto res = pipeline_->Search(r, ctx);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(embedder_.calls, before);
}

TEST_F(PipelineTest, BadUpsertBatchWritesNothing) {
  ASSERT_TRUE(Put({{"keep", "original text"}}).ok());
  auto s = Put({{"x", "one"}, {"keep", "changed"}, {"x", "dup"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("documents[2].id"), absl::string_view::npos) << s;
  s = Put({{"y", "fine"}, {"z", ""}});
  EXPECT_NE(s.message().find("documents[1].text"), absl::string_view::npos)
      << s;
  auto got = pipeline_->Get("docs", {"keep", "x", "y"});
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].text, "original text");
}

TEST_F(PipelineTest, RerankScoresAreTheCalibratedProbability) {
  // relevance_score = sigmoid(scale * logit + bias) from the reranker's
  // calibration; the fake's logits are 0, 1 and 2 ("gold" counts).
  scorer_.set_calibration(2.0, -3.0);
  RerankRequest r;
  r.query = "q";
  r.documents = {"none", "gold", "gold gold"};
  auto res = pipeline_->Rerank(r, CallContext{});
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->results.size(), 3u);
  const double want[] = {1 / (1 + std::exp(-1.0)), 1 / (1 + std::exp(1.0)),
                         1 / (1 + std::exp(3.0))};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(res->results[i].index, 2 - i);
    EXPECT_NEAR(res->results[i].relevance_score, want[i], 1e-9);
    EXPECT_EQ(res->results[i].logit, 2 - i);  // the raw logit, uncalibrated
  }
}

TEST_F(PipelineTest, RerankSortsByRelevanceAndCutsToTopN) {
  RerankRequest r;
  r.query = "q";
  r.documents = {"none", "gold gold", "gold"};
  r.top_n = 2;
  r.return_documents = true;
  CallContext ctx;
  auto res = pipeline_->Rerank(r, ctx);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->results.size(), 2u);
  EXPECT_EQ(res->results[0].index, 1);
  EXPECT_EQ(res->results[1].index, 2);
  EXPECT_EQ(res->results[0].document, "gold gold");
  EXPECT_GT(res->results[0].relevance_score, res->results[1].relevance_score);
  // With a large fusion weight the given order (a first stage's) is kept;
  // the scores stay the cross-encoder's probabilities.
  r.fusion_weight = 100;
  auto kept = pipeline_->Rerank(r, ctx);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->results[0].index, 0);
  EXPECT_EQ(kept->results[1].index, 1);
  EXPECT_NEAR(kept->results[0].relevance_score, 0.5, 1e-9);  // logit 0
  EXPECT_NEAR(kept->results[1].relevance_score, 1 / (1 + std::exp(-2.0)),
              1e-9);  // logit 2
  r.fusion_weight = -2;
  EXPECT_NE(pipeline_->Rerank(r, ctx).status().message().find("fusion_weight"),
            absl::string_view::npos);
  r.fusion_weight = 0;
  r.documents = {"ok", ""};
  EXPECT_NE(pipeline_->Rerank(r, ctx).status().message().find("documents[1]"),
            absl::string_view::npos);
}

TEST_F(PipelineTest, DeleteNeedsExactlyOneOfIdsAndFilter) {
  ASSERT_TRUE(Put({{"a", "x"}}).ok());
  DeleteRequest d;
  d.collection = "docs";
  EXPECT_EQ(pipeline_->Delete(d).status().code(),
            absl::StatusCode::kInvalidArgument);
  d.ids = {"a", "missing"};
  auto n = pipeline_->Delete(d);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
}

TEST_F(PipelineTest, CollectionsCreateDropAndReopen) {
  EXPECT_EQ(collections_->Create("docs", "").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(collections_->Create("x", "NotAFactory").status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(collections_->Create("other", "HNSW32").ok());
  ASSERT_TRUE(Put({{"a", "x"}}).ok());
  ASSERT_TRUE(collections_->Drop("other").ok());
  EXPECT_EQ(collections_->Drop("other").code(), absl::StatusCode::kNotFound);
  collections_.reset();
  CollectionsOptions o;
  o.data_dir = dir_.string();
  o.model_id = "fake-embed";
  o.dimension = kDim;
  auto reopened = Collections::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto list = (*reopened)->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "docs");
  EXPECT_EQ(list[0].stats.documents, 1);
  o.model_id = "another-model";
  EXPECT_EQ(Collections::Open(o).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(PipelineTest, ResponsesAreBoundedAndTextsCutOnRequest) {
  // Issue 12: top_k 200 with include_text over large documents built a
  // 209 MB response. Five 6 KB documents against a 10 KB budget here.
  std::string big;
  while (big.size() < 6000) big += "river \xc3\xa9t\xc3\xa9 bank ";
  ASSERT_TRUE(
      Put({{"a", big}, {"b", big}, {"c", big}, {"d", big}, {"e", big}}).ok());
  Limits limits;
  limits.max_response_bytes = 10000;
  Pipeline p(&embedder_, &scorer_, collections_.get(), limits);
  SearchRequest r;
  r.collection = "docs";
  r.query = "river bank";
  r.top_k = 5;
  r.include_text = true;
  CallContext ctx;
  auto res = p.Search(r, ctx);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(res.status().message().find("limits.max_response_bytes"),
            std::string::npos)
      << res.status();
  r.text_max_bytes = 1001;
  res = p.Search(r, ctx);
  ASSERT_TRUE(res.ok()) << res.status();
  ASSERT_EQ(res->hits.size(), 5u);
  for (const ScoredDocument& d : res->hits) {
    EXPECT_LE(d.text.size(), 1001u);
    EXPECT_GE(d.text.size(), 998u);
    EXPECT_EQ(Utf8ErrorOffset(d.text), absl::string_view::npos);
  }
  // Without include_text the reranking still reads the documents.
  r.include_text = false;
  r.text_max_bytes = 0;
  res = p.Search(r, ctx);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_GT(res->reranked, 0);
  r.text_max_bytes = -1;
  EXPECT_EQ(p.Search(r, ctx).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Get: the same budget and cut.
  EXPECT_EQ(p.Get("docs", {"a", "b"}).status().code(),
            absl::StatusCode::kResourceExhausted);
  auto got = p.Get("docs", {"a", "b", "c"}, 100);
  ASSERT_TRUE(got.ok()) << got.status();
  for (const auto& d : *got) EXPECT_LE(d.text.size(), 100u);
}

}  // namespace
}  // namespace diffrank::pipeline
