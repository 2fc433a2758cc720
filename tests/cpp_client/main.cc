// main.cc: a search through the installed diffrank::client package.
//   consumer TARGET API_KEY DEAD_TARGET
// Creates a collection, streams 300 documents in batches, searches, reads
// one back, drops the collection; then checks that a call to a dead server
// is retried (UNAVAILABLE) and ends within its deadline. Exit 0 = all good.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "diffrank/client.h"

namespace {
int Fail(const char* what, const grpc::Status& s) {
  std::fprintf(stderr, "%s: %d %s\n", what, int(s.error_code()),
               s.error_message().c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  diffrank::ClientOptions o;
  o.target = argv[1];
  o.api_key = argv[2];
  diffrank::Client client(o);
  diffrank::v1::CollectionInfo info;
  diffrank::v1::CreateCollectionRequest create;
  create.set_name("cpp");
  if (auto s = client.CreateCollection(create, &info); !s.ok()) {
    return Fail("create", s);
  }
  std::vector<diffrank::v1::Document> docs;
  for (int i = 0; i < 300; ++i) {
    diffrank::v1::Document d;
    d.set_id("doc-" + std::to_string(i));
    d.set_text(i == 123 ? "The Rhine flows through Basel and Cologne."
                        : "Filler passage number " + std::to_string(i));
    docs.push_back(d);
  }
  diffrank::v1::UpsertResponse up;
  if (auto s = client.Upsert("cpp", docs, &up, 64); !s.ok()) {
    return Fail("upsert", s);
  }
  if (up.upserted() != 300 || up.batches() != 5)
    return Fail("upsert count", {});
  diffrank::v1::SearchRequest q;
  q.set_collection("cpp");
  q.set_query("which river passes Basel?");
  q.set_top_k(3);
  diffrank::v1::SearchResponse r;
  if (auto s = client.Search(q, &r); !s.ok()) return Fail("search", s);
  if (r.hits_size() == 0 || r.hits(0).id() != "doc-123") {
    return Fail("search top hit", {});
  }
  diffrank::v1::GetRequest g;
  g.set_collection("cpp");
  g.add_ids("doc-123");
  diffrank::v1::GetResponse got;
  if (auto s = client.Get(g, &got); !s.ok()) return Fail("get", s);
  if (got.documents_size() != 1) return Fail("get count", {});
  diffrank::v1::InfoResponse inf;
  if (auto s = client.Info(&inf); !s.ok()) return Fail("info", s);
  if (auto s = client.DropCollection("cpp"); !s.ok()) return Fail("drop", s);

  // A dead server: idempotent calls are retried, then UNAVAILABLE, within
  // the deadline (1 s here).
  diffrank::ClientOptions dead = o;
  dead.target = argv[3];
  dead.max_attempts = 3;
  diffrank::Client nobody(dead);
  const auto t0 = std::chrono::steady_clock::now();
  diffrank::v1::SearchResponse none;
  grpc::Status s = nobody.Search(q, &none, {std::chrono::milliseconds(1000)});
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
      s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail("dead server code", s);
  }
  if (took > 1.5) return Fail("dead server took too long", s);
  std::printf("ok: %s top %s (%.3f), %d documents, dead server %s in %.2fs\n",
              inf.version().c_str(), r.hits(0).id().c_str(), r.hits(0).score(),
              int(up.upserted()), s.error_message().c_str(), took);
  return 0;
}
