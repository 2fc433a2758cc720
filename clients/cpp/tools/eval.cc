// eval.cc: `diffrank eval` (see eval.h).
#include "eval.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "nlohmann/json.hpp"

namespace diffrank::cli {
namespace {

using json = nlohmann::json;
using Qrels = std::map<std::string, std::map<std::string, int>>;

double Ndcg(const std::vector<std::string>& ranked,
            const std::map<std::string, int>& rel, size_t k = 10) {
  double dcg = 0, idcg = 0;
  for (size_t i = 0; i < std::min(k, ranked.size()); ++i) {
    auto it = rel.find(ranked[i]);
    if (it != rel.end()) dcg += it->second / std::log2(i + 2.0);
  }
  std::vector<int> ideal;
  for (const auto& [d, g] : rel) ideal.push_back(g);
  std::sort(ideal.rbegin(), ideal.rend());
  for (size_t i = 0; i < std::min(k, ideal.size()); ++i) {
    idcg += ideal[i] / std::log2(i + 2.0);
  }
  return idcg > 0 ? dcg / idcg : 0;
}

double Recall(const std::vector<std::string>& ranked,
              const std::map<std::string, int>& rel, size_t k = 100) {
  std::set<std::string> top(ranked.begin(),
                            ranked.begin() + std::min(k, ranked.size()));
  size_t hit = 0;
  for (const auto& [d, g] : rel) hit += top.count(d);
  return rel.empty() ? 0 : double(hit) / rel.size();
}

double Mrr(const std::vector<std::string>& ranked,
           const std::map<std::string, int>& rel, size_t k = 10) {
  for (size_t i = 0; i < std::min(k, ranked.size()); ++i) {
    if (rel.count(ranked[i])) return 1.0 / (i + 1);
  }
  return 0;
}

double Round4(double x) { return std::round(x * 1e4) / 1e4; }

bool ReadLines(const std::string& path, std::vector<std::string>& out) {
  std::ifstream in(path);
  if (!in) return false;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return true;
}

}  // namespace

int RunEval(const Client& client, const EvalOptions& o,
            int (*report)(const grpc::Status&)) {
  const std::string dir = o.beir_dir;
  std::string name = dir;
  while (!name.empty() && name.back() == '/') name.pop_back();
  name = name.substr(name.find_last_of('/') + 1);
  // Inputs.
  std::vector<std::string> corpus, queries_lines, qrels_lines;
  if (!ReadLines(dir + "/corpus.jsonl", corpus) ||
      !ReadLines(dir + "/queries.jsonl", queries_lines) ||
      !ReadLines(dir + "/qrels.tsv", qrels_lines)) {
    std::cerr << "diffrank: " << dir
              << " is not a BEIR folder (corpus.jsonl, queries.jsonl, "
                 "qrels.tsv)\n";
    return 2;
  }
  std::vector<v1::Document> docs;
  for (size_t i = 0; i < corpus.size(); ++i) {
    json j = json::parse(corpus[i], nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("_id")) {
      std::cerr << "diffrank: " << dir << "/corpus.jsonl:" << i + 1
                << ": not a document with an _id\n";
      return 2;
    }
    v1::Document d;
    d.set_id(j["_id"].is_string() ? j["_id"].get<std::string>()
                                  : j["_id"].dump());
    d.set_title(j.value("title", ""));
    d.set_text(j.value("text", ""));
    // Text is required: a document with a title only is indexed as its text
    // (so the passage, "title text", is the title once, as scripts/eval has
    // it); one with neither gets its id.
    if (d.text().empty()) {
      d.set_text(d.title().empty() ? d.id() : d.title());
      d.clear_title();
    }
    docs.push_back(std::move(d));
  }
  std::map<std::string, std::string> queries;
  for (const std::string& line : queries_lines) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("_id") && j.contains("text")) {
      queries[j["_id"].is_string() ? j["_id"].get<std::string>()
                                   : j["_id"].dump()] =
          j["text"].get<std::string>();
    }
  }
  Qrels qrels;
  for (size_t i = 1; i < qrels_lines.size(); ++i) {  // header first
    std::istringstream f(qrels_lines[i]);
    std::string q, d;
    int g = 0;
    if (f >> q >> d >> g && g >= 1) qrels[q][d] = g;
  }
  std::vector<std::string> qids;
  for (const auto& [q, rel] : qrels) {
    if (queries.count(q)) qids.push_back(q);
  }

  // Index through the API.
  const std::string col = o.collection.empty()
                              ? "eval-" + std::to_string(::getpid())
                              : o.collection;
  v1::CreateCollectionRequest create;
  create.set_name(col);
  v1::CollectionInfo info;
  if (auto s = client.CreateCollection(create, &info); !s.ok())
    return report(s);
  v1::UpsertResponse up;
  CallOptions long_call{std::chrono::milliseconds(3600 * 1000)};
  if (auto s = client.Upsert(col, docs, &up, 64, long_call); !s.ok()) {
    return report(s);
  }

  // Search each judged query in each mode.
  struct Mode {
    const char* name;
    v1::SearchMode mode;
    bool rerank;
  };
  const Mode modes[] = {{"lexical", v1::SEARCH_MODE_LEXICAL, false},
                        {"dense", v1::SEARCH_MODE_DENSE, false},
                        {"hybrid", v1::SEARCH_MODE_HYBRID, false},
                        {"hybrid+rerank", v1::SEARCH_MODE_HYBRID, true}};
  int code = 0;
  for (const Mode& m : modes) {
    double ndcg = 0, recall = 0, mrr = 0;
    for (const std::string& q : qids) {
      v1::SearchRequest r;
      r.set_collection(col);
      r.set_query(queries[q]);
      r.set_top_k(100);
      r.set_candidates(100);  // each retriever's top 100, as scripts/eval fuses
      r.set_mode(m.mode);
      r.set_rerank(m.rerank);
      v1::SearchResponse resp;
      if (auto s = client.Search(r, &resp); !s.ok()) {
        code = report(s);
        break;
      }
      std::vector<std::string> ranked;
      for (const auto& h : resp.hits()) ranked.push_back(h.id());
      ndcg += Ndcg(ranked, qrels[q]);
      recall += Recall(ranked, qrels[q]);
      mrr += Mrr(ranked, qrels[q]);
    }
    if (code != 0) break;
    const double n = std::max<size_t>(1, qids.size());
    json line = {
        {"collection", name},          {"system", m.name},
        {"documents", docs.size()},    {"queries", qids.size()},
        {"ndcg@10", Round4(ndcg / n)}, {"recall@100", Round4(recall / n)},
        {"mrr@10", Round4(mrr / n)}};
    std::cout << line.dump() << std::endl;
  }
  if (!o.keep) {
    if (auto s = client.DropCollection(col); !s.ok() && code == 0) {
      code = report(s);
    }
  }
  return code;
}

}  // namespace diffrank::cli
