// config.h: the server's settings, read from a JSON file and validated once.
//
// ServerConfig holds every setting with its default. LoadConfigFile reads a
// JSON object whose keys are the field names below (nested objects for
// tls, batching, limits and server); unknown keys are errors. Flags (in
// server_main.cc only) override the file. Validate checks the whole config
// and names the setting and the fix in each error.
#ifndef DIFFRANK_SERVICE_CONFIG_H_
#define DIFFRANK_SERVICE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pipeline/types.h"

namespace diffrank::service {

struct TlsConfig {
  std::string cert_file;       // PEM server certificate chain; "" = no TLS
  std::string key_file;        // PEM private key (required with cert_file)
  std::string client_ca_file;  // PEM CA: when set, clients must present a
                               // certificate it signed (mutual TLS)
};

struct BatchingConfig {
  int max_batch_rows = 64;
  int max_batch_tokens = 8192;  // padded tokens (rows x longest row)
  // Wait for a batch to fill only this long. 0 (default): an idle executor
  // runs a request at once, and requests that arrive while it computes form
  // the next batch; a wait only adds latency at low load (measured).
  double max_delay_ms = 0;
  int max_queue_rows = 4096;  // per queue; beyond it RESOURCE_EXHAUSTED
};

struct ServerLimits {
  int workers = 0;        // request worker threads (0 = 2 x cores, >= 4)
  int max_pending = 256;  // requests queued for a worker; then refused
  int max_concurrent_streams = 256;  // per HTTP/2 connection
  double drain_timeout_s = 30;       // SIGTERM: time to finish in-flight work
  // Let other processes bind the same gRPC port (SO_REUSEPORT). Off: a second
  // server on a busy port refuses to start instead of sharing its clients.
  bool reuse_port = false;
};

// RouterConfig: set `shards` to run diffrank-server as a router in front of
// shard servers (router/remote_store.h, deploy/README.md "Sharded").
struct RouterConfig {
  std::vector<std::string> shards;     // host:port per shard, in shard order
  double shard_timeout_s = 5;          // per shard call of Search, List, Stats
  double write_timeout_s = 60;         // per shard call of writes and admin
  std::string shard_failure = "fail";  // "fail" | "partial" (Search only)
};

struct ServerConfig {
  std::string data_dir = "./diffrank-data";
  std::string listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9464";  // "" = no metrics server
  // HTTP/JSON front (service/http_api.h: OpenAI / TEI / Cohere shapes and
  // the gRPC API's JSON mapping); "" = off.
  std::string http_listen;
  // /metrics needs `Authorization: Bearer <key>` (any role); needs
  // api_keys_file. Off by default: bind metrics_listen to a private address.
  bool metrics_require_key = false;
  std::string api_keys_file;  // "" = open (a warning at start)
  // The default embedder (new collections; Embed without a model) and the
  // reranker: model directories; "" = the bundled ones.
  std::string embedder_model;
  std::string reranker_model;
  // Where other embedders are found by model id (<models_dir>/<id>/): the
  // models of existing collections and those CreateCollection / Embed
  // name. "" = the default embedder's parent directory, then the bundled
  // models.
  std::string models_dir;
  std::string device = "auto";  // auto | cpu | cuda
  // auto | float32 | bfloat16 | int8 (both models; int8 = dynamic
  // quantization of the projections, CPU only).
  // The embedder's "auto": bfloat16 on CPUs with AVX512-BF16/AMX, else
  // float32 (Encoder::EmbedderPrecision); the reranker follows
  // reranker_precision below.
  std::string precision = "auto";
  // The reranker's precision: "auto" = on the CPU bfloat16 where it has
  // AVX512-BF16 or AMX, else int8 (each about 2.3x float32 at 2 threads, as
  // the 150 ms budget of 20 pairs needs; int8 costs ~0.007 nDCG@10:
  // docs/benchmarks.md, docs/results.md); on CUDA as `precision`.
  std::string reranker_precision = "auto";
  // CPU float32 / bfloat16 / int8: the projections run on oneDNN with weights
  // packed once (encoder/cpu_linear.h; 1.5-2x faster at batch 1). false =
  // LibTorch's own kernels (a fallback should a oneDNN kernel misbehave).
  bool packed_cpu_linears = true;
  int threads = 0;        // LibTorch CPU threads (0 = all cores)
  bool sync_full = true;  // SQLite synchronous=FULL (power-safe)
  RouterConfig router;
  TlsConfig tls;
  BatchingConfig batching;
  pipeline::Limits limits;
  ServerLimits server;
};

// LoadConfigFile overlays the JSON file at `path` onto `config`.
absl::Status LoadConfigFile(const std::string& path, ServerConfig& config);
// ParseConfigJson overlays JSON `text` (named `name` in errors) onto config.
absl::Status ParseConfigJson(absl::string_view text, const std::string& name,
                             ServerConfig& config);
// Validate returns the first problem, naming the setting and the fix.
absl::Status Validate(const ServerConfig& config);
// ReadConfigFile returns a file named by the config (TLS material) whole;
// "" when the path is empty or unreadable (Validate refuses those first).
std::string ReadConfigFile(const std::string& path);
// DefaultModelDir returns the bundled model directory for a role
// ("diffrank-embed-v3" / "diffrank-rerank-v2"), searched next to the binary
// (../models, ../share/diffrank/models) and in the source tree.
std::string DefaultModelDir(const std::string& name);
// FindModelDir returns the directory of model `id` (config.models_dir, else
// next to the default embedder, else bundled): InvalidArgument for an id
// that is not a plain name ([A-Za-z0-9._-], no path), NotFound naming where
// it looked.
absl::StatusOr<std::string> FindModelDir(const ServerConfig& config,
                                         const std::string& id);

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_CONFIG_H_
