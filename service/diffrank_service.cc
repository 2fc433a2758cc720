// diffrank_service.cc: the RPC handlers (thin: check, convert, delegate).
#include "service/diffrank_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/convert.h"
#include "service/test_hold.h"

namespace diffrank::service {
namespace {

std::string CodeName(const absl::Status& s) {
  return absl::StatusCodeToString(s.code());
}

absl::Status CheckSize(const google::protobuf::MessageLite& m,
                       const pipeline::Limits& limits, absl::string_view what) {
  const size_t bytes = m.ByteSizeLong();
  if (static_cast<int64_t>(bytes) > limits.max_request_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, " is ", bytes, " bytes; limits.max_request_bytes is ",
        limits.max_request_bytes));
  }
  return absl::OkStatus();
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
  const auto& md = ctx->client_metadata();
  if (auto it = md.find("authorization"); it != md.end()) {
    call->authorization.assign(it->second.data(), it->second.size());
  }
  return call;
}

grpc::ServerUnaryReactor* DiffrankService::Unary(
    grpc::CallbackServerContext* ctx, const char* method, Role role,
    const google::protobuf::MessageLite& request, Work work) {
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
  if (absl::Status s = CheckSize(request, p->limits(), "the request");
      !s.ok()) {
    finish(s);
    return reactor;
  }
  if (!pool_->TrySubmit([p, call, method, work = std::move(work), finish] {
        absl::Status s = call->Check("start");
        if (s.ok()) s = HoldIfAsked(method, *call);
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
  return Unary(ctx, "Search", Role::kRead, *req,
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
  return Unary(ctx, "Rerank", Role::kRead, *req,
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
  return Unary(ctx, "Embed", Role::kRead, *req,
               [req, resp](const pipeline::Pipeline& p,
                           const CallContext& call) -> absl::Status {
                 absl::StatusOr<pipeline::EmbedOutput> r =
                     p.Embed(FromProto(*req), call);
                 if (!r.ok()) return r.status();
                 ToProto(*r, *resp);
                 resp->set_model(r->model);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::Delete(
    grpc::CallbackServerContext* ctx, const v1::DeleteRequest* req,
    v1::DeleteResponse* resp) {
  return Unary(ctx, "Delete", Role::kWrite, *req,
               [req, resp](const pipeline::Pipeline& p,
                           const CallContext& call) -> absl::Status {
                 absl::StatusOr<int64_t> n = p.Delete(FromProto(*req), call);
                 if (!n.ok()) return n.status();
                 resp->set_deleted(*n);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::Get(grpc::CallbackServerContext* ctx,
                                               const v1::GetRequest* req,
                                               v1::GetResponse* resp) {
  return Unary(ctx, "Get", Role::kRead, *req,
               [req, resp](const pipeline::Pipeline& p,
                           const CallContext& call) -> absl::Status {
                 if (req->ids().empty() &&
                     (req->limit() != 0 || !req->cursor().empty())) {
                   absl::StatusOr<pipeline::Pipeline::Page> page =
                       p.List(req->collection(), req->cursor(), req->limit(),
                              req->text_max_bytes(), call);
                   if (!page.ok()) return page.status();
                   for (const index::Document& d : page->documents) {
                     ToProto(d, *resp->add_documents());
                   }
                   resp->set_next_cursor(page->next_cursor);
                   return absl::OkStatus();
                 }
                 if (!req->ids().empty() &&
                     (req->limit() != 0 || !req->cursor().empty())) {
                   return absl::InvalidArgumentError(
                       "give either ids or cursor/limit (paging), not both");
                 }
                 std::vector<std::string> ids(req->ids().begin(),
                                              req->ids().end());
                 absl::StatusOr<std::vector<index::Document>> docs =
                     p.Get(req->collection(), ids, req->text_max_bytes(), call);
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
  out.set_model(s.model_id);
  out.set_dimension(s.dimension);
}

grpc::ServerUnaryReactor* DiffrankService::CreateCollection(
    grpc::CallbackServerContext* ctx, const v1::CreateCollectionRequest* req,
    v1::CollectionInfo* resp) {
  return Unary(ctx, "CreateCollection", Role::kAdmin, *req,
               [this, req, resp](const pipeline::Pipeline& p,
                                 const CallContext& call) -> absl::Status {
                 absl::StatusOr<pipeline::CollectionSummary> s =
                     p.store().Create(req->name(), req->index(), req->model(),
                                      call);
                 if (!s.ok()) return s.status();
                 CollectionInfoOf(*s, *resp);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::ListCollections(
    grpc::CallbackServerContext* ctx, const v1::ListCollectionsRequest* req,
    v1::ListCollectionsResponse* resp) {
  return Unary(ctx, "ListCollections", Role::kRead, *req,
               [this, resp](const pipeline::Pipeline& p,
                            const CallContext& call) -> absl::Status {
                 absl::StatusOr<std::vector<pipeline::CollectionSummary>> all =
                     p.store().List(call);
                 if (!all.ok()) return all.status();
                 for (const auto& s : *all) {
                   CollectionInfoOf(s, *resp->add_collections());
                 }
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::PublishCollection(
    grpc::CallbackServerContext* ctx, const v1::PublishCollectionRequest* req,
    v1::CollectionInfo* resp) {
  return Unary(ctx, "PublishCollection", Role::kAdmin, *req,
               [this, req, resp](const pipeline::Pipeline& p,
                                 const CallContext& call) -> absl::Status {
                 absl::StatusOr<pipeline::CollectionSummary> s =
                     p.store().Publish(
                         req->name(), req->version(),
                         req->has_if_unchanged()
                             ? std::optional<pipeline::CollectionCounters>(
                                   pipeline::CollectionCounters{
                                       req->if_unchanged().documents(),
                                       req->if_unchanged().index_vectors(),
                                       req->if_unchanged().dead_vectors()})
                             : std::nullopt,
                         call);
                 if (!s.ok()) return s.status();
                 CollectionInfoOf(*s, *resp);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::DropCollection(
    grpc::CallbackServerContext* ctx, const v1::DropCollectionRequest* req,
    v1::DropCollectionResponse*) {
  return Unary(ctx, "DropCollection", Role::kAdmin, *req,
               [req](const pipeline::Pipeline& p,
                     const CallContext& call) -> absl::Status {
                 return p.store().Drop(req->name(), call);
               });
}

grpc::ServerUnaryReactor* DiffrankService::CollectionStats(
    grpc::CallbackServerContext* ctx, const v1::CollectionStatsRequest* req,
    v1::CollectionStatsResponse* resp) {
  return Unary(ctx, "CollectionStats", Role::kRead, *req,
               [this, req, resp](const pipeline::Pipeline& p,
                                 const CallContext& call) -> absl::Status {
                 absl::StatusOr<pipeline::CollectionSummary> s =
                     p.store().Describe(req->name(), call);
                 if (!s.ok()) return s.status();
                 CollectionInfoOf(*s, *resp->mutable_info());
                 resp->set_index_vectors(s->stats.index_vectors);
                 resp->set_dead_vectors(s->stats.dead_vectors);
                 resp->set_disk_bytes(s->stats.disk_bytes);
                 return absl::OkStatus();
               });
}

grpc::ServerUnaryReactor* DiffrankService::Info(
    grpc::CallbackServerContext* ctx, const v1::InfoRequest* req,
    v1::InfoResponse* resp) {
  return Unary(
      ctx, "Info", Role::kRead, *req,
      [this, resp](const pipeline::Pipeline& p,
                   const CallContext&) -> absl::Status {
        resp->set_version(info_.version);
        resp->set_torch_version(info_.torch_version);
        ToProto(p.embedder().description(), *resp->mutable_embedder());
        for (const pipeline::TextEmbedder* e : p.embedders().Loaded()) {
          ToProto(e->description(), *resp->add_embedders());
        }
        ToProto(p.scorer().description(), *resp->mutable_reranker());
        ToProto(p.limits(), *resp->mutable_limits());
        return absl::OkStatus();
      });
}

// UpsertReactor reads batches one at a time; each is committed (durably)
// on a worker before the next is read, so the stream's response means every
// batch is durable, and an error leaves earlier batches committed and the
// failing one not written at all. Every error the stream ends with names
// what was committed. On drain it stops at once (StartDraining).
class DiffrankService::UpsertReactor
    : public grpc::ServerReadReactor<v1::UpsertRequest> {
 public:
  UpsertReactor(DiffrankService* service, grpc::CallbackServerContext* ctx,
                v1::UpsertResponse* resp)
      : service_(service), ctx_(ctx), resp_(resp), start_(absl::Now()) {
    service_->metrics_->inflight().Increment();
    {
      std::lock_guard<std::mutex> l(service_->streams_mu_);
      service_->streams_.insert(this);
    }
    std::lock_guard<std::mutex> l(mu_);
    if (absl::Status s = service_->Admit(ctx, Role::kWrite); !s.ok()) {
      DoneLocked(s);
      return;
    }
    call_ = service_->MakeCallContext(ctx);
    ReadLocked();
  }

  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    reading_ = false;
    if (finished_) return;
    if (!ok) {  // the client finished sending (or the call broke)
      DoneLocked(ctx_->IsCancelled() ? Committed(absl::CancelledError(
                                           "upsert cancelled by the client"))
                                     : absl::OkStatus());
      return;
    }
    if (draining_) {
      DoneLocked(Committed(ShuttingDown()));
      return;
    }
    const pipeline::Pipeline* p = service_->pipeline_.load();
    if (absl::Status s = CheckSize(req_, p->limits(),
                                   absl::StrCat("message ", batches_ + 1));
        !s.ok()) {
      DoneLocked(Committed(s));
      return;
    }
    if (collection_.empty()) collection_ = req_.collection();
    if (!req_.collection().empty() && req_.collection() != collection_) {
      DoneLocked(Committed(absl::InvalidArgumentError(absl::StrCat(
          "collection: message ", batches_ + 1, " names \"", req_.collection(),
          "\" but the stream started with \"", collection_, "\""))));
      return;
    }
    auto batch = std::make_shared<pipeline::UpsertBatch>();
    batch->collection = collection_;
    for (const v1::Document& d : req_.documents()) {
      batch->documents.push_back(FromProto(d));
    }
    if (!service_->pool_->TrySubmit([this, p, batch] {
          absl::StatusOr<int64_t> n = p->Upsert(std::move(*batch), *call_);
          std::lock_guard<std::mutex> l(mu_);
          if (!n.ok()) {
            DoneLocked(Committed(n.status()));
            return;
          }
          upserted_ += *n;
          ++batches_;
          if (draining_) {  // committed; take no more
            DoneLocked(Committed(ShuttingDown()));
            return;
          }
          ReadLocked();
        })) {
      DoneLocked(Committed(Busy()));
    }
  }

  // Drain: an idle stream (waiting for the client's next batch) finishes
  // now; a busy one after the batch it is committing.
  void Drain() {
    std::lock_guard<std::mutex> l(mu_);
    draining_ = true;
    if (!finished_ && reading_) DoneLocked(Committed(ShuttingDown()));
  }

  void OnDone() override {
    {
      std::lock_guard<std::mutex> l(service_->streams_mu_);
      service_->streams_.erase(this);
    }
    // The thread that called Finish may still be releasing mu_.
    { std::lock_guard<std::mutex> l(mu_); }
    delete this;
  }

 private:
  static absl::Status ShuttingDown() {
    return absl::UnavailableError(
        "server is shutting down; send the remaining batches to another "
        "server");
  }
  // Committed adds what the stream already made durable to an error.
  absl::Status Committed(const absl::Status& s) const {
    return absl::Status(
        s.code(), absl::StrCat(s.message(), " (", batches_, " batches with ",
                               upserted_, " documents are committed; batch ",
                               batches_ + 1, " and later are not written)"));
  }
  void ReadLocked() {
    reading_ = true;
    StartRead(&req_);
  }
  void DoneLocked(const absl::Status& s) {
    if (finished_) return;
    finished_ = true;
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
  std::mutex mu_;  // guards everything below, and Finish
  int64_t upserted_ = 0;
  int batches_ = 0;
  bool reading_ = false;   // a read is outstanding (the stream is idle)
  bool draining_ = false;  // take no more batches
  bool finished_ = false;  // Finish was called
};

void DiffrankService::StartDraining() {
  draining_.store(true);
  std::lock_guard<std::mutex> l(streams_mu_);
  for (UpsertReactor* r : streams_) r->Drain();
}

grpc::ServerReadReactor<v1::UpsertRequest>* DiffrankService::Upsert(
    grpc::CallbackServerContext* ctx, v1::UpsertResponse* resp) {
  return new UpsertReactor(this, ctx, resp);
}

}  // namespace diffrank::service
