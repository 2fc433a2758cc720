// online.cc: streaming to a running server (see online.h).
#include "indexer/online.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "diffrank/v1/diffrank.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "index/collection.h"
#include "index/manifest.h"
#include "nlohmann/json.hpp"

namespace diffrank::indexer {
namespace {

namespace fs = std::filesystem;

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

// Prepare sets a call's deadline and API key.
void Prepare(grpc::ClientContext& ctx, const std::string& api_key,
             std::chrono::seconds timeout) {
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  if (!api_key.empty()) {
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", api_key));
  }
}

bool Retryable(grpc::StatusCode c) {
  return c == grpc::StatusCode::UNAVAILABLE ||
         c == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

std::string Signature(const OnlineOptions& o) {
  std::string s =
      absl::StrCat("online-v1|", o.server, "|", o.collection, "|", o.input, "|",
                   o.input_options.format, "|", o.input_options.id_field, "|",
                   o.input_options.text_field, "|", o.batch_documents);
  if (o.input_options.chunk_tokens > 0) {
    absl::StrAppend(&s, "|chunks ", o.input_options.chunk_tokens, "/",
                    o.input_options.chunk_overlap);
  }
  if (o.input_options.shards > 1) {
    absl::StrAppend(&s, "|shard ", o.input_options.shard, "/",
                    o.input_options.shards);
  }
  absl::StrAppend(&s, "|", InputFingerprint(o.input));
  return s;
}

int64_t ReadCheckpoint(const std::string& file, const std::string& sig) {
  if (file.empty()) return 0;
  std::ifstream in(file);
  if (!in) return 0;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("signature", "") != sig) {
    return 0;
  }
  return j.value("records", int64_t{0});
}

// Sender runs up to in_flight batches at once and advances the checkpoint
// over the longest prefix of acknowledged batches.
class Sender {
 public:
  Sender(const OnlineOptions& o, std::shared_ptr<grpc::Channel> channel,
         std::string sig, int64_t committed)
      : o_(o),
        stub_(v1::Diffrank::NewStub(channel)),
        sig_(std::move(sig)),
        committed_records_(committed) {}

  // Submit waits for a free slot, then sends `batch` on its own thread.
  absl::Status Submit(v1::UpsertRequest batch, int64_t end_record) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return active_ < o_.in_flight || !error_.ok(); });
    if (!error_.ok()) return error_;
    ++active_;
    const int64_t seq = next_seq_++;
    l.unlock();
    std::thread([this, batch = std::move(batch), seq, end_record]() mutable {
      int sent = 0;
      const absl::Status s = Send(std::move(batch), sent);
      Done(seq, end_record, sent, s);
    }).detach();
    return absl::OkStatus();
  }

  // Wait returns when every batch finished; the first error, if any.
  absl::Status Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return active_ == 0; });
    return error_;
  }

  int64_t documents() const { return documents_; }
  int64_t retries() const { return retries_; }
  int64_t rejected() const { return rejected_; }

 private:
  // Send delivers `batch`; `sent` is how many of its documents the server
  // took. With --on-error skip, a document the server refuses (its
  // INVALID_ARGUMENT names "documents[i]"; the server validates a whole
  // batch before writing any of it) is reported and left out, and the rest
  // is sent again: such a record never stops a load that skips bad ones.
  absl::Status Send(v1::UpsertRequest batch, int& sent) {
    std::mt19937 rng(static_cast<uint32_t>(getpid() ^ batch.documents_size()));
    // A busy server that commits other batches of this run meanwhile is
    // alive and making progress: the count of attempts starts again, so a
    // batch that keeps losing the race for a queue slot is not given up
    // (max_attempts bounds the tries without any progress).
    int64_t progress = accepted_.load();
    for (int attempt = 1;; ++attempt) {
      grpc::ClientContext ctx;
      Prepare(ctx, o_.api_key, std::chrono::minutes(10));
      v1::UpsertResponse resp;
      std::unique_ptr<grpc::ClientWriter<v1::UpsertRequest>> w =
          stub_->Upsert(&ctx, &resp);
      w->Write(batch);
      w->WritesDone();
      const grpc::Status s = w->Finish();
      if (s.ok()) {
        sent = batch.documents_size();
        ++accepted_;
        return absl::OkStatus();
      }
      if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT && o_.skip_bad) {
        const int i = RefusedDocument(s.error_message());
        if (i >= 0 && i < batch.documents_size()) {
          Refused(batch.documents(i).id(), s.error_message());
          batch.mutable_documents()->DeleteSubrange(i, 1);
          if (batch.documents_size() == 0) return absl::OkStatus();
          --attempt;  // not a retry: the batch changed
          continue;
        }
      }
      if (const int64_t now = accepted_.load(); now != progress) {
        progress = now;
        attempt = 1;
      }
      if (!Retryable(s.error_code()) || attempt >= o_.max_attempts) {
        return absl::Status(
            FromGrpc(s).code(),
            absl::StrCat("batch of documents ", batch.documents(0).id(), " .. ",
                         batch.documents(batch.documents_size() - 1).id(), ": ",
                         s.error_message()));
      }
      ++retries_;
      // Exponential back-off with full jitter: 0.1 s .. 10 s.
      const double cap = std::min(10.0, 0.1 * (1 << std::min(attempt, 7)));
      std::uniform_real_distribution<double> jitter(0, cap);
      absl::SleepFor(absl::Seconds(jitter(rng)));
    }
  }

  void Done(int64_t seq, int64_t end_record, int docs, const absl::Status& s) {
    std::lock_guard<std::mutex> l(mu_);
    if (!s.ok()) {
      if (error_.ok()) error_ = s;
    } else {
      documents_ += docs;
      finished_[seq] = end_record;
      bool advanced = false;
      for (auto it = finished_.begin();
           it != finished_.end() && it->first == next_commit_;
           it = finished_.erase(it)) {
        committed_records_ = it->second;
        ++next_commit_;
        advanced = true;
      }
      if (advanced && !o_.checkpoint_file.empty()) {
        nlohmann::json j = {{"signature", sig_},
                            {"records", committed_records_}};
        if (absl::Status w =
                index::WriteFileAtomically(o_.checkpoint_file, j.dump() + "\n");
            !w.ok() && error_.ok()) {
          error_ = w;
        }
      }
    }
    --active_;
    cv_.notify_all();
  }

  // RefusedDocument: i of the "documents[i]" an error message names, or -1.
  static int RefusedDocument(const std::string& message) {
    const size_t at = message.find("documents[");
    if (at == std::string::npos) return -1;
    int i = 0;
    size_t p = at + 10;
    if (p >= message.size() || !isdigit(static_cast<unsigned char>(message[p])))
      return -1;
    for (;
         p < message.size() && isdigit(static_cast<unsigned char>(message[p]));
         ++p) {
      if (i > 10'000'000) return -1;
      i = i * 10 + (message[p] - '0');
    }
    return p < message.size() && message[p] == ']' ? i : -1;
  }

  void Refused(const std::string& id, const std::string& why) {
    std::lock_guard<std::mutex> l(report_mu_);
    ++rejected_;
    if (o_.on_bad) {
      o_.on_bad(absl::StrCat("document \"", id, "\""),
                absl::StrCat("refused by the server: ", why));
    }
  }

  const OnlineOptions& o_;
  std::mutex report_mu_;  // serializes on_bad calls from sender threads
  std::unique_ptr<v1::Diffrank::Stub> stub_;
  const std::string sig_;
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  int64_t next_seq_ = 0, next_commit_ = 0;
  std::map<int64_t, int64_t> finished_;  // seq -> records covered
  int64_t committed_records_;
  std::atomic<int64_t> documents_{0}, retries_{0}, rejected_{0};
  std::atomic<int64_t> accepted_{0};  // batches the server took (any thread)
  absl::Status error_;
};

}  // namespace

absl::StatusOr<OnlineReport> RunOnline(const OnlineOptions& o) {
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(std::string format, ResolveFormat(o.input, o.input_options));
  (void)format;
  std::shared_ptr<grpc::ChannelCredentials> creds =
      grpc::InsecureChannelCredentials();
  if (!o.tls_ca_file.empty()) {
    std::ifstream in(o.tls_ca_file);
    if (!in) {
      return absl::NotFoundError(absl::StrCat("cannot read ", o.tls_ca_file));
    }
    std::stringstream pem;
    pem << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    creds = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateChannel(o.server, creds);
  {
    // Create the collection unless it exists.
    grpc::ClientContext ctx;
    Prepare(ctx, o.api_key, std::chrono::seconds(60));
    v1::CreateCollectionRequest req;
    req.set_name(o.collection);
    req.set_index(o.index);
    v1::CollectionInfo info;
    grpc::Status s =
        v1::Diffrank::NewStub(channel)->CreateCollection(&ctx, req, &info);
    if (s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      // A write key may not create collections but may fill one that
      // exists: ask whether it does.
      grpc::ClientContext stats_ctx;
      Prepare(stats_ctx, o.api_key, std::chrono::seconds(60));
      v1::CollectionStatsRequest stats_req;
      stats_req.set_name(o.collection);
      v1::CollectionStatsResponse stats;
      if (v1::Diffrank::NewStub(channel)
              ->CollectionStats(&stats_ctx, stats_req, &stats)
              .ok()) {
        s = grpc::Status::OK;
      }
    }
    if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      return absl::Status(
          FromGrpc(s).code(),
          absl::StrCat("creating collection \"", o.collection, "\" on ",
                       o.server, ": ", s.error_message()));
    }
  }
  const std::string sig = Signature(o);
  OnlineReport report;
  report.resumed_from = ReadCheckpoint(o.checkpoint_file, sig);
  Sender sender(o, channel, sig, report.resumed_from);
  RecordChecker checker{index::CollectionOptions()};  // default limits
  v1::UpsertRequest batch;
  batch.set_collection(o.collection);
  int64_t consumed = 0;
  std::atomic<int64_t> bad_seen{0};
  const int64_t total = CountRecords(o.input, o.input_options);
  auto snapshot = [&] {
    Progress p;
    p.total_records = total;
    p.embedded_at_start = report.resumed_from;
    p.documents = p.embedded = report.resumed_from + sender.documents();
    p.bad = bad_seen + sender.rejected();
    p.elapsed = absl::Now() - start;
    return p;
  };
  // The reporter: progress even while the first batches are computed.
  std::mutex reporter_mu;
  std::condition_variable reporter_cv;
  bool reading_done = false;
  std::thread reporter([&] {
    std::unique_lock<std::mutex> l(reporter_mu);
    do {  // at once (the total is known before the first answer), then 4/s
      if (o.on_progress) o.on_progress(snapshot());
    } while (!reporter_cv.wait_for(l, std::chrono::milliseconds(250),
                                   [&] { return reading_done; }));
  });
  auto stop_reporter = [&] {
    {
      std::lock_guard<std::mutex> l(reporter_mu);
      reading_done = true;
    }
    reporter_cv.notify_all();
    if (reporter.joinable()) reporter.join();
  };
  struct JoinAtExit {
    std::function<void()> stop;
    ~JoinAtExit() { stop(); }
  } join_at_exit{stop_reporter};
  auto on_bad = [&](const std::string& where,
                    const std::string& why) -> absl::Status {
    if (consumed++ < report.resumed_from) return absl::OkStatus();
    ++report.bad;
    ++bad_seen;
    if (o.on_bad) o.on_bad(where, why);
    if (!o.skip_bad) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": ", why, " (--on-error fail)"));
    }
    return absl::OkStatus();
  };
  auto on_good = [&](Record r) -> absl::Status {
    if (o.interrupted && o.interrupted()) {
      return absl::CancelledError("interrupted");
    }
    if (std::string why = checker.Problem(r.doc); !why.empty()) {
      return on_bad(r.where, why);
    }
    if (consumed++ < report.resumed_from) return absl::OkStatus();
    v1::Document* d = batch.add_documents();
    d->set_id(std::move(r.doc.id));
    d->set_title(std::move(r.doc.title));
    d->set_text(std::move(r.doc.text));
    d->set_metadata(std::move(r.doc.metadata));
    if (batch.documents_size() >= o.batch_documents) {
      RETURN_IF_ERROR(sender.Submit(std::move(batch), consumed));
      batch = v1::UpsertRequest();
      batch.set_collection(o.collection);
    }
    return absl::OkStatus();
  };
  absl::Status s = ReadRecords(o.input, o.input_options, on_good, on_bad);
  if (s.ok() && batch.documents_size() > 0) {
    s = sender.Submit(std::move(batch), consumed);
  }
  const absl::Status sent = sender.Wait();
  stop_reporter();
  if (o.on_progress) o.on_progress(snapshot());
  report.documents = sender.documents();
  report.retries = sender.retries();
  report.bad += sender.rejected();
  report.elapsed = absl::Now() - start;
  if (s.code() == absl::StatusCode::kCancelled && sent.ok()) {
    return absl::CancelledError(absl::StrCat(
        "interrupted: the server acknowledged ", report.documents,
        " documents in this run (", report.resumed_from,
        " records were done before); re-run the same command to resume"));
  }
  if (s.ok()) s = sent;
  if (!s.ok()) return s;
  if (!o.checkpoint_file.empty()) {
    std::error_code ec;
    fs::remove(o.checkpoint_file, ec);  // done: a rerun starts over
  }
  return report;
}

}  // namespace diffrank::indexer
