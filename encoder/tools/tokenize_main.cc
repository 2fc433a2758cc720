// diffrank-tokenize: token ids of JSON lines, for checks against other
// tokenizers.
//
//   diffrank-tokenize --vocab vocab.txt [--cased] [--max_length N] < in.jsonl
// Each input line is {"text": ...} or {"a": ..., "b": ...} (a pair); each
// output line is {"ids": [...], "type_ids": [...]} with special tokens, or
// {"error": "..."} for input the tokenizer refuses (invalid UTF-8).
#include <cstdlib>
#include <iostream>
#include <string>

#include "encoder/tokenizer.h"
#include "nlohmann/json.hpp"

namespace de = diffrank::encoder;

int main(int argc, char** argv) {
  std::string vocab;
  de::TokenizerOptions opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--vocab" && i + 1 < argc)
      vocab = argv[++i];
    else if (a == "--cased")
      opts.lower_case = false;
    else if (a == "--max_length" && i + 1 < argc)
      opts.max_length = std::atoi(argv[++i]);
    else {
      std::cerr << "usage: diffrank-tokenize --vocab FILE [--cased] "
                   "[--max_length N]\n";
      return 2;
    }
  }
  auto tok = de::Tokenizer::Create(vocab, opts);
  if (!tok.ok()) {
    std::cerr << "diffrank-tokenize: " << tok.status().message() << "\n";
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    // Parse strings as raw bytes: invalid UTF-8 must reach the tokenizer.
    auto j = nlohmann::json::parse(line, nullptr, false, true);
    if (j.is_discarded()) {
      std::cout << R"({"error": "bad json line"})"
                << "\n";
      continue;
    }
    absl::StatusOr<de::Encoding> e =
        j.contains("a") ? (*tok)->EncodePair(j["a"].get<std::string>(),
                                             j["b"].get<std::string>())
                        : (*tok)->Encode(j["text"].get<std::string>());
    nlohmann::json out;
    if (e.ok()) {
      out["ids"] = e->ids;
      out["type_ids"] = e->type_ids;
    } else {
      out["error"] = std::string(e.status().message());
    }
    std::cout << out.dump(-1, ' ', false,
                          nlohmann::json::error_handler_t::replace)
              << "\n";
  }
  return 0;
}
