// server_main.cc: diffrank-server. Flags (only here) and the config file
// make a ServerConfig; it is validated, then: the gRPC server starts
// (health NOT_SERVING), models load and warm up, collections open, health
// turns SERVING. SIGTERM/SIGINT drain: health NOT_SERVING, new RPCs get
// UNAVAILABLE, in-flight work finishes (up to server.drain_timeout_s),
// collections are snapshotted, exit 0.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli_flags.h"
#include "encoder/cpu_features.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "pipeline/batched_models.h"
#include "pipeline/collections.h"
#include "pipeline/data_dir_lock.h"
#include "pipeline/pipeline.h"
#include "router/remote_store.h"
#include "service/auth.h"
#include "service/config.h"
#include "service/diffrank_service.h"
#include "service/http_api.h"
#include "service/http_server.h"
#include "service/metrics.h"
#include "service/test_hold.h"
#include "service/worker_pool.h"

namespace diffrank::service {
namespace {

constexpr char kVersion[] = "0.1.0";

void Log(const std::string& msg) {
  std::fprintf(stderr, "diffrank-server: %s\n", msg.c_str());
}

int Fail(const absl::Status& s) {
  Log(absl::StrCat("error: ", s.message()));
  return 2;
}

encoder::Device ParseDevice(const std::string& d) {
  return d == "cpu"    ? encoder::Device::kCpu
         : d == "cuda" ? encoder::Device::kCuda
                       : encoder::Device::kAuto;
}
encoder::Precision ParsePrecision(const std::string& p) {
  return p == "float32"    ? encoder::Precision::kFloat32
         : p == "bfloat16" ? encoder::Precision::kBFloat16
         : p == "int8"     ? encoder::Precision::kInt8
                           : encoder::Precision::kAuto;
}

int Main(int argc, char** argv) {
  ServerConfig config;
  CLI::App app{
      "diffrank-server: retrieval and DiffAttn reranking over gRPC "
      "(diffrank.v1.Diffrank). Settings come from --config (JSON; keys as in "
      "service/config.h) and flags; flags win."};
  std::string config_file;
  app.add_option("--config", config_file, "JSON config file");
  ServerConfig flags;
  auto* o_data = app.add_option("--data_dir", flags.data_dir,
                                "directory of collections (created if missing)")
                     ->capture_default_str();
  auto* o_listen = app.add_option("--listen", flags.listen,
                                  "gRPC host:port (default 127.0.0.1:50051)");
  auto* o_metrics = app.add_option(
      "--metrics_listen", flags.metrics_listen,
      "Prometheus /metrics host:port (default 127.0.0.1:9464; '' = off)");
  auto* o_metrics_key = app.add_flag(
      "--metrics_require_key", flags.metrics_require_key,
      "/metrics answers only requests with a valid API key (any role)");
  auto* o_keys = app.add_option(
      "--api_keys", flags.api_keys_file,
      "API keys file: lines `<read|write|admin> <key>`; none = open");
  auto* o_embed = app.add_option(
      "--embedder_model", flags.embedder_model,
      "default bi-encoder model directory: new collections (default: bundled "
      "diffrank-embed-v3)");
  auto* o_models = app.add_option(
      "--models_dir", flags.models_dir,
      "directory of other embedders by model id (<dir>/<id>/): existing "
      "collections' models (default: next to the default embedder, then "
      "bundled)");
  auto* o_rerank =
      app.add_option("--reranker_model", flags.reranker_model,
                     "cross-encoder model directory (default: bundled)");
  auto* o_device =
      app.add_option("--device", flags.device, "auto | cpu | cuda");
  auto* o_prec = app.add_option("--precision", flags.precision,
                                "auto | float32 | bfloat16 | int8");
  auto* o_rprec = app.add_option(
      "--reranker_precision", flags.reranker_precision,
      "auto (CPU: bfloat16 with AVX512-BF16/AMX, else int8) | float32 | "
      "bfloat16 | int8");
  auto* o_packed = app.add_option(
      "--packed_cpu_linears", flags.packed_cpu_linears,
      "true (oneDNN with packed weights) | false (LibTorch's kernels)");
  auto* o_threads = app.add_option("--threads", flags.threads,
                                   "LibTorch CPU threads (0 = all cores)");
  auto* o_depth =
      app.add_option(
             "--rerank_depth", flags.limits.default_rerank_depth,
             "default Search rerank depth (0 .. limits.max_rerank_depth)")
          ->capture_default_str();
  auto* o_fusion = app.add_option(
      "--rerank_fusion_weight", flags.limits.default_rerank_fusion_weight,
      "default weight of the retrieval order in Search's reranking "
      "(0 = cross-encoder alone; 0 .. 100)");
  auto* o_cert = app.add_option("--tls_cert", flags.tls.cert_file,
                                "PEM server certificate (enables TLS)");
  auto* o_key =
      app.add_option("--tls_key", flags.tls.key_file, "PEM private key");
  auto* o_ca = app.add_option("--tls_client_ca", flags.tls.client_ca_file,
                              "PEM CA for client certificates (mutual TLS)");
  auto* o_http = app.add_option(
      "--http_listen", flags.http_listen,
      "HTTP/JSON front host:port (OpenAI / TEI / Cohere routes); off if unset");
  std::string shards_flag;
  auto* o_shards = app.add_option(
      "--shards", shards_flag,
      "router role: comma-separated host:port of the shard servers, in "
      "shard order (no data directory is opened)");
  auto* o_shard_timeout =
      app.add_option("--shard_timeout_s", flags.router.shard_timeout_s,
                     "router: deadline of each shard call (seconds)");
  auto* o_shard_failure =
      app.add_option("--shard_failure", flags.router.shard_failure,
                     "router: fail | partial (Search without a down shard)");
  // --help exits 0; a flag that cannot be parsed exits 2 like every other
  // bad setting (CLI11's own codes, e.g. 104, are not documented). Either
  // spelling of a flag works (--data-dir, --data_dir).
  if (int rc = cli::ParseFlags(app, argc, argv); rc >= 0) return rc;

  if (!config_file.empty()) {
    if (absl::Status s = LoadConfigFile(config_file, config); !s.ok()) {
      return Fail(s);
    }
  }
  if (*o_data) config.data_dir = flags.data_dir;
  if (*o_listen) config.listen = flags.listen;
  if (*o_metrics) config.metrics_listen = flags.metrics_listen;
  if (*o_keys) config.api_keys_file = flags.api_keys_file;
  if (*o_metrics_key) config.metrics_require_key = flags.metrics_require_key;
  if (*o_embed) config.embedder_model = flags.embedder_model;
  if (*o_models) config.models_dir = flags.models_dir;
  if (*o_rerank) config.reranker_model = flags.reranker_model;
  if (*o_device) config.device = flags.device;
  if (*o_prec) config.precision = flags.precision;
  if (*o_rprec) config.reranker_precision = flags.reranker_precision;
  if (*o_packed) config.packed_cpu_linears = flags.packed_cpu_linears;
  if (*o_threads) config.threads = flags.threads;
  if (*o_depth) {
    config.limits.default_rerank_depth = flags.limits.default_rerank_depth;
  }
  if (*o_fusion) {
    config.limits.default_rerank_fusion_weight =
        flags.limits.default_rerank_fusion_weight;
  }
  if (*o_http) config.http_listen = flags.http_listen;
  if (*o_shards) {
    config.router.shards = absl::StrSplit(shards_flag, ',', absl::SkipEmpty());
  }
  if (*o_shard_timeout) {
    config.router.shard_timeout_s = flags.router.shard_timeout_s;
  }
  if (*o_shard_failure)
    config.router.shard_failure = flags.router.shard_failure;
  const bool is_router = !config.router.shards.empty();
  if (*o_cert) config.tls.cert_file = flags.tls.cert_file;
  if (*o_key) config.tls.key_file = flags.tls.key_file;
  if (*o_ca) config.tls.client_ca_file = flags.tls.client_ca_file;
  if (config.embedder_model.empty()) {
    config.embedder_model = DefaultModelDir("diffrank-embed-v3");
  }
  if (config.reranker_model.empty()) {
    config.reranker_model = DefaultModelDir("diffrank-rerank-v2");
  }
  if (absl::Status s = Validate(config); !s.ok()) return Fail(s);

  // Many collections hold several SQLite and FAISS files each: use the
  // hard limit on open files, not the (often 1024) soft one.
  if (struct rlimit rl;
      getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  // One server per data directory; checked before the slow model load.
  // (A router keeps no data.)
  std::shared_ptr<pipeline::DataDirLock> dir_lock;
  if (!is_router) {
    absl::StatusOr<std::unique_ptr<pipeline::DataDirLock>> lock =
        pipeline::DataDirLock::Acquire(config.data_dir);
    if (!lock.ok()) return Fail(lock.status());
    dir_lock = *std::move(lock);
  }

  ApiKeys keys;
  if (!config.api_keys_file.empty()) {
    absl::StatusOr<ApiKeys> k = ApiKeys::Load(config.api_keys_file);
    if (!k.ok()) return Fail(k.status());
    keys = *std::move(k);
    Log(absl::StrCat("API keys: ", keys.size(), " loaded"));
  } else {
    Log("WARNING: no --api_keys file: every caller may read, write and drop "
        "collections");
  }

  // Signals are handled by sigwait below; block them in every thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Metrics metrics;
  if (!config.metrics_listen.empty()) {
    Metrics::Authorizer authorize;
    if (config.metrics_require_key) {
      // A copy: `keys` moves into the service below.
      authorize = [keys](std::optional<absl::string_view> header) {
        return keys.Authorize(header, Role::kRead);
      };
    }
    if (absl::Status s = metrics.Serve(config.metrics_listen, authorize);
        !s.ok()) {
      return Fail(s);
    }
    Log(absl::StrCat("metrics on http://", config.metrics_listen,
                     "/metrics (port ", metrics.port(), ")",
                     config.metrics_require_key ? ", API key required" : ""));
  }
  const int workers = config.server.workers > 0
                          ? config.server.workers
                          : std::max(4, 2 * encoder::DefaultThreads());
  WorkerPool pool(workers, config.server.max_pending);
  DiffrankService service(std::move(keys), &metrics, &pool,
                          {kVersion, encoder::Encoder::TorchVersion()});

  grpc::EnableDefaultHealthCheckService(true);
  // gRPC's health service has no protobuf descriptors; touching ours links
  // grpc/health/v1/health.proto in, so reflection can describe the service.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds =
      grpc::InsecureServerCredentials();
  if (!config.tls.cert_file.empty()) {
    grpc::SslServerCredentialsOptions ssl(
        config.tls.client_ca_file.empty()
            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_key_cert_pairs.push_back({ReadConfigFile(config.tls.key_file),
                                      ReadConfigFile(config.tls.cert_file)});
    ssl.pem_root_certs = ReadConfigFile(config.tls.client_ca_file);
    creds = grpc::SslServerCredentials(ssl);
  }
  int port = 0;
  builder.AddListeningPort(config.listen, creds, &port);
  // Twice the limit: the handlers check limits.max_request_bytes themselves
  // so the error names the limit (and, for Upsert streams, what was
  // committed) instead of gRPC's bare RESOURCE_EXHAUSTED.
  builder.SetMaxReceiveMessageSize(
      int(std::min<int64_t>(2 * config.limits.max_request_bytes, INT32_MAX)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             config.server.max_concurrent_streams);
  // gRPC binds with SO_REUSEPORT unless told not to: a second server on the
  // same port would then start and take half of the first one's clients.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT,
                             config.server.reuse_port ? 1 : 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return Fail(absl::UnavailableError(absl::StrCat(
        "listen: cannot serve gRPC on ", config.listen,
        " (in use or not a local address); pick another --listen")));
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  if (!TestHoldSetting().empty()) {
    Log(absl::StrCat("warning: DIFFRANK_TEST_HOLD=", TestHoldSetting(),
                     " holds those calls (a test hook; unset it in "
                     "production)"));
  }
  Log(absl::StrCat("gRPC on ", config.listen, " (port ", port, ")",
                   config.tls.cert_file.empty() ? "" : ", TLS",
                   "; health NOT_SERVING while models load"));

  // The HTTP/JSON front calls this server's own gRPC service in-process:
  // one validation, auth, metrics and error path.
  std::unique_ptr<HttpApi> http_api;
  std::unique_ptr<HttpServer> http;
  if (!config.http_listen.empty()) {
    http_api = std::make_unique<HttpApi>(
        server->InProcessChannel(grpc::ChannelArguments()),
        config.limits.max_texts_per_request);
    HttpServerOptions ho;
    ho.max_body_bytes = size_t(config.limits.max_request_bytes);
    // A handler thread blocks while its call runs (the batcher, not the
    // thread, is the bottleneck): enough threads that concurrent clients'
    // calls reach the batcher together instead of queueing in HTTP.
    ho.threads = std::max(workers, 64);
    ho.on_response = [&metrics](int status) {
      metrics.RecordHttpResponse(status);
    };
    ho.max_connections = 1024;
    ho.idle_timeout_s = 60;  // keep-alive connections of RAG frameworks
    ho.fallback = [api = http_api.get()](const HttpRequest& r) {
      return api->Handle(r);
    };
    if (!config.tls.cert_file.empty()) {
      ho.tls_cert_pem = ReadConfigFile(config.tls.cert_file);
      ho.tls_key_pem = ReadConfigFile(config.tls.key_file);
      ho.tls_client_ca_pem = ReadConfigFile(config.tls.client_ca_file);
    }
    absl::StatusOr<std::unique_ptr<HttpServer>> h =
        HttpServer::Start(config.http_listen, {}, ho);
    if (!h.ok()) {
      server->Shutdown();
      return Fail(absl::UnavailableError(
          absl::StrCat("http_listen: ", h.status().message())));
    }
    http = *std::move(h);
    Log(absl::StrCat("HTTP/JSON on ", config.http_listen, " (port ",
                     http->port(), ")",
                     config.tls.cert_file.empty()        ? ""
                     : config.tls.client_ca_file.empty() ? ", TLS"
                                                         : ", mutual TLS"));
  }

  pipeline::BatchedModelsOptions mo;
  mo.embedder = {
      config.embedder_model, ParseDevice(config.device),
      config.precision == "auto"
          ? encoder::Encoder::EmbedderPrecision(ParseDevice(config.device))
          : ParsePrecision(config.precision),
      config.threads};
  const encoder::Precision rprec =
      config.reranker_precision == "auto"
          ? encoder::Encoder::FastPrecision(ParseDevice(config.device),
                                            ParsePrecision(config.precision))
          : ParsePrecision(config.reranker_precision);
  mo.reranker = {config.reranker_model, ParseDevice(config.device), rprec,
                 config.threads};
  mo.embedder.packed_cpu_linears = config.packed_cpu_linears;
  mo.reranker.packed_cpu_linears = config.packed_cpu_linears;
  mo.batcher.max_batch_rows = config.batching.max_batch_rows;
  mo.batcher.max_batch_tokens = config.batching.max_batch_tokens;
  mo.batcher.max_delay =
      absl::Microseconds(int64_t(config.batching.max_delay_ms * 1000));
  mo.batcher.max_queue_rows = config.batching.max_queue_rows;
  mo.batcher.on_batch = [&metrics](const encoder::BatchEvent& e) {
    metrics.RecordBatch(e);
  };
  mo.find_model = [&config](const std::string& id) {
    return FindModelDir(config, id);
  };
  // Embedders loaded after the start (an existing collection's model, or
  // one that CreateCollection or Embed names).
  mo.on_load = [&metrics](const pipeline::ModelDescription& d) {
    metrics.SetModel(d);
    Log(absl::StrCat("loaded embedder ", d.id, " (", d.architecture, ", ",
                     d.device, ")"));
  };
  const absl::Time t0 = absl::Now();
  absl::StatusOr<std::unique_ptr<pipeline::BatchedModels>> models =
      pipeline::BatchedModels::Create(std::move(mo));
  if (!models.ok()) {
    server->Shutdown();
    return Fail(models.status());
  }
  const pipeline::ModelDescription& ed = (*models)->embedder()->description();
  const pipeline::ModelDescription& rd = (*models)->scorer()->description();
  metrics.SetBuildInfo(kVersion, encoder::Encoder::TorchVersion());
  metrics.SetModel(ed);
  metrics.SetModel(rd);
  pipeline::BatchedModels* m = models->get();
  // The dimension of a collection's model, loading it if needed.
  auto load = [m](const std::string& id) -> absl::StatusOr<int> {
    absl::StatusOr<pipeline::TextEmbedder*> e = m->Get(id);
    if (!e.ok()) return e.status();
    return (*e)->description().dimension;
  };
  Log(absl::StrCat("models loaded and warm in ",
                   absl::FormatDuration(absl::Now() - t0), ": embedder ", ed.id,
                   " (", ed.architecture, ", ", ed.device, "), reranker ",
                   rd.id, " (", rd.architecture, ", ", rd.device, ")"));

  // The collections: this process's data directory, or (router) the
  // shard servers.
  std::unique_ptr<pipeline::Collections> local;
  std::unique_ptr<router::RemoteStore> remote;
  std::unique_ptr<pipeline::Pipeline> pipe;
  if (is_router) {
    router::RemoteStoreOptions ro;
    ro.shards = config.router.shards;
    ro.shard_timeout =
        absl::Milliseconds(int64_t(config.router.shard_timeout_s * 1000));
    ro.write_timeout =
        absl::Milliseconds(int64_t(config.router.write_timeout_s * 1000));
    ro.failure = config.router.shard_failure == "partial"
                     ? router::ShardFailure::kPartial
                     : router::ShardFailure::kFail;
    ro.document_limits.max_text_bytes = size_t(config.limits.max_text_bytes);
    ro.max_top_k = config.limits.max_top_k;
    ro.max_texts_per_request = config.limits.max_texts_per_request;
    remote = std::make_unique<router::RemoteStore>(ro);
    pipe = std::make_unique<pipeline::Pipeline>(m, m->scorer(), remote.get(),
                                                config.limits);
  } else {
    pipeline::CollectionsOptions co;
    co.data_dir = config.data_dir;
    co.model_id = ed.id;
    co.dimension = ed.dimension;
    co.models = load;  // the models of existing collections load now
    co.collection.sync_full = config.sync_full;
    co.collection.max_text_bytes = size_t(config.limits.max_text_bytes);
    co.lock = std::move(dir_lock);
    absl::StatusOr<std::unique_ptr<pipeline::Collections>> collections =
        pipeline::Collections::Open(co);
    if (!collections.ok()) {
      server->Shutdown();
      return Fail(collections.status());
    }
    local = *std::move(collections);
    pipe = std::make_unique<pipeline::Pipeline>(m, m->scorer(), local.get(),
                                                config.limits);
  }
  pipeline::Collections* cs = local.get();  // null for a router
  metrics.SetScrapeHook([m, cs](Metrics& mx) {
    for (int k = 0; k < encoder::kNumTaskKinds; ++k) {
      auto kind = static_cast<encoder::TaskKind>(k);
      mx.SetQueueRows(kind, m->QueueRows(kind));
    }
    if (cs == nullptr) return;
    std::map<std::string, int64_t> docs;
    for (const auto& c : cs->List()) docs[c.name] = c.stats.documents;
    mx.SetCollectionDocuments(docs);
  });
  if (cs != nullptr) {
    for (const auto& [name, why] : cs->Unavailable()) {
      Log(absl::StrCat("WARNING: ", why.message()));
    }
  }
  service.SetPipeline(pipe.get());
  health->SetServingStatus(true);
  if (cs != nullptr) {
    Log(absl::StrCat("serving ", cs->List().size(), " collection(s) from ",
                     config.data_dir, "; health SERVING"));
  } else {
    Log(absl::StrCat("router over ", config.router.shards.size(), " shard(s) (",
                     absl::StrJoin(config.router.shards, ", "),
                     "; shard_failure ", config.router.shard_failure,
                     "); health SERVING"));
  }

  int sig = 0;
  sigwait(&signals, &sig);
  Log(absl::StrCat("signal ", sig,
                   ": draining (a second SIGTERM/SIGINT exits at once; "
                   "acknowledged writes are already durable)"));
  std::thread([signals] {
    int again = 0;
    sigwait(&signals, &again);
    Log(absl::StrCat("signal ", again, " again: exiting now"));
    std::_Exit(130);
  }).detach();
  health->SetServingStatus(false);
  service.StartDraining();
  http.reset();  // new HTTP calls refused; running ones finish (draining)
  server->Shutdown(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(int64_t(config.server.drain_timeout_s * 1000)));
  pool.Shutdown();
  metrics.SetScrapeHook(nullptr);
  if (absl::Status s = cs ? cs->Flush() : absl::OkStatus(); !s.ok()) {
    Log(absl::StrCat("snapshot on exit failed (data is safe in SQLite): ",
                     s.message()));
  }
  metrics.Stop();
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace diffrank::service

int main(int argc, char** argv) { return diffrank::service::Main(argc, argv); }
