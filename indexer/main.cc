// main.cc: diffrank-index, the bulk loader (offline mode).
//
//   diffrank-index --data_dir DIR --collection NAME --input PATH
//       [--format auto|jsonl|csv|tsv|beir|dir] [--id_field id] [--title_field
//       title] [--text_field text] [--metadata_field metadata]
//       [--extensions .txt,.md] [--chunk_tokens N [--chunk_overlap K]]
//       [--shard I --shards N]
//       [--index Flat] [--on-error skip|fail]
//       [--model DIR] [--precision auto|fp32|bf16|int8] [--threads N]
//       [--server HOST:PORT] [--no-publish]
//
// Builds a new version of the collection in <data_dir>/.staging (offline.h),
// then publishes it: through a running server's PublishCollection RPC when
// --server is given (API key from DIFFRANK_API_KEY, or the file named by
// DIFFRANK_API_KEY_FILE, e.g. a mounted Secret), else directly (taking
// the data directory's lock: no server may run on it then). Re-running an
// interrupted command resumes it. Progress: a bar (documents, docs/s, ETA
// from the input's record count) that updates in place on a terminal, a
// plain line every 5 s otherwise; a final report. Ctrl-C (or SIGTERM) stops
// after what is committed and says what that is (exit 130); a second one
// exits at once.
// --online streams to the --server over Upsert instead (online.h: batches
// in flight, retries with back-off, a checkpoint file for resume).
// Exit codes: 0 done; 1 bad records with --on-error fail (nothing
// published); 2 usage or input error; 3 publish failed (the built version
// stays in .staging and the command can be re-run) or, online, the server
// refused a batch (earlier batches are committed; re-run to resume); 130
// interrupted (what is committed stays; re-run to resume).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli_flags.h"
#include "diffrank/v1/diffrank.grpc.pb.h"
#include "encoder/encoder.h"
#include "grpcpp/grpcpp.h"
#include "indexer/offline.h"
#include "indexer/online.h"
#include "indexer/reembed.h"
#include "pipeline/collections.h"

namespace diffrank::indexer {
namespace {

std::string Rate(int64_t n, absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  return s > 0 ? absl::StrFormat("%.1f", n / s) : "-";
}

std::string Duration(double s) {
  if (s < 60) return absl::StrFormat("%.0fs", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", int(s) / 60, int(s) % 60);
  return absl::StrFormat("%dh%02dm", int(s) / 3600, int(s) % 3600 / 60);
}

// Line: one progress line, a bar first when the total is known. Progress
// and ETA count documents embedded (plus bad records) against the records
// of the input, at this run's documents/s.
std::string Line(const Progress& p, bool bar) {
  const double secs = absl::ToDoubleSeconds(p.elapsed);
  const int64_t run_docs = p.embedded - p.embedded_at_start;
  const std::string rate = Rate(run_docs, p.elapsed);
  if (p.total_records <= 0) {
    return absl::StrFormat("%d documents embedded, %s docs/s, %d bad, %s",
                           p.embedded, rate, p.bad, Duration(secs));
  }
  const int64_t done = std::min(p.total_records, p.embedded + p.bad);
  const double frac = double(done) / double(p.total_records);
  std::string eta = "-";
  if (run_docs > 0) {
    eta = Duration(secs * double(p.total_records - done) / double(run_docs));
  }
  std::string out;
  if (bar) {
    const int width = 24, full = int(frac * width);
    out = absl::StrCat("[", std::string(full, '#'),
                       std::string(width - full, '-'), "] ");
  }
  return absl::StrCat(
      out, absl::StrFormat("%3.0f%% %d/%d documents, %s docs/s, %d bad, "
                           "elapsed %s, ETA %s",
                           100 * frac, done, p.total_records, rate, p.bad,
                           Duration(secs), eta));
}

// Ctrl-C: the first asks the build to stop after what is committed (and
// say so); a second one ends the process at once.
std::atomic<bool> g_interrupted{false};
void OnInterrupt(int) {
  if (g_interrupted.exchange(true)) _exit(130);
}

encoder::Precision ParsePrecision(const std::string& s) {
  return s == "fp32"   ? encoder::Precision::kFloat32
         : s == "bf16" ? encoder::Precision::kBFloat16
         : s == "int8" ? encoder::Precision::kInt8
                       : encoder::Precision::kAuto;
}

// ApiKey: DIFFRANK_API_KEY, else the first line of DIFFRANK_API_KEY_FILE
// ("" when neither is set). Exits 2 when the file is named but unreadable.
std::string ApiKey() {
  if (const char* key = std::getenv("DIFFRANK_API_KEY")) return key;
  const char* path = std::getenv("DIFFRANK_API_KEY_FILE");
  if (path == nullptr) return "";
  std::ifstream f(path);
  std::string key;
  if (!f || !std::getline(f, key)) {
    std::cerr << "diffrank-index: cannot read DIFFRANK_API_KEY_FILE " << path
              << "\n";
    std::exit(2);
  }
  return std::string(absl::StripAsciiWhitespace(key));
}

int Main(int argc, char** argv) {
  CLI::App app{
      "diffrank-index: bulk-load documents into a diffrank collection"};
  OfflineOptions o;
  std::string model, precision = "auto", on_error = "skip", server, extensions;
  int threads = 0;
  bool no_publish = false, reembed = false;
  app.add_option("--data_dir", o.data_dir,
                 "the server's data directory (offline builds; not with "
                 "--online)");
  app.add_option("--collection", o.collection, "collection to create/replace")
      ->required();
  app.add_option(
      "--input", o.input,
      "file, BEIR folder, directory of text files, or - (stdin JSONL); "
      "required unless --reembed");
  app.add_option("--format", o.input_options.format,
                 "auto | jsonl | csv | tsv | beir | dir");
  app.add_option("--id_field", o.input_options.id_field);
  app.add_option("--title_field", o.input_options.title_field);
  app.add_option("--text_field", o.input_options.text_field);
  app.add_option("--metadata_field", o.input_options.metadata_field);
  app.add_option("--extensions", extensions,
                 "dir format: comma-separated file extensions (.txt,.md)");
  app.add_option("--chunk_tokens", o.input_options.chunk_tokens,
                 "split records into windows of N tokens (ids <id>#<n>; "
                 "0 = off)");
  app.add_option("--chunk_overlap", o.input_options.chunk_overlap,
                 "tokens each window shares with the previous one (0)");
  app.add_option("--shard", o.input_options.shard,
                 "keep only the documents of shard I (0-based) of --shards N "
                 "(router id hash; an Indexed Job's completion index)");
  app.add_option("--shards", o.input_options.shards,
                 "number of shards behind the router (1 = all documents)");
  app.add_option("--index", o.index, "FAISS index string (index/factory.h)");
  app.add_option("--on-error", on_error, "skip | fail: what a bad record does")
      ->check(CLI::IsMember({"skip", "fail"}));
  app.add_option("--model", model,
                 "bi-encoder model directory (default: bundled)");
  app.add_option("--precision", precision, "auto | fp32 | bf16 | int8")
      ->check(CLI::IsMember({"auto", "fp32", "bf16", "int8"}));
  app.add_option(
      "--threads", threads,
      "CPU threads (0 = the CPUs this process may use: affinity mask, "
      "cgroup quota)");
  app.add_option("--batch_tokens", o.batch_tokens,
                 "padded tokens per model batch (default 4096)");
  app.add_option("--batch_rows", o.max_batch_rows,
                 "rows per model batch (default 32)");
  app.add_option("--chunk_documents", o.chunk_documents,
                 "records per commit and checkpoint (default 2048)");
  app.add_option("--server", server,
                 "publish through this running server (host:port)");
  app.add_flag("--no-publish", no_publish, "build only; leave it in .staging");
  app.add_flag("--reembed", reembed,
               "re-embed the live --collection with --model (default: the "
               "newest bundled embedder) into a new version and publish it "
               "(reads the collection through --server, or from --data_dir "
               "when no server runs; no --input)");
  OnlineOptions on;
  bool online = false;
  app.add_flag(
      "--online", online,
      "stream to the --server over Upsert instead of building offline");
  app.add_option("--in_flight", on.in_flight, "online: batches in flight (4)");
  app.add_option("--batch_documents", on.batch_documents,
                 "online: documents per Upsert batch (64)");
  app.add_option(
      "--tls_ca", on.tls_ca_file,
      "online/publish: PEM roots to verify the server (enables TLS)");
  app.add_option(
      "--checkpoint", on.checkpoint_file,
      "online: resume file (default .diffrank-index-<collection>.json)");
  // --help exits 0; every usage error exits 2 (the documented code). Either
  // spelling of a flag works (--chunk-tokens, --chunk_tokens).
  if (int rc = cli::ParseFlags(app, argc, argv); rc >= 0) return rc;
  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  if (o.input_options.shards < 1 || o.input_options.shard < 0 ||
      o.input_options.shard >= o.input_options.shards) {
    std::cerr << "diffrank-index: --shards must be >= 1 and --shard in [0, "
                 "--shards)\n";
    return 2;
  }
  if (o.input_options.chunk_tokens < 0 || o.input_options.chunk_overlap < 0 ||
      (o.input_options.chunk_tokens > 0 &&
       o.input_options.chunk_overlap >= o.input_options.chunk_tokens)) {
    std::cerr << "diffrank-index: --chunk_tokens must be >= 0 and "
                 "--chunk_overlap in [0, --chunk_tokens)\n";
    return 2;
  }
  if (reembed && (online || !o.input.empty())) {
    std::cerr << "diffrank-index: --reembed reads the live collection: it "
                 "takes no --input and runs offline (no --online)\n";
    return 2;
  }
  if (!reembed && o.input.empty()) {
    std::cerr << "diffrank-index: --input is required (or --reembed)\n";
    return 2;
  }
  if (!online && o.data_dir.empty()) {
    std::cerr << "diffrank-index: --data_dir is required (an offline build "
                 "writes into the server's data directory; --online --server "
                 "HOST:PORT sends to a running server instead)\n";
    return 2;
  }
  // The input first: a missing file is reported before a model loads.
  if (absl::Status s =
          reembed ? absl::OkStatus() : CheckInput(o.input, o.input_options);
      !s.ok()) {
    std::cerr << "diffrank-index: " << s.message() << "\n";
    return 2;
  }
  if (model.empty()) model = std::string(DIFFRANK_DEFAULT_EMBEDDER);
  std::unique_ptr<encoder::Tokenizer> chunk_tokenizer;
  if (online && o.input_options.chunk_tokens > 0) {
    // Online, tokens are counted with --model's tokenizer (the bundled
    // embedder's by default, as the server's).
    absl::StatusOr<std::unique_ptr<encoder::Tokenizer>> t =
        encoder::Tokenizer::ForModel(model);
    if (!t.ok()) {
      std::cerr << "diffrank-index: --model: " << t.status().message() << "\n";
      return 2;
    }
    chunk_tokenizer = *std::move(t);
    o.input_options.tokenizer = chunk_tokenizer.get();
  }
  if (o.chunk_documents < 1 || o.batch_tokens < 1 || o.max_batch_rows < 1 ||
      threads < 0) {
    std::cerr << "diffrank-index: --chunk_documents, --batch_tokens and "
                 "--batch_rows must be >= 1, --threads >= 0\n";
    return 2;
  }
  o.skip_bad = on_error == "skip";
  if (!extensions.empty()) {
    o.input_options.extensions =
        absl::StrSplit(extensions, ',', absl::SkipEmpty());
  }
  if (absl::Status s =
          pipeline::Collections::ValidateName(o.collection, "--collection");
      !s.ok()) {
    std::cerr << "diffrank-index: " << s.message() << "\n";
    return 2;
  }
  if (online) {
    if (server.empty()) {
      std::cerr << "diffrank-index: --online needs --server\n";
      return 2;
    }
    if (on.batch_documents < 1 || on.batch_documents > 256 ||
        on.in_flight < 1) {
      std::cerr << "diffrank-index: --batch_documents must be 1..256 and "
                   "--in_flight >= 1\n";
      return 2;
    }
    on.server = server;
    on.api_key = ApiKey();
    on.collection = o.collection;
    on.index = o.index;
    on.input = o.input;
    on.input_options = o.input_options;
    on.skip_bad = o.skip_bad;
    if (on.checkpoint_file.empty()) {
      on.checkpoint_file =
          absl::StrCat(".diffrank-index-", o.collection, ".json");
    }
    const bool tty = isatty(STDERR_FILENO);
    absl::Time last = absl::InfinitePast();
    on.on_progress = [&, tty](const Progress& p) {
      if (tty) {
        std::cerr << "\r\033[K" << Line(p, true) << std::flush;
      } else if (absl::Now() - last >= absl::Seconds(5)) {
        std::cerr << "diffrank-index: " << Line(p, false) << "\n";
        last = absl::Now();
      }
    };
    on.interrupted = [] { return g_interrupted.load(); };
    on.on_bad = [&](const std::string& where, const std::string& why) {
      std::cerr << (tty ? "\r\033[K" : "") << "diffrank-index: bad record "
                << where << ": " << why << "\n";
    };
    absl::StatusOr<OnlineReport> r = RunOnline(on);
    if (tty) std::cerr << "\n";
    if (!r.ok()) {
      const auto c = r.status().code();
      if (c == absl::StatusCode::kCancelled) {
        std::cerr << "diffrank-index: " << r.status().message() << "\n";
        return 130;
      }
      std::cerr << "diffrank-index: " << r.status().message()
                << " (re-run the same command to resume)\n";
      return c == absl::StatusCode::kFailedPrecondition ? 1
             : (c == absl::StatusCode::kNotFound ||
                c == absl::StatusCode::kInvalidArgument)
                 ? 2
                 : 3;
    }
    std::cerr << absl::StrFormat(
        "diffrank-index: sent %d documents to %s (%s documents/s), %d bad "
        "records, %d retries%s\n",
        r->documents, server, Rate(r->documents, r->elapsed), r->bad,
        r->retries,
        r->resumed_from
            ? absl::StrCat(", resumed after ", r->resumed_from, " records")
            : "");
    return 0;
  }
  encoder::EncoderOptions eo;
  eo.model_dir = model;
  // "auto" resolves as the server's embedder does (Encoder::
  // EmbedderPrecision), so offline and online vectors are the same.
  eo.device = encoder::Device::kAuto;
  eo.precision =
      precision == "auto"
          ? encoder::Encoder::EmbedderPrecision(encoder::Device::kAuto)
          : ParsePrecision(precision);
  eo.num_threads = threads;
  absl::StatusOr<std::unique_ptr<encoder::Encoder>> enc =
      encoder::Encoder::Create(eo);
  if (!enc.ok()) {
    std::cerr << "diffrank-index: " << enc.status().message() << "\n";
    return 2;
  }
  o.input_options.tokenizer = &(*enc)->tokenizer();
  const bool tty = isatty(STDERR_FILENO);
  // A bar redrawn 4 times a second on a terminal; else a log line every 5 s.
  absl::Time last = absl::InfinitePast();
  o.on_progress = [&](const Progress& p) {
    const absl::Duration every =
        tty ? absl::Milliseconds(250) : absl::Seconds(5);
    if (absl::Now() - last < every) return;
    last = absl::Now();
    if (tty) {
      std::cerr << "\r\033[K" << Line(p, true) << std::flush;
    } else {
      std::cerr << "diffrank-index: " << Line(p, false) << "\n";
    }
  };
  o.interrupted = [] { return g_interrupted.load(); };
  o.on_bad = [&](const std::string& where, const std::string& why) {
    std::cerr << (tty ? "\r\033[K" : "") << "diffrank-index: bad record "
              << where << ": " << why << "\n";
  };
  std::cerr << "diffrank-index: " << (*enc)->config().model_id << " on "
            << (*enc)->device() << "\n";
  ReembedSource source;
  LiveState before;
  if (reembed) {
    source.collection = o.collection;
    source.server = server;
    source.api_key = ApiKey();
    source.data_dir = o.data_dir;
    if (!on.tls_ca_file.empty()) {
      std::ifstream f(on.tls_ca_file);
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(f), {});
      source.credentials = grpc::SslCredentials(ssl);
    }
    absl::StatusOr<LiveState> st = ReadLiveState(source);
    if (!st.ok()) {
      std::cerr << "diffrank-index: --reembed: " << st.status().message()
                << "\n";
      return st.status().code() == absl::StatusCode::kNotFound ? 2 : 3;
    }
    before = *st;
    if (before.model == (*enc)->config().model_id) {
      std::cerr << "diffrank-index: collection \"" << o.collection
                << "\" is already embedded by " << before.model
                << "; nothing to do\n";
      return 0;
    }
    std::cerr << "diffrank-index: re-embedding \"" << o.collection << "\" ("
              << before.documents << " documents, " << before.model << " -> "
              << (*enc)->config().model_id << "); exporting\n";
    absl::StatusOr<std::string> exported = ExportCollection(
        source, (std::filesystem::path(o.data_dir) / ".staging").string(),
        nullptr);
    if (!exported.ok()) {
      std::cerr << "diffrank-index: --reembed: " << exported.status().message()
                << "\n";
      return 3;
    }
    o.input = *exported;
    o.input_options = InputOptions();
    o.input_options.format = "jsonl";
    o.input_options.tokenizer = &(*enc)->tokenizer();
    o.index = before.factory.empty() ? "Flat" : before.factory;
  }
  absl::StatusOr<OfflineReport> r = BuildOffline(o, **enc);
  if (tty) std::cerr << "\n";
  if (!r.ok()) {
    std::cerr << "diffrank-index: " << r.status().message() << "\n";
    if (r.status().code() == absl::StatusCode::kCancelled) return 130;
    return r.status().code() == absl::StatusCode::kFailedPrecondition ? 1 : 2;
  }
  const Progress& p = r->progress;
  std::cerr << absl::StrFormat(
      "diffrank-index: built %s%s: %d documents, %d bad records; %s "
      "documents/s, %s tokens/s; padding %.0f%% of computed tokens; time: "
      "read %.1fs, embed %.1fs, write %.1fs; %d bytes on disk\n",
      r->version,
      r->resumed
          ? absl::StrCat(" (resumed after ", r->resumed_from, " records)")
          : "",
      r->documents_in_version, p.bad,
      Rate(p.documents - r->resumed_documents, p.elapsed),
      Rate(p.tokens, p.elapsed),
      p.padded_tokens ? 100.0 * (p.padded_tokens - p.tokens) / p.padded_tokens
                      : 0,
      absl::ToDoubleSeconds(p.read), absl::ToDoubleSeconds(p.embed),
      absl::ToDoubleSeconds(p.write), r->disk_bytes);
  if (no_publish) {
    std::cerr << "diffrank-index: not published (--no-publish): "
              << r->directory << "\n";
    return 0;
  }
  if (reembed) {
    // A write after the export would be lost by the exchange: publish only
    // an unchanged collection.
    absl::StatusOr<LiveState> now = ReadLiveState(source);
    if (!now.ok() || !(*now == before)) {
      std::cerr << "diffrank-index: not published: collection \""
                << o.collection << "\" "
                << (now.ok() ? "was written while it was re-embedded"
                             : std::string(now.status().message()))
                << "; the built version stays in " << r->directory
                << "; re-run when writes pause (the export is taken again)\n";
      return 1;
    }
  }
  if (!server.empty()) {
    auto channel =
        grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
    auto stub = v1::Diffrank::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::minutes(10));
    if (const std::string key = ApiKey(); !key.empty()) {
      ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    }
    v1::PublishCollectionRequest req;
    req.set_name(o.collection);
    req.set_version(r->version);
    if (reembed) {  // checked again where no write can race it
      req.mutable_if_unchanged()->set_documents(before.documents);
      req.mutable_if_unchanged()->set_index_vectors(before.index_vectors);
      req.mutable_if_unchanged()->set_dead_vectors(before.dead_vectors);
    }
    v1::CollectionInfo info;
    grpc::Status s = stub->PublishCollection(&ctx, req, &info);
    if (!s.ok()) {
      std::cerr << "diffrank-index: publish through " << server
                << " failed: " << s.error_message() << "\n";
      return 3;
    }
  } else {
    pipeline::CollectionsOptions co;
    co.data_dir = o.data_dir;
    co.model_id = (*enc)->config().model_id;
    co.dimension = (*enc)->dimension();
    // The data directory's other collections may be another model's: their
    // dimension from that model's config.json, next to --model or bundled.
    co.models = [&model](const std::string& id) -> absl::StatusOr<int> {
      namespace fs = std::filesystem;
      if (id.empty() || id == "." || id == ".." ||
          id.find('/') != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", id, "\" is not a model id"));
      }
      for (const fs::path& dir :
           {fs::path(model).parent_path(),
            fs::path(DIFFRANK_DEFAULT_EMBEDDER).parent_path()}) {
        const fs::path config = dir / id / "config.json";
        if (!fs::exists(config)) continue;
        absl::StatusOr<encoder::ModelConfig> c =
            encoder::LoadModelConfig(config.string());
        if (!c.ok()) return c.status();
        return c->hidden_size;
      }
      return absl::NotFoundError(
          absl::StrCat("no model \"", id, "\" next to --model or bundled"));
    };
    absl::StatusOr<std::unique_ptr<pipeline::Collections>> cs =
        pipeline::Collections::Open(co);
    std::optional<pipeline::CollectionCounters> if_unchanged;
    if (reembed) {
      if_unchanged = pipeline::CollectionCounters{
          before.documents, before.index_vectors, before.dead_vectors};
    }
    absl::Status s = cs.ok()
                         ? cs.value()
                               ->Publish(o.collection, r->version, if_unchanged)
                               .status()
                         : cs.status();
    if (!s.ok()) {
      std::cerr << "diffrank-index: publish failed: " << s.message()
                << (cs.ok()
                        ? ""
                        : "; if a server runs on this data_dir, pass --server")
                << "\n";
      return 3;
    }
  }
  std::cerr << "diffrank-index: published " << r->version << " as collection \""
            << o.collection << "\"\n";
  return 0;
}

}  // namespace
}  // namespace diffrank::indexer

int main(int argc, char** argv) { return diffrank::indexer::Main(argc, argv); }
