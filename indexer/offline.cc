// offline.cc: the offline build (see offline.h).
#include "indexer/offline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "index/collection.h"
#include "index/manifest.h"
#include "nlohmann/json.hpp"
#include "pipeline/pipeline.h"

namespace diffrank::indexer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
constexpr char kCheckpoint[] = "indexer-checkpoint.json";

std::string Signature(const OfflineOptions& o, const encoder::Encoder& e) {
  std::string s = absl::StrCat(
      "v1|", o.input, "|", o.input_options.format, "|",
      o.input_options.id_field, "|", o.input_options.title_field, "|",
      o.input_options.text_field, "|", o.input_options.metadata_field, "|",
      o.index, "|", e.config().model_id, "|", e.device());
  for (const auto& x : o.input_options.extensions) absl::StrAppend(&s, "|", x);
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

// Fnv1a is a stable 64-bit hash (absl::Hash is seeded per process: a
// resumed run must find the same version name).
uint64_t Fnv1a(absl::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

struct Checkpoint {
  int64_t records = 0, documents = 0, bad = 0;
  bool complete = false;
};

absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& dir,
                                          const std::string& signature) {
  std::ifstream in(fs::path(dir) / kCheckpoint);
  if (!in) return absl::NotFoundError("no checkpoint");
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() ||
      j.value("signature", "") != signature) {
    return absl::NotFoundError("checkpoint of another build");
  }
  Checkpoint c;
  c.records = j.value("records", int64_t{0});
  c.documents = j.value("documents", int64_t{0});
  c.bad = j.value("bad", int64_t{0});
  c.complete = j.value("complete", false);
  return c;
}

absl::Status WriteCheckpoint(const std::string& dir, const std::string& sig,
                             const Checkpoint& c) {
  json j = {{"signature", sig},
            {"records", c.records},
            {"documents", c.documents},
            {"bad", c.bad},
            {"complete", c.complete}};
  return index::WriteFileAtomically((fs::path(dir) / kCheckpoint).string(),
                                    j.dump(2) + "\n");
}

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += static_cast<int64_t>(e.file_size(ec));
  }
  return total;
}

}  // namespace

absl::StatusOr<OfflineReport> BuildOffline(const OfflineOptions& o,
                                           const encoder::Encoder& embedder) {
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(std::string format, ResolveFormat(o.input, o.input_options));
  (void)format;
  const std::string sig = Signature(o, embedder);
  OfflineReport report;
  report.version = absl::StrFormat("%s-%016x", o.collection, Fnv1a(sig));
  report.directory =
      (fs::path(o.data_dir) / ".staging" / report.version).string();
  index::CollectionOptions co;
  co.dir = report.directory;
  co.model_id = embedder.config().model_id;
  co.dimension = embedder.dimension();
  co.factory = o.index;
  co.max_text_bytes = o.max_text_bytes;
  co.snapshot_every = int64_t{1} << 40;  // one snapshot at the end
  Checkpoint done;
  std::unique_ptr<index::Collection> col;
  if (absl::StatusOr<Checkpoint> c = ReadCheckpoint(report.directory, sig);
      c.ok()) {
    absl::StatusOr<std::unique_ptr<index::Collection>> opened =
        index::Collection::Open(co);
    if (opened.ok()) {
      done = *c;
      col = *std::move(opened);
      report.resumed = true;
      report.resumed_from = done.records;
      report.resumed_documents = done.documents;
    } else if (o.on_bad) {
      o.on_bad(report.directory,
               absl::StrCat("cannot resume (", opened.status().message(),
                            "); starting over"));
    }
  }
  if (!col) {
    std::error_code ec;
    fs::remove_all(report.directory, ec);  // a build that never checkpointed
    fs::create_directories(fs::path(report.directory).parent_path(), ec);
    ASSIGN_OR_RETURN(col, index::Collection::Create(co));
    RETURN_IF_ERROR(WriteCheckpoint(report.directory, sig, done));
  }
  Progress& p = report.progress;
  p.records = done.records;
  p.documents = done.documents;
  p.bad = done.bad;
  p.input_bytes = InputBytes(o.input, o.input_options);
  p.total_records = CountRecords(o.input, o.input_options);
  p.embedded = p.embedded_at_start = done.documents;
  const encoder::Tokenizer& tok = embedder.tokenizer();

  RecordChecker checker(co);
  std::vector<index::Document> chunk;
  int64_t consumed = 0;  // records read in this run (skipped ones included)
  absl::Time t_read = absl::Now();

  auto flush = [&]() -> absl::Status {
    p.read += absl::Now() - t_read;
    if (!chunk.empty()) {
      absl::Time t0 = absl::Now();
      std::vector<encoder::Encoding> enc(chunk.size());
      for (size_t i = 0; i < chunk.size(); ++i) {
        ASSIGN_OR_RETURN(enc[i],
                         tok.Encode(pipeline::Pipeline::PassageText(chunk[i])));
        p.tokens += static_cast<int64_t>(enc[i].ids.size());
      }
      // Sorted by length, batched by a padded-token budget.
      std::vector<size_t> order(chunk.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return enc[a].ids.size() < enc[b].ids.size();
      });
      const int dim = embedder.dimension();
      for (size_t begin = 0; begin < order.size();) {
        size_t end = begin + 1;
        while (end < order.size() &&
               static_cast<int>(end - begin) < o.max_batch_rows &&
               static_cast<int64_t>(end - begin + 1) *
                       static_cast<int64_t>(enc[order[end]].ids.size()) <=
                   o.batch_tokens) {
          ++end;
        }
        std::vector<encoder::Encoding> batch;
        for (size_t i = begin; i < end; ++i) batch.push_back(enc[order[i]]);
        const encoder::TokenBatch tb = tok.Pad(batch);
        p.padded_tokens += tb.padded_tokens();
        ASSIGN_OR_RETURN(std::vector<float> v, embedder.Run(tb));
        for (size_t i = begin; i < end; ++i) {
          chunk[order[i]].vector.assign(v.begin() + (i - begin) * dim,
                                        v.begin() + (i - begin + 1) * dim);
        }
        p.embedded += static_cast<int64_t>(end - begin);
        p.elapsed = absl::Now() - start;
        if (o.on_progress) o.on_progress(p);
        begin = end;
      }
      p.embed += absl::Now() - t0;
      t0 = absl::Now();
      p.documents += static_cast<int64_t>(chunk.size());
      RETURN_IF_ERROR(col->Upsert(std::move(chunk)));
      p.write += absl::Now() - t0;
      chunk.clear();
    }
    done.records = p.records;
    done.documents = p.documents;
    done.bad = p.bad;
    RETURN_IF_ERROR(WriteCheckpoint(report.directory, sig, done));
    p.elapsed = absl::Now() - start;
    if (o.on_progress) o.on_progress(p);
    t_read = absl::Now();
    return absl::OkStatus();
  };

  auto on_bad = [&](const std::string& where,
                    const std::string& why) -> absl::Status {
    if (consumed++ < done.records) return absl::OkStatus();  // done before
    ++p.records;
    ++p.bad;
    if (o.on_bad) o.on_bad(where, why);
    if (!o.skip_bad) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": ", why, " (--on-error fail)"));
    }
    return absl::OkStatus();
  };
  auto on_good = [&](Record r) -> absl::Status {
    if (o.interrupted && o.interrupted()) {
      return absl::CancelledError(absl::StrCat(
          "interrupted: ", done.documents, " documents (", done.records,
          " records) are committed in ", report.directory,
          "; re-run the same command to resume from there"));
    }
    const bool replay = consumed < done.records;
    if (!replay) {
      p.input_bytes_read +=
          static_cast<int64_t>(r.doc.id.size() + r.doc.title.size() +
                               r.doc.text.size() + r.doc.metadata.size());
    }
    if (std::string why = checker.Problem(r.doc); !why.empty()) {
      return on_bad(r.where, why);
    }
    if (consumed++ < done.records) return absl::OkStatus();
    ++p.records;
    chunk.push_back(std::move(r.doc));
    if (static_cast<int>(chunk.size()) >= o.chunk_documents) return flush();
    return absl::OkStatus();
  };
  if (!done.complete) {
    absl::Status s = ReadRecords(o.input, o.input_options, on_good, on_bad);
    if (s.ok()) s = flush();
    if (!s.ok()) {
      if (s.code() == absl::StatusCode::kFailedPrecondition) {
        col.reset();
        std::error_code ec;
        fs::remove_all(report.directory, ec);  // nothing half-published
      }
      return s;
    }
    RETURN_IF_ERROR(col->Snapshot());
    done.complete = true;
    RETURN_IF_ERROR(WriteCheckpoint(report.directory, sig, done));
  }
  // Verify: the version reopens and holds what was written.
  col.reset();
  ASSIGN_OR_RETURN(col, index::Collection::Open(co));
  report.documents_in_version = col->Stats().documents;
  if (report.documents_in_version != done.documents) {
    return absl::DataLossError(absl::StrCat(
        "verification failed: the version holds ", report.documents_in_version,
        " documents, ", done.documents, " were written"));
  }
  col.reset();
  report.disk_bytes = DirBytes(report.directory);
  p.elapsed = absl::Now() - start;
  return report;
}

}  // namespace diffrank::indexer
