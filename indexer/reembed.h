// reembed.h: diffrank-index --reembed, moving a live collection to another
// embedding model without a moment of failed searches.
//
// The collection's documents are exported (through its running server with
// Get paging, or straight from a data directory no server holds) into a
// JSONL file in <data_dir>/.staging; the offline build (offline.h) embeds
// that file with the new model into a new version beside the live one; the
// caller publishes it (Collections::Publish, one atomic exchange), after
// checking with LiveState that no write reached the collection meanwhile
// (a write after the export would be lost by the exchange). Re-running the
// same command re-exports; an unchanged export keeps its file (and so the
// build's checkpoint), so an interrupted build resumes.
// Thread-safety: one re-embed per collection at a time.
#ifndef DIFFRANK_INDEXER_REEMBED_H_
#define DIFFRANK_INDEXER_REEMBED_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace diffrank::indexer {

struct ReembedSource {
  std::string collection;
  // Through a running server (host:port, with credentials and key) ...
  std::string server;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string api_key;
  // ... or, with server "", from this data directory (locked meanwhile).
  std::string data_dir;
};

// LiveState: what the collection is now. Equal states mean no document was
// written or deleted in between (every write adds an index entry; every
// delete marks one dead).
struct LiveState {
  std::string model;    // the embedder that built it
  std::string factory;  // its FAISS index string
  int64_t documents = 0;
  int64_t index_vectors = 0;
  int64_t dead_vectors = 0;
  bool operator==(const LiveState& o) const {
    return model == o.model && documents == o.documents &&
           index_vectors == o.index_vectors && dead_vectors == o.dead_vectors;
  }
};

absl::StatusOr<LiveState> ReadLiveState(const ReembedSource& source);

// ExportCollection writes every document as a JSONL line {"id", "title",
// "text", "metadata"} to <staging_dir>/.reembed-<collection>.jsonl and
// returns that path; `on_documents` gets the running count.
absl::StatusOr<std::string> ExportCollection(
    const ReembedSource& source, const std::string& staging_dir,
    const std::function<void(int64_t)>& on_documents);

}  // namespace diffrank::indexer

#endif  // DIFFRANK_INDEXER_REEMBED_H_
