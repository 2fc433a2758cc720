// diffrank_service.h: the gRPC transport of diffrank.v1.Diffrank.
//
// A thin callback-API service: each handler checks draining, readiness and
// the API key's role, converts the request (convert.h), hands the blocking
// pipeline call to the worker pool and returns at once; the worker finishes
// the RPC. The gRPC deadline and cancellation reach the pipeline through a
// CallContext. Every RPC is counted and timed in Metrics.
// Thread-safety: thread-safe; SetPipeline / StartDraining may race RPCs.
#ifndef DIFFRANK_SERVICE_DIFFRANK_SERVICE_H_
#define DIFFRANK_SERVICE_DIFFRANK_SERVICE_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "diffrank/v1/diffrank.grpc.pb.h"
#include "pipeline/pipeline.h"
#include "service/auth.h"
#include "service/metrics.h"
#include "service/worker_pool.h"

namespace diffrank::service {

struct ServiceInfo {
  std::string version;
  std::string torch_version;
};

class DiffrankService final : public v1::Diffrank::CallbackService {
 public:
  DiffrankService(ApiKeys keys, Metrics* metrics, WorkerPool* pool,
                  ServiceInfo info)
      : keys_(std::move(keys)),
        metrics_(metrics),
        pool_(pool),
        info_(std::move(info)) {}

  // SetPipeline makes the service ready (models loaded and warmed).
  void SetPipeline(const pipeline::Pipeline* p) { pipeline_.store(p); }
  // StartDraining refuses new RPCs with UNAVAILABLE. Upsert streams stop
  // at once: an idle one finishes now, a busy one after the batch it is
  // committing; both answer UNAVAILABLE with what was committed.
  void StartDraining();

  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx,
                                   const v1::SearchRequest* req,
                                   v1::SearchResponse* resp) override;
  grpc::ServerUnaryReactor* Rerank(grpc::CallbackServerContext* ctx,
                                   const v1::RerankRequest* req,
                                   v1::RerankResponse* resp) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* ctx,
                                  const v1::EmbedRequest* req,
                                  v1::EmbedResponse* resp) override;
  grpc::ServerReadReactor<v1::UpsertRequest>* Upsert(
      grpc::CallbackServerContext* ctx, v1::UpsertResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::DeleteRequest* req,
                                   v1::DeleteResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const v1::GetRequest* req,
                                v1::GetResponse* resp) override;
  grpc::ServerUnaryReactor* CreateCollection(
      grpc::CallbackServerContext* ctx, const v1::CreateCollectionRequest* req,
      v1::CollectionInfo* resp) override;
  grpc::ServerUnaryReactor* ListCollections(
      grpc::CallbackServerContext* ctx, const v1::ListCollectionsRequest* req,
      v1::ListCollectionsResponse* resp) override;
  grpc::ServerUnaryReactor* DropCollection(
      grpc::CallbackServerContext* ctx, const v1::DropCollectionRequest* req,
      v1::DropCollectionResponse* resp) override;
  grpc::ServerUnaryReactor* PublishCollection(
      grpc::CallbackServerContext* ctx, const v1::PublishCollectionRequest* req,
      v1::CollectionInfo* resp) override;
  grpc::ServerUnaryReactor* CollectionStats(
      grpc::CallbackServerContext* ctx, const v1::CollectionStatsRequest* req,
      v1::CollectionStatsResponse* resp) override;
  grpc::ServerUnaryReactor* Info(grpc::CallbackServerContext* ctx,
                                 const v1::InfoRequest* req,
                                 v1::InfoResponse* resp) override;

 private:
  class UpsertReactor;
  using Work = std::function<absl::Status(const pipeline::Pipeline&,
                                          const CallContext&)>;
  // Unary runs `work` on the worker pool after the common checks.
  // `request` is checked against limits.max_request_bytes (gRPC itself
  // accepts up to twice that, so the error can name the limit).
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx,
                                  const char* method, Role role,
                                  const google::protobuf::MessageLite& request,
                                  Work work);
  // Admit: draining, readiness and key checks shared by every RPC.
  absl::Status Admit(grpc::CallbackServerContext* ctx, Role role) const;
  std::shared_ptr<CallContext> MakeCallContext(
      grpc::CallbackServerContext* ctx) const;
  void CollectionInfoOf(const pipeline::CollectionSummary& s,
                        v1::CollectionInfo& out) const;

  const ApiKeys keys_;
  Metrics* metrics_;  // not owned
  WorkerPool* pool_;  // not owned
  const ServiceInfo info_;
  std::atomic<const pipeline::Pipeline*> pipeline_{nullptr};
  std::atomic<bool> draining_{false};
  std::mutex streams_mu_;             // guards streams_
  std::set<UpsertReactor*> streams_;  // open Upsert streams
};

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_DIFFRANK_SERVICE_H_
