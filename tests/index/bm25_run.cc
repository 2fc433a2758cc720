// bm25_run: loads a BEIR-layout folder into a collection and writes the
// lexical (FTS5 BM25) top-100 of every query as JSON {qid: [doc ids]}.
// Used by bm25_quality.py, which scores it next to the SQLite FTS5 anchor.
// Usage: bm25_run BEIR_DIR WORK_DIR OUT.json [anchor]
// With "anchor", each query word is first reduced to its alphanumeric
// characters, as the anchor script does ("don't" -> "dont"), to compare the
// BM25 engines alone (stopwords kept, as the anchor does); without it
// queries go in as users send them (the product drops English stopwords).
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "index/collection.h"
#include "nlohmann/json.hpp"

namespace di = diffrank::index;

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: bm25_run BEIR_DIR WORK_DIR OUT.json [anchor]\n";
    return 2;
  }
  const std::string beir = argv[1], work = argv[2];
  std::filesystem::remove_all(work);
  di::CollectionOptions o;
  o.dir = work;
  o.model_id = "bm25-only";
  o.dimension = 4;
  o.sync_full = false;
  auto c = di::Collection::Create(o);
  if (!c.ok()) {
    std::cerr << c.status() << "\n";
    return 1;
  }
  std::ifstream corpus(beir + "/corpus.jsonl");
  std::string line;
  std::vector<di::Document> batch;
  auto flush = [&] {
    if (absl::Status st = (*c)->Upsert(std::move(batch)); !st.ok()) {
      std::cerr << st << "\n";
      std::exit(1);
    }
    batch.clear();
  };
  while (std::getline(corpus, line)) {
    auto j = nlohmann::json::parse(line);
    di::Document d;
    d.id = j["_id"].get<std::string>();
    d.title = j.value("title", "");
    d.text = j.value("text", "");
    d.vector = {1, 0, 0, 0};  // lexical only
    batch.push_back(std::move(d));
    if (batch.size() == 1000) flush();
  }
  flush();
  std::ifstream queries(beir + "/queries.jsonl");
  nlohmann::json run = nlohmann::json::object();
  di::SearchOptions so;
  so.top_k = 100;
  so.drop_stopwords = argc != 5;  // the anchor keeps every query word
  while (std::getline(queries, line)) {
    auto j = nlohmann::json::parse(line);
    std::string q = j["text"].get<std::string>();
    if (argc == 5) {
      std::string joined;
      for (char ch : q) {
        const auto u = static_cast<unsigned char>(ch);
        if (u >= 0x80 || std::isalnum(u) || std::isspace(u))
          joined.push_back(ch);
      }
      q = joined;
    }
    auto hits = (*c)->SearchLexical(q, so);
    if (!hits.ok()) {
      std::cerr << hits.status() << "\n";
      return 1;
    }
    nlohmann::json ids = nlohmann::json::array();
    for (const di::Hit& h : *hits) ids.push_back(h.id);
    run[j["_id"].get<std::string>()] = ids;
  }
  std::ofstream(argv[3]) << run.dump();
  return 0;
}
