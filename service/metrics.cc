// metrics.cc: metric families, buckets and the /metrics HTTP endpoint.
#include "service/metrics.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "prometheus/text_serializer.h"

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
             {"device", m.device}})
      .Set(1);
}

void Metrics::SetQueueRows(encoder::TaskKind kind, int rows) {
  queue_rows_->Add({{"kind", encoder::TaskKindName(kind)}}).Set(rows);
}

void Metrics::SetCollectionDocuments(const std::string& collection,
                                     int64_t docs) {
  collection_docs_->Add({{"collection", collection}}).Set(double(docs));
}

std::string Metrics::Scrape() {
  if (hook_) hook_(*this);
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

absl::Status Metrics::Serve(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(host_port.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_listen must be host:port, got ", host_port));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() > 1 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  http_ = std::make_unique<httplib::Server>();
  http_->Get(
      "/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(Scrape(), "text/plain; version=0.0.4; charset=utf-8");
      });
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  if (!http_->bind_to_port(host, port)) {
    return absl::UnavailableError(absl::StrCat(
        "metrics_listen: cannot listen on ", host_port,
        " (in use or not a local address); pick another --metrics_listen"));
  }
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  return absl::OkStatus();
}

void Metrics::Stop() {
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
}

}  // namespace diffrank::service
