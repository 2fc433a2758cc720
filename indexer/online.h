// online.h: diffrank-index's online mode: streams documents to a running
// server over the Upsert RPC.
//
// Records are read in order (records.h) and cut into batches; up to
// `in_flight` batches are sent concurrently (each its own Upsert stream,
// so the server commits them in parallel with embedding). A batch that
// fails UNAVAILABLE or RESOURCE_EXHAUSTED (server draining, queue full) is
// retried with exponential back-off and jitter: an upsert by id is
// idempotent, so a retry can never duplicate. Records are checked as the
// offline mode checks them (RecordChecker); a record the server still
// refuses (its INVALID_ARGUMENT names documents[i]) is reported and left out
// under --on-error skip, and the rest of its batch is sent again; other
// errors fail the run, naming the records of the batch.
// Resume: after every batch, the checkpoint file records how many input
// records are covered by acknowledged batches (the longest prefix of
// batches that all succeeded); re-running the same command skips them.
// Thread-safety: one run at a time per checkpoint file.
#ifndef DIFFRANK_INDEXER_ONLINE_H_
#define DIFFRANK_INDEXER_ONLINE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "indexer/records.h"

namespace diffrank::indexer {

struct OnlineOptions {
  std::string server;  // host:port
  std::string api_key;
  std::string tls_ca_file;  // PEM roots: use TLS (else plaintext)
  std::string collection;
  std::string index = "Flat";  // used when the collection is created
  std::string input;
  InputOptions input_options;
  bool skip_bad = true;
  int batch_documents = 64;
  int in_flight = 4;
  int max_attempts = 8;
  std::string checkpoint_file;  // "" = no resume
  // Called about every 250 ms from a reporter thread, and at the end.
  std::function<void(const Progress&)> on_progress;
  // Polled between records: true stops reading; batches in flight finish,
  // and the run returns Cancelled saying what the server acknowledged.
  std::function<bool()> interrupted;
  std::function<void(const std::string& where, const std::string& why)> on_bad;
};

struct OnlineReport {
  int64_t documents = 0;  // acknowledged in this run
  int64_t bad = 0;
  int64_t retries = 0;
  int64_t resumed_from = 0;  // records skipped (done by an earlier run)
  absl::Duration elapsed;
};

absl::StatusOr<OnlineReport> RunOnline(const OnlineOptions& options);

}  // namespace diffrank::indexer

#endif  // DIFFRANK_INDEXER_ONLINE_H_
