// diffrank_service.cc: the RPC handlers (thin: check, convert, delegate).
#include "service/diffrank_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/convert.h"

namespace diffrank::service {
namespace {

std::string CodeName(const absl::Status& s) {
  return absl::StatusCodeToString(s.code());
}

absl::Status Busy() {
  return absl::ResourceExhaustedError(
      "server is busy (request queue full); retry with backoff");
}

}  // namespace

absl::Status DiffrankService::Admit(grpc::CallbackServerContext* ctx,
                                    Role role) const {
  if (draining_.load()) {
    return absl::UnavailableError("server is shutting down; retry elsewhere");
  }
  std::optional<absl::string_view> header;
  const auto& md = ctx->client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    header = absl::string_view(it->second.data(), it->second.size());
  }
  if (absl::Status s = keys_.Authorize(header, role); !s.ok()) return s;
  if (pipeline_.load() == nullptr) {
    return absl::UnavailableError("models are still loading; retry shortly");
  }
  return absl::OkStatus();
}

std::shared_ptr<CallContext> DiffrankService::MakeCallContext(
    grpc::CallbackServerContext* ctx) const {
  auto call = std::make_shared<CallContext>();
  const auto deadline = ctx->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    call->deadline = absl::FromChrono(deadline);
  }
  call->is_cancelled = [ctx] { return ctx->IsCancelled(); };
  return call;
}

grpc::ServerUnaryReactor* DiffrankService::Unary(
    grpc::CallbackServerContext* ctx, const char* method, Role role,
    Work work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time start = absl::Now();
  metrics_->inflight().Increment();
  auto finish = [this, reactor, method, start](const absl::Status& s) {
    metrics_->RecordRequest(method, CodeName(s), absl::Now() - start);
    metrics_->inflight().Decrement();
    reactor->Finish(ToGrpcStatus(s));
  };
  if (absl::Status s = Admit(ctx, role); !s.ok()) {
    finish(s);
    return reactor;
  }
  auto call = MakeCallContext(ctx);
  const pipeline::Pipeline* p = pipeline_.load();
  if (!pool_->TrySubmit([p, call, work = std::move(work), finish] {
        absl::Status s = call->Check("start");
        if (s.ok()) s = work(*p, *call);
        finish(s);
      })) {
    finish(Busy());
  }
  return reactor;
}

grpc::ServerUnaryReactor* DiffrankService::Search(
    grpc::CallbackServerContext* ctx, const v1::SearchRequest* req,
    v1::SearchResponse* resp) {
  return Unary(ctx, "Search", Role::kRead,
               [this, req, resp](const pipeline::Pipeline& p,
                                 const CallContext& call) -> absl::Status {
                 absl::StatusOr<pipeline::SearchResult> r =
                     p.Search(FromProto(*req), call);
                 if (!r.ok()) return r.status();
                 metrics_->RecordTiming(r->timing);
                 ToProto(*r, *resp);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::Rerank(
    grpc::CallbackServerContext* ctx, const v1::RerankRequest* req,
    v1::RerankResponse* resp) {
  return Unary(ctx, "Rerank", Role::kRead,
               [this, req, resp](const pipeline::Pipeline& p,
                                 const CallContext& call) -> absl::Status {
                 absl::StatusOr<pipeline::RerankResult> r =
                     p.Rerank(FromProto(*req), call);
                 if (!r.ok()) return r.status();
                 metrics_->RecordTiming(r->timing);
                 ToProto(*r, *resp);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::Embed(
    grpc::CallbackServerContext* ctx, const v1::EmbedRequest* req,
    v1::EmbedResponse* resp) {
  return Unary(ctx, "Embed", Role::kRead,
               [req, resp](const pipeline::Pipeline& p,
                           const CallContext& call) -> absl::Status {
                 absl::StatusOr<pipeline::EmbedOutput> r =
                     p.Embed(FromProto(*req), call);
                 if (!r.ok()) return r.status();
                 ToProto(*r, *resp);
                 resp->set_model(p.embedder().description().id);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::Delete(
    grpc::CallbackServerContext* ctx, const v1::DeleteRequest* req,
    v1::DeleteResponse* resp) {
  return Unary(ctx, "Delete", Role::kWrite,
               [req, resp](const pipeline::Pipeline& p,
                           const CallContext&) -> absl::Status {
                 absl::StatusOr<int64_t> n = p.Delete(FromProto(*req));
                 if (!n.ok()) return n.status();
                 resp->set_deleted(*n);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::Get(grpc::CallbackServerContext* ctx,
                                               const v1::GetRequest* req,
                                               v1::GetResponse* resp) {
  return Unary(ctx, "Get", Role::kRead,
               [req, resp](const pipeline::Pipeline& p,
                           const CallContext&) -> absl::Status {
                 std::vector<std::string> ids(req->ids().begin(),
                                              req->ids().end());
                 absl::StatusOr<std::vector<index::Document>> docs =
                     p.Get(req->collection(), ids);
                 if (!docs.ok()) return docs.status();
                 for (const index::Document& d : *docs) {
                   ToProto(d, *resp->add_documents());
                 }
                 return absl::OkStatus();
               });
}

void DiffrankService::CollectionInfoOf(const pipeline::CollectionSummary& s,
                                       v1::CollectionInfo& out) const {
  ToProto(s, out);
  const pipeline::Pipeline* p = pipeline_.load();
  out.set_model(p->embedder().description().id);
  out.set_dimension(p->embedder().description().dimension);
}

grpc::ServerUnaryReactor* DiffrankService::CreateCollection(
    grpc::CallbackServerContext* ctx, const v1::CreateCollectionRequest* req,
    v1::CollectionInfo* resp) {
  return Unary(ctx, "CreateCollection", Role::kAdmin,
               [this, req, resp](const pipeline::Pipeline& p,
                                 const CallContext&) -> absl::Status {
                 absl::StatusOr<pipeline::CollectionSummary> s =
                     p.collections().Create(req->name(), req->index());
                 if (!s.ok()) return s.status();
                 CollectionInfoOf(*s, *resp);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::ListCollections(
    grpc::CallbackServerContext* ctx, const v1::ListCollectionsRequest*,
    v1::ListCollectionsResponse* resp) {
  return Unary(ctx, "ListCollections", Role::kRead,
               [this, resp](const pipeline::Pipeline& p,
                            const CallContext&) -> absl::Status {
                 for (const auto& s : p.collections().List()) {
                   CollectionInfoOf(s, *resp->add_collections());
                 }
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::DropCollection(
    grpc::CallbackServerContext* ctx, const v1::DropCollectionRequest* req,
    v1::DropCollectionResponse*) {
  return Unary(
      ctx, "DropCollection", Role::kAdmin,
      [req](const pipeline::Pipeline& p, const CallContext&) -> absl::Status {
        return p.collections().Drop(req->name());
      });
}

grpc::ServerUnaryReactor* DiffrankService::CollectionStats(
    grpc::CallbackServerContext* ctx, const v1::CollectionStatsRequest* req,
    v1::CollectionStatsResponse* resp) {
  return Unary(ctx, "CollectionStats", Role::kRead,
               [this, req, resp](const pipeline::Pipeline& p,
                                 const CallContext&) -> absl::Status {
                 absl::StatusOr<pipeline::CollectionSummary> s =
                     p.collections().Describe(req->name());
                 if (!s.ok()) return s.status();
                 CollectionInfoOf(*s, *resp->mutable_info());
                 resp->set_index_vectors(s->stats.index_vectors);
                 resp->set_dead_vectors(s->stats.dead_vectors);
                 resp->set_disk_bytes(s->stats.disk_bytes);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::Info(
    grpc::CallbackServerContext* ctx, const v1::InfoRequest*,
    v1::InfoResponse* resp) {
  return Unary(ctx, "Info", Role::kRead,
               [this, resp](const pipeline::Pipeline& p,
                            const CallContext&) -> absl::Status {
                 resp->set_version(info_.version);
                 resp->set_torch_version(info_.torch_version);
                 ToProto(p.embedder().description(), *resp->mutable_embedder());
                 ToProto(p.scorer().description(), *resp->mutable_reranker());
                 ToProto(p.limits(), *resp->mutable_limits());
                 return absl::OkStatus();
               });
}

// UpsertReactor reads batches one at a time; each is committed (durably)
// on a worker before the next is read, so the stream's response means every
// batch is durable, and an error leaves earlier batches committed and the
// failing one not written at all.
class DiffrankService::UpsertReactor
    : public grpc::ServerReadReactor<v1::UpsertRequest> {
 public:
  UpsertReactor(DiffrankService* service, grpc::CallbackServerContext* ctx,
                v1::UpsertResponse* resp)
      : service_(service), ctx_(ctx), resp_(resp), start_(absl::Now()) {
    service_->metrics_->inflight().Increment();
    if (absl::Status s = service_->Admit(ctx, Role::kWrite); !s.ok()) {
      Done(s);
      return;
    }
    call_ = service_->MakeCallContext(ctx);
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client finished sending (or the call broke)
      Done(ctx_->IsCancelled() ? absl::CancelledError("upsert cancelled")
                               : absl::OkStatus());
      return;
    }
    if (collection_.empty()) collection_ = req_.collection();
    if (!req_.collection().empty() && req_.collection() != collection_) {
      Done(Committed(absl::InvalidArgumentError(absl::StrCat(
          "collection: message ", batches_ + 1, " names \"", req_.collection(),
          "\" but the stream started with \"", collection_, "\""))));
      return;
    }
    auto batch = std::make_shared<pipeline::UpsertBatch>();
    batch->collection = collection_;
    for (const v1::Document& d : req_.documents()) {
      batch->documents.push_back(FromProto(d));
    }
    const pipeline::Pipeline* p = service_->pipeline_.load();
    if (!service_->pool_->TrySubmit([this, p, batch] {
          absl::StatusOr<int64_t> n = p->Upsert(std::move(*batch), *call_);
          if (!n.ok()) {
            Done(Committed(n.status()));
            return;
          }
          upserted_ += *n;
          ++batches_;
          StartRead(&req_);
        })) {
      Done(Committed(Busy()));
    }
  }

  void OnDone() override { delete this; }

 private:
  // Committed adds what the stream already made durable to an error.
  absl::Status Committed(const absl::Status& s) const {
    return absl::Status(
        s.code(), absl::StrCat(s.message(), " (batch ", batches_ + 1,
                               " not written; ", upserted_,
                               " documents of earlier batches are committed)"));
  }
  void Done(const absl::Status& s) {
    resp_->set_upserted(upserted_);
    resp_->set_batches(batches_);
    service_->metrics_->RecordRequest("Upsert", CodeName(s),
                                      absl::Now() - start_);
    service_->metrics_->inflight().Decrement();
    Finish(ToGrpcStatus(s));
  }

  DiffrankService* service_;
  grpc::CallbackServerContext* ctx_;
  v1::UpsertResponse* resp_;
  const absl::Time start_;
  std::shared_ptr<CallContext> call_;
  v1::UpsertRequest req_;
  std::string collection_;
  int64_t upserted_ = 0;
  int batches_ = 0;
};

grpc::ServerReadReactor<v1::UpsertRequest>* DiffrankService::Upsert(
    grpc::CallbackServerContext* ctx, v1::UpsertResponse* resp) {
  return new UpsertReactor(this, ctx, resp);
}

}  // namespace diffrank::service
