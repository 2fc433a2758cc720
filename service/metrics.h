// metrics.h: every Prometheus metric of the server, in one registry, and
// the HTTP endpoint that serves them.
//
// Names (all prefixed diffrank_):
//   requests_total{method,code}                 counter
//   request_duration_seconds{method,code}       histogram
//   stage_duration_seconds{stage}               histogram (queue, embed,
//                                               retrieve, fetch, rerank)
//   batch_rows{kind}, batch_padded_tokens{kind} histograms
//   batch_duration_seconds{kind}                histogram
//   queue_rows{kind}                            gauge (set at scrape)
//   inflight_requests                           gauge
//   collection_documents{collection}            gauge (set at scrape)
//   model_info{role,model,architecture,device,kernels}  gauge = 1
//   build_info{version,torch}                   gauge = 1
//   http_responses_total{code}                  counter (HTTP/JSON port:
//                                               every answer, 400 and 413
//                                               included)
// and the standard process_* metrics (process_stats.h, read at scrape):
// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds.
// The endpoint is http_server.h (libmicrohttpd, one epoll thread), not
// prometheus-cpp's civetweb exposer: with Debian's LibTorch loaded,
// civetweb's fixed 100 KiB thread stacks no longer fit the static TLS and its
// threads fail to start (ARCHITECTURE.md). What /metrics exposes (collection
// names, model ids, request counts) is documented in docs/reliability.md; it
// can require an API key (`metrics_require_key`), and the series of a
// dropped collection disappear at the next scrape.
// Thread-safety: thread-safe.
#ifndef DIFFRANK_SERVICE_METRICS_H_
#define DIFFRANK_SERVICE_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "encoder/batcher.h"
#include "pipeline/models.h"
#include "pipeline/types.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "service/http_server.h"

namespace diffrank::service {

class Metrics {
 public:
  Metrics();
  ~Metrics();

  void RecordRequest(const std::string& method, const std::string& code,
                     absl::Duration d);
  void RecordTiming(const pipeline::Timing& t);
  void RecordBatch(const encoder::BatchEvent& e);
  void SetModel(const pipeline::ModelDescription& m);
  void SetBuildInfo(const std::string& version, const std::string& torch);
  // RecordHttpResponse counts one answer of the HTTP/JSON port by status.
  void RecordHttpResponse(int status);
  prometheus::Gauge& inflight() { return *inflight_; }

  // Called before each scrape to refresh the gauges (queue depths,
  // documents per collection).
  void SetScrapeHook(std::function<void(Metrics&)> hook) {
    std::lock_guard<std::mutex> l(scrape_mu_);
    hook_ = std::move(hook);
  }
  void SetQueueRows(encoder::TaskKind kind, int rows);
  // SetCollectionDocuments replaces the per-collection series: collections
  // not in `docs` (dropped ones) lose theirs.
  void SetCollectionDocuments(const std::map<std::string, int64_t>& docs);
  // Text exposition format (what /metrics returns).
  std::string Scrape();

  // Serve starts the HTTP endpoint (/metrics, /healthz) on host:port. With
  // `authorize`, /metrics answers 401 unless it accepts the Authorization
  // header (/healthz stays open for probes).
  using Authorizer =
      std::function<absl::Status(std::optional<absl::string_view>)>;
  absl::Status Serve(const std::string& host_port,
                     Authorizer authorize = nullptr);
  int port() const;  // the bound port (after Serve)
  void Stop();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_seconds_;
  prometheus::Family<prometheus::Histogram>* stage_seconds_;
  prometheus::Family<prometheus::Histogram>* batch_rows_;
  prometheus::Family<prometheus::Histogram>* batch_tokens_;
  prometheus::Family<prometheus::Histogram>* batch_seconds_;
  prometheus::Family<prometheus::Gauge>* queue_rows_;
  prometheus::Family<prometheus::Gauge>* collection_docs_;
  prometheus::Family<prometheus::Gauge>* model_info_;
  prometheus::Gauge* inflight_;
  prometheus::Family<prometheus::Gauge>* build_info_;
  prometheus::Family<prometheus::Counter>* http_responses_;
  prometheus::Counter* process_cpu_;
  prometheus::Gauge* process_rss_;
  prometheus::Gauge* process_vsz_;
  prometheus::Gauge* process_fds_;
  prometheus::Gauge* process_max_fds_;
  prometheus::Gauge* process_start_;
  double cpu_reported_ = 0;  // guarded by scrape_mu_
  // Scrapes (HTTP thread) and SetScrapeHook (main thread) are serialized;
  // found by ThreadSanitizer (scripts/sanitizers.sh tsan).
  std::mutex scrape_mu_;
  std::function<void(Metrics&)> hook_;  // guarded by scrape_mu_
  // guarded by scrape_mu_ (set from the hook)
  std::map<std::string, prometheus::Gauge*> collection_gauges_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_METRICS_H_
