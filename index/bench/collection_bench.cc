// diffrank-index-bench: collection throughput, search latency and recall next
// to raw FAISS in the same process, plus BM25 latency and bytes on disk.
//
//   diffrank-index-bench --n 100000 [--dim 384] [--factories Flat,HNSW32]
//                        [--queries 200] [--dir /tmp/bench] [--batch 1000]
// Data: n unit vectors drawn around 1000 random centres (clustered like real
// embeddings), each with a synthetic ~40-word text from a Zipf vocabulary;
// queries are noisy copies of random documents. Ground truth: exact inner
// product (FAISS IndexFlatIP). For each factory string, raw FAISS (add in
// batches of --batch, search one query at a time, efSearch 64 / nprobe 16)
// and a diffrank Collection (Upsert batches of --batch: durable SQLite commit
// with synchronous=FULL + FAISS add; SearchDense one query at a time) are
// timed; overhead = diffrank / raw - 1. Prints JSON lines and a table.
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/index_factory.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "index/collection.h"

namespace di = diffrank::index;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Latency {
  double p50_ms, p99_ms, qps;
};

Latency Summarize(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double total = 0;
  for (double m : ms) total += m;
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)],
          1000.0 * ms.size() / total};
}

void Normalize(float* v, int dim) {
  double n = 0;
  for (int i = 0; i < dim; ++i) n += double(v[i]) * v[i];
  const float inv = static_cast<float>(1 / std::sqrt(n));
  for (int i = 0; i < dim; ++i) v[i] *= inv;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 100000;
  int dim = 384, queries = 200, batch = 1000;
  std::string factories = "Flat,HNSW32", dir = "/tmp/diffrank-index-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--n")
      n = std::atoll(v.c_str());
    else if (a == "--dim")
      dim = std::atoi(v.c_str());
    else if (a == "--factories")
      factories = v;
    else if (a == "--queries")
      queries = std::atoi(v.c_str());
    else if (a == "--dir")
      dir = v;
    else if (a == "--batch")
      batch = std::atoi(v.c_str());
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  std::mt19937 rng(42);
  std::normal_distribution<float> g(0, 1);
  // Clustered vectors.
  const int centres = 1000;
  std::vector<float> c(static_cast<size_t>(centres) * dim);
  for (float& x : c) x = g(rng);
  for (int i = 0; i < centres; ++i) Normalize(&c[size_t(i) * dim], dim);
  std::vector<float> x(static_cast<size_t>(n) * dim);
  const float spread = 1.0f / std::sqrt(static_cast<float>(dim));
  for (int64_t i = 0; i < n; ++i) {
    const float* ce = &c[(rng() % centres) * size_t(dim)];
    float* v = &x[size_t(i) * dim];
    for (int k = 0; k < dim; ++k) v[k] = ce[k] + 0.9f * spread * g(rng);
    Normalize(v, dim);
  }
  std::vector<float> q(static_cast<size_t>(queries) * dim);
  for (int i = 0; i < queries; ++i) {
    const float* src = &x[(rng() % n) * size_t(dim)];
    for (int k = 0; k < dim; ++k)
      q[size_t(i) * dim + k] = src[k] + 0.5f * spread * g(rng);
    Normalize(&q[size_t(i) * dim], dim);
  }
  // Synthetic texts (Zipf over 50k words).
  std::vector<double> w(50000);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 1.0 / (i + 1);
  std::discrete_distribution<int> zipf(w.begin(), w.end());
  auto text = [&](int words) {
    std::string t;
    for (int k = 0; k < words; ++k)
      absl::StrAppend(&t, k ? " " : "", "w", zipf(rng));
    return t;
  };
  // Ground truth.
  std::vector<faiss::Index::idx_t> truth(size_t(queries) * 10);
  {
    faiss::IndexFlatIP flat(dim);
    flat.add(n, x.data());
    std::vector<float> d(size_t(queries) * 10);
    flat.search(queries, q.data(), 10, d.data(), truth.data());
  }
  auto recall = [&](int qi, const std::vector<int64_t>& got) {
    std::set<int64_t> want(truth.begin() + qi * 10,
                           truth.begin() + qi * 10 + 10);
    int hit = 0;
    for (int64_t l : got) hit += want.count(l);
    return hit / 10.0;
  };
  std::printf(
      "| factory | n | raw FAISS add/s | diffrank upsert/s | add ratio | raw "
      "p50 ms | "
      "diffrank p50 ms | raw p99 ms | diffrank p99 ms | raw QPS | diffrank QPS "
      "| "
      "search overhead | raw recall@10 | diffrank recall@10 | disk bytes/doc "
      "|\n");
  std::printf(
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const std::string& factory :
       std::vector<std::string>(absl::StrSplit(factories, ','))) {
    // Raw FAISS.
    std::unique_ptr<faiss::Index> raw(faiss::index_factory(
        dim, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(raw.get()))
      h->hnsw.efSearch = 64;
    auto t0 = Clock::now();
    for (int64_t i = 0; i < n; i += batch) {
      raw->add(std::min<int64_t>(batch, n - i), &x[size_t(i) * dim]);
    }
    const double raw_add = n / Seconds(t0, Clock::now());
    std::vector<double> raw_ms;
    double raw_recall = 0;
    for (int i = 0; i < queries; ++i) {
      std::vector<float> d(10);
      std::vector<faiss::Index::idx_t> l(10);
      auto s = Clock::now();
      raw->search(1, &q[size_t(i) * dim], 10, d.data(), l.data());
      raw_ms.push_back(1000 * Seconds(s, Clock::now()));
      raw_recall += recall(i, std::vector<int64_t>(l.begin(), l.end()));
    }
    // diffrank Collection.
    const std::string cdir = absl::StrCat(dir, "/", factory, "_", n);
    std::filesystem::remove_all(cdir);
    di::CollectionOptions o;
    o.dir = cdir;
    o.model_id = "bench";
    o.dimension = dim;
    o.factory = factory;
    o.snapshot_every = int64_t{1} << 40;  // one snapshot at the end, timed
    auto coll = *di::Collection::Create(o);
    t0 = Clock::now();
    for (int64_t i = 0; i < n; i += batch) {
      std::vector<di::Document> docs;
      for (int64_t j = i; j < std::min<int64_t>(n, i + batch); ++j) {
        di::Document d;
        d.id = absl::StrCat("doc", j);
        d.text = text(40);
        d.metadata = absl::StrCat(R"({"shard": )", j % 16, "}");
        d.vector.assign(&x[size_t(j) * dim], &x[size_t(j) * dim] + dim);
        docs.push_back(std::move(d));
      }
      if (auto st = coll->Upsert(std::move(docs)); !st.ok()) {
        std::cerr << st << "\n";
        return 1;
      }
    }
    const double ours_add = n / Seconds(t0, Clock::now());
    t0 = Clock::now();
    if (auto st = coll->Snapshot(); !st.ok()) {
      std::cerr << st << "\n";
      return 1;
    }
    const double snapshot_s = Seconds(t0, Clock::now());
    std::vector<double> ours_ms;
    double ours_recall = 0;
    di::SearchOptions so;
    so.top_k = 10;
    for (int i = 0; i < queries; ++i) {
      std::vector<float> qv(&q[size_t(i) * dim], &q[size_t(i) * dim] + dim);
      auto s = Clock::now();
      auto hits = coll->SearchDense(qv, so);
      ours_ms.push_back(1000 * Seconds(s, Clock::now()));
      std::vector<int64_t> labels;
      for (const di::Hit& h : *hits)
        labels.push_back(std::atoll(h.id.c_str() + 3));
      ours_recall += recall(i, labels);
    }
    // BM25 latency (3-word queries drawn from the same vocabulary).
    std::vector<double> bm25_ms;
    for (int i = 0; i < queries; ++i) {
      const std::string qt = text(3);
      auto s = Clock::now();
      auto hits = coll->SearchLexical(qt, so);
      bm25_ms.push_back(1000 * Seconds(s, Clock::now()));
    }
    const di::CollectionStats st = coll->Stats();
    const Latency r = Summarize(raw_ms), u = Summarize(ours_ms),
                  b = Summarize(bm25_ms);
    std::printf(
        "| %s | %lld | %.0f | %.0f | %.2f | %.3f | %.3f | %.3f | %.3f | %.0f | "
        "%.0f | "
        "%+.1f%% | %.3f | %.3f | %.0f |\n",
        factory.c_str(), static_cast<long long>(n), raw_add, ours_add,
        ours_add / raw_add, r.p50_ms, u.p50_ms, r.p99_ms, u.p99_ms, r.qps,
        u.qps, 100 * (u.p50_ms / r.p50_ms - 1), raw_recall / queries,
        ours_recall / queries, double(st.disk_bytes) / n);
    std::fprintf(stderr,
                 "{\"factory\": \"%s\", \"n\": %lld, \"snapshot_s\": %.2f, "
                 "\"bm25_p50_ms\": "
                 "%.3f, \"bm25_p99_ms\": %.3f, \"bm25_qps\": %.0f, "
                 "\"disk_bytes\": %lld, "
                 "\"omp_threads\": %d}\n",
                 factory.c_str(), static_cast<long long>(n), snapshot_s,
                 b.p50_ms, b.p99_ms, b.qps,
                 static_cast<long long>(st.disk_bytes), omp_get_max_threads());
    std::fflush(stdout);
  }
  return 0;
}
