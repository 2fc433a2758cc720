// fuzz_request: request validation end to end below the transport: fuzzed
// Search / Get / Delete / Upsert / Embed / Rerank requests through the real
// Pipeline (fake models, a real collection). Every failure is a client
// error code, never INTERNAL, and the collection keeps answering.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "fuzz/fuzz_util.h"
#include "pipeline/collections.h"
#include "pipeline/fake_models.h"
#include "pipeline/pipeline.h"

namespace {

using namespace diffrank;

struct World {
  pipeline::testing_fakes::FakeEmbedder embedder;
  pipeline::testing_fakes::FakeScorer scorer;
  std::unique_ptr<pipeline::Collections> collections;
  std::unique_ptr<pipeline::Pipeline> pipe;
};

World& W() {
  static World* w = [] {
    auto* w = new World();
    pipeline::CollectionsOptions o;
    o.data_dir = fuzz::TempDir("request");
    o.model_id = "fake-embed";
    o.dimension = pipeline::testing_fakes::kDim;
    o.collection.sync_full = false;
    w->collections = *pipeline::Collections::Open(o);
    (void)w->collections->Create("c", "Flat");
    pipeline::Limits limits;
    limits.max_response_bytes = 1 << 16;
    w->pipe = std::make_unique<pipeline::Pipeline>(
        &w->embedder, &w->scorer, w->collections.get(), limits);
    return w;
  }();
  return *w;
}

void Check(const absl::Status& s, const char* what) {
  fuzz::NotInternal(s, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  World& w = W();
  CallContext ctx;
  const std::string collection =
      in.ConsumeBool() ? "c" : in.ConsumeRandomLengthString(16);
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0: {
      pipeline::SearchRequest r;
      r.collection = collection;
      r.query = in.ConsumeRandomLengthString(64);
      r.top_k = in.ConsumeIntegralInRange<int>(-2, 1100);
      r.mode = static_cast<pipeline::SearchMode>(
          in.ConsumeIntegralInRange<int>(0, 2));
      r.candidates = in.ConsumeIntegralInRange<int>(-2, 11000);
      r.rerank = in.ConsumeBool();
      if (in.ConsumeBool())
        r.rerank_depth = in.ConsumeIntegralInRange<int>(-2, 300);
      if (in.ConsumeBool())
        r.rerank_fusion_weight = in.ConsumeFloatingPoint<double>();
      r.filter = in.ConsumeRandomLengthString(256);
      r.include_text = in.ConsumeBool();
      r.include_metadata = in.ConsumeBool();
      r.text_max_bytes = in.ConsumeIntegralInRange<int64_t>(-1, 100000);
      if (in.ConsumeBool()) {  // a caller's embedding, right length or not
        const int n = in.ConsumeBool() ? pipeline::testing_fakes::kDim
                                       : in.ConsumeIntegralInRange<int>(1, 40);
        for (int i = 0; i < n; ++i) {
          r.query_vector.push_back(in.ConsumeFloatingPoint<float>());
        }
      }
      Check(w.pipe->Search(r, ctx).status(), "search");
      break;
    }
    case 1: {
      pipeline::UpsertBatch b;
      b.collection = collection;
      const int n = in.ConsumeIntegralInRange<int>(0, 4);
      for (int i = 0; i < n; ++i) {
        index::Document d;
        d.id = in.ConsumeRandomLengthString(24);
        d.title = in.ConsumeRandomLengthString(24);
        d.text = in.ConsumeRandomLengthString(128);
        d.metadata = in.ConsumeRandomLengthString(128);
        b.documents.push_back(d);
      }
      Check(w.pipe->Upsert(std::move(b), ctx).status(), "upsert");
      break;
    }
    case 2: {
      pipeline::DeleteRequest r;
      r.collection = collection;
      if (in.ConsumeBool()) r.ids.push_back(in.ConsumeRandomLengthString(24));
      r.filter = in.ConsumeRandomLengthString(256);
      Check(w.pipe->Delete(r).status(), "delete");
      break;
    }
    case 3: {
      std::vector<std::string> ids;
      const int n = in.ConsumeIntegralInRange<int>(0, 3);
      for (int i = 0; i < n; ++i)
        ids.push_back(in.ConsumeRandomLengthString(24));
      Check(
          w.pipe
              ->Get(collection, ids, in.ConsumeIntegralInRange<int64_t>(-1, 50))
              .status(),
          "get");
      break;
    }
    case 4: {
      pipeline::EmbedRequest r;
      const int n = in.ConsumeIntegralInRange<int>(0, 3);
      for (int i = 0; i < n; ++i)
        r.texts.push_back(in.ConsumeRandomLengthString(64));
      r.truncate = in.ConsumeBool();
      Check(w.pipe->Embed(r, ctx).status(), "embed");
      break;
    }
    default: {
      pipeline::RerankRequest r;
      r.query = in.ConsumeRandomLengthString(64);
      const int n = in.ConsumeIntegralInRange<int>(0, 3);
      for (int i = 0; i < n; ++i)
        r.documents.push_back(in.ConsumeRandomLengthString(64));
      r.top_n = in.ConsumeIntegralInRange<int>(-1, 5);
      r.fusion_weight = in.ConsumeFloatingPoint<double>();
      Check(w.pipe->Rerank(r, ctx).status(), "rerank");
      break;
    }
  }
  // The collection keeps answering.
  pipeline::SearchRequest ok;
  ok.collection = "c";
  ok.query = "probe";
  Check(w.pipe->Search(ok, ctx).status(), "search after");
  return 0;
}
