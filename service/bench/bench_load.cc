// diffrank-bench-load: builds the service benchmark's collection offline.
//
//   diffrank-bench-load --model EMBED_DIR --input texts.jsonl --dir
//   COLLECTION_DIR
//                       [--embed_tokens 32] [--precision bf16|fp32] [--batch
//                       128]
// Reads {"text": ...} lines and writes a collection (index/collection.h) that
// diffrank-server opens like any other: ids p0, p1, ..., the full text
// stored and indexed by BM25, vectors from the given bi-encoder over only the
// first --embed_tokens tokens of each text. The shortcut exists to make a
// 100k-document latency benchmark affordable on 2 CPU cores: search latency
// (FAISS scan, BM25, rerank of the stored text) does not depend on how good
// the vectors are. Not for real collections: they go through Upsert.
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "encoder/encoder.h"
#include "index/collection.h"
#include "nlohmann/json.hpp"

namespace de = diffrank::encoder;
namespace di = diffrank::index;

int main(int argc, char** argv) {
  std::string model, input, dir, precision = "bf16";
  int embed_tokens = 32, batch = 128;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model = v;
    else if (a == "--input")
      input = v;
    else if (a == "--dir")
      dir = v;
    else if (a == "--embed_tokens")
      embed_tokens = std::stoi(v);
    else if (a == "--precision")
      precision = v;
    else if (a == "--batch")
      batch = std::stoi(v);
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  if (model.empty() || input.empty() || dir.empty() || embed_tokens < 2) {
    std::cerr
        << "usage: diffrank-bench-load --model DIR --input JSONL --dir DIR\n";
    return 2;
  }
  de::EncoderOptions eo;
  eo.model_dir = model;
  eo.precision =
      precision == "fp32" ? de::Precision::kFloat32 : de::Precision::kBFloat16;
  auto enc = de::Encoder::Create(eo);
  if (!enc.ok()) {
    std::cerr << enc.status() << "\n";
    return 1;
  }
  const de::Encoder& e = **enc;
  di::CollectionOptions co;
  co.dir = dir;
  co.model_id = e.config().model_id;
  co.dimension = e.dimension();
  co.sync_full = false;  // rebuilt from scratch if interrupted
  auto col = di::Collection::Create(co);
  if (!col.ok()) {
    std::cerr << col.status() << "\n";
    return 1;
  }
  std::ifstream in(input);
  std::string line;
  std::vector<di::Document> docs;
  std::vector<de::Encoding> rows;
  int64_t n = 0;
  auto flush = [&]() -> bool {
    if (docs.empty()) return true;
    auto v = e.Run(e.tokenizer().Pad(rows));
    if (!v.ok()) {
      std::cerr << v.status() << "\n";
      return false;
    }
    for (size_t i = 0; i < docs.size(); ++i) {
      docs[i].vector.assign(v->begin() + i * e.dimension(),
                            v->begin() + (i + 1) * e.dimension());
    }
    if (auto s = (*col)->Upsert(std::move(docs)); !s.ok()) {
      std::cerr << s << "\n";
      return false;
    }
    docs.clear();
    rows.clear();
    if (size_t(n) % 8192 < size_t(batch)) std::cerr << "loaded " << n << "\n";
    return true;
  };
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("text")) continue;
    di::Document d;
    d.id = "p" + std::to_string(n++);
    d.text = j["text"].get<std::string>();
    auto r = e.tokenizer().Encode(d.text);
    if (!r.ok()) continue;
    if (static_cast<int>(r->ids.size()) > embed_tokens) {
      r->ids.resize(embed_tokens - 1);
      r->type_ids.resize(embed_tokens - 1);
      r->ids.push_back(e.tokenizer().sep_id());
      r->type_ids.push_back(0);
    }
    rows.push_back(*std::move(r));
    docs.push_back(std::move(d));
    if (static_cast<int>(docs.size()) == batch && !flush()) return 1;
  }
  if (!flush()) return 1;
  if (auto s = (*col)->Snapshot(); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  std::cerr << "done: " << n << " documents in " << dir << "\n";
  return 0;
}
