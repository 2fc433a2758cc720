// eval.h: `diffrank eval --beir DIR`: a BEIR folder through the real API.
//
// Indexes corpus.jsonl into a scratch collection (Upsert), runs every
// judged query of queries.jsonl / qrels.tsv in four modes (lexical, dense,
// hybrid = RRF of each retriever's top 100, hybrid + rerank at the server's
// default depth), and prints one JSON line per mode with nDCG@10 (linear
// gains, log2 discounts), Recall@100 and MRR@10, averaged over the judged
// queries: the definitions of train/diffrank_ref/metrics.py, so the numbers
// compare with scripts/eval's.
#ifndef DIFFRANK_CLIENTS_CPP_TOOLS_EVAL_H_
#define DIFFRANK_CLIENTS_CPP_TOOLS_EVAL_H_

#include <string>

#include "diffrank/client.h"

namespace diffrank::cli {

struct EvalOptions {
  std::string beir_dir;
  std::string collection;  // "" = a scratch name, dropped at the end
  bool keep = false;       // keep the scratch collection
};

// Returns the process exit code (0 ok; 2 unreadable input; else the
// failing call's code as the CLI maps it).
int RunEval(const Client& client, const EvalOptions& options,
            int (*report)(const grpc::Status&));

}  // namespace diffrank::cli

#endif  // DIFFRANK_CLIENTS_CPP_TOOLS_EVAL_H_
