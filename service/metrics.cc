// metrics.cc: metric families, buckets and the /metrics HTTP endpoint.
#include "service/metrics.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"
#include "service/process_stats.h"

namespace diffrank::service {
namespace {

using prometheus::Histogram;

// Latency buckets: 1 ms .. 10 s.
const Histogram::BucketBoundaries& SecondsBuckets() {
  static const Histogram::BucketBoundaries b = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return b;
}
const Histogram::BucketBoundaries& RowBuckets() {
  static const Histogram::BucketBoundaries b = {1,  2,  4,   8,  16,
                                                32, 64, 128, 256};
  return b;
}
const Histogram::BucketBoundaries& TokenBuckets() {
  static const Histogram::BucketBoundaries b = {64,   256,  1024,  2048,
                                                4096, 8192, 16384, 32768};
  return b;
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  requests_ = &prometheus::BuildCounter()
                   .Name("diffrank_requests_total")
                   .Help("RPCs finished, by method and gRPC status code")
                   .Register(r);
  request_seconds_ = &prometheus::BuildHistogram()
                          .Name("diffrank_request_duration_seconds")
                          .Help("RPC latency, by method and status code")
                          .Register(r);
  stage_seconds_ = &prometheus::BuildHistogram()
                        .Name("diffrank_stage_duration_seconds")
                        .Help("Time per pipeline stage (queue = batch wait)")
                        .Register(r);
  batch_rows_ = &prometheus::BuildHistogram()
                     .Name("diffrank_batch_rows")
                     .Help("Rows per executed model batch")
                     .Register(r);
  batch_tokens_ = &prometheus::BuildHistogram()
                       .Name("diffrank_batch_padded_tokens")
                       .Help("Padded tokens (rows x longest) per batch")
                       .Register(r);
  batch_seconds_ = &prometheus::BuildHistogram()
                        .Name("diffrank_batch_duration_seconds")
                        .Help("Model compute time per batch")
                        .Register(r);
  queue_rows_ = &prometheus::BuildGauge()
                     .Name("diffrank_queue_rows")
                     .Help("Rows waiting in each batching queue")
                     .Register(r);
  collection_docs_ = &prometheus::BuildGauge()
                          .Name("diffrank_collection_documents")
                          .Help("Live documents per collection")
                          .Register(r);
  model_info_ = &prometheus::BuildGauge()
                     .Name("diffrank_model_info")
                     .Help("Loaded models (value 1)")
                     .Register(r);
  inflight_ = &prometheus::BuildGauge()
                   .Name("diffrank_inflight_requests")
                   .Help("RPCs being served now")
                   .Register(r)
                   .Add({});
  build_info_ = &prometheus::BuildGauge()
                     .Name("diffrank_build_info")
                     .Help("This server's version and LibTorch (value 1)")
                     .Register(r);
  http_responses_ = &prometheus::BuildCounter()
                         .Name("diffrank_http_responses_total")
                         .Help("Answers of the HTTP/JSON port, by HTTP status")
                         .Register(r);
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
  };
  process_cpu_ = &prometheus::BuildCounter()
                      .Name("process_cpu_seconds_total")
                      .Help("Total user and system CPU time spent in seconds")
                      .Register(r)
                      .Add({});
  process_rss_ =
      gauge("process_resident_memory_bytes", "Resident memory size in bytes");
  process_vsz_ =
      gauge("process_virtual_memory_bytes", "Virtual memory size in bytes");
  process_fds_ = gauge("process_open_fds", "Number of open file descriptors");
  process_max_fds_ =
      gauge("process_max_fds", "Maximum number of open file descriptors");
  process_start_ =
      gauge("process_start_time_seconds",
            "Start time of the process since unix epoch in seconds");
  for (int k = 0; k < encoder::kNumTaskKinds; ++k) {
    SetQueueRows(static_cast<encoder::TaskKind>(k), 0);
  }
}

Metrics::~Metrics() { Stop(); }

void Metrics::RecordRequest(const std::string& method, const std::string& code,
                            absl::Duration d) {
  requests_->Add({{"method", method}, {"code", code}}).Increment();
  request_seconds_->Add({{"method", method}, {"code", code}}, SecondsBuckets())
      .Observe(absl::ToDoubleSeconds(d));
}

void Metrics::RecordTiming(const pipeline::Timing& t) {
  for (const auto& [stage, d] :
       {std::pair{"queue", t.queue}, std::pair{"embed", t.embed},
        std::pair{"retrieve", t.retrieve}, std::pair{"fetch", t.fetch},
        std::pair{"rerank", t.rerank}}) {
    if (d > absl::ZeroDuration()) {
      stage_seconds_->Add({{"stage", stage}}, SecondsBuckets())
          .Observe(absl::ToDoubleSeconds(d));
    }
  }
}

void Metrics::RecordBatch(const encoder::BatchEvent& e) {
  const std::string kind = encoder::TaskKindName(e.kind);
  batch_rows_->Add({{"kind", kind}}, RowBuckets()).Observe(e.rows);
  batch_tokens_->Add({{"kind", kind}}, TokenBuckets()).Observe(e.padded_tokens);
  batch_seconds_->Add({{"kind", kind}}, SecondsBuckets())
      .Observe(absl::ToDoubleSeconds(e.compute));
}

void Metrics::SetModel(const pipeline::ModelDescription& m) {
  model_info_
      ->Add({{"role", m.role},
             {"model", m.id},
             {"architecture", m.architecture},
             {"device", m.device},
             {"kernels", m.kernels}})
      .Set(1);
}

void Metrics::SetBuildInfo(const std::string& version,
                           const std::string& torch) {
  build_info_->Add({{"version", version}, {"torch", torch}}).Set(1);
}

void Metrics::RecordHttpResponse(int status) {
  http_responses_->Add({{"code", std::to_string(status)}}).Increment();
}

void Metrics::SetQueueRows(encoder::TaskKind kind, int rows) {
  queue_rows_->Add({{"kind", encoder::TaskKindName(kind)}}).Set(rows);
}

void Metrics::SetCollectionDocuments(
    const std::map<std::string, int64_t>& docs) {
  for (auto it = collection_gauges_.begin(); it != collection_gauges_.end();) {
    if (docs.count(it->first)) {
      ++it;
      continue;
    }
    collection_docs_->Remove(it->second);
    it = collection_gauges_.erase(it);
  }
  for (const auto& [name, n] : docs) {
    prometheus::Gauge*& g = collection_gauges_[name];
    if (g == nullptr) g = &collection_docs_->Add({{"collection", name}});
    g->Set(double(n));
  }
}

std::string Metrics::Scrape() {
  std::lock_guard<std::mutex> l(scrape_mu_);
  if (hook_) hook_(*this);
  if (absl::StatusOr<ProcessStats> p = ReadProcessStats(); p.ok()) {
    // A counter only goes up: add what was spent since the last scrape.
    if (p->cpu_seconds > cpu_reported_) {
      process_cpu_->Increment(p->cpu_seconds - cpu_reported_);
      cpu_reported_ = p->cpu_seconds;
    }
    process_rss_->Set(p->resident_bytes);
    process_vsz_->Set(p->virtual_bytes);
    process_fds_->Set(p->open_fds);
    process_max_fds_->Set(p->max_fds);
    process_start_->Set(p->start_time_seconds);
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

absl::Status Metrics::Serve(const std::string& host_port,
                            Authorizer authorize) {
  std::map<std::string, HttpHandler> routes;
  routes["/metrics"] = [this, authorize](const HttpRequest& req) {
    if (authorize) {
      std::optional<absl::string_view> header;
      if (req.authorization) header = *req.authorization;
      if (absl::Status s = authorize(header); !s.ok()) {
        return HttpResponse{401, "text/plain; charset=utf-8",
                            absl::StrCat(s.message(), "\n")};
      }
    }
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                        Scrape()};
  };
  routes["/healthz"] = [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", "ok\n"};
  };
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      HttpServer::Start(host_port, std::move(routes));
  if (!http.ok()) {
    return absl::Status(
        http.status().code(),
        absl::StrCat("metrics_listen: ", http.status().message(),
                     "; pick another --metrics_listen"));
  }
  http_ = *std::move(http);
  return absl::OkStatus();
}

int Metrics::port() const { return http_ ? http_->port() : 0; }

void Metrics::Stop() { http_.reset(); }

}  // namespace diffrank::service
