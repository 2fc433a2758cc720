// client.cc: diffrank::Client (see diffrank/client.h).
#include "diffrank/client.h"

#include <algorithm>
#include <random>
#include <thread>

namespace diffrank {
namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const ClientOptions& o) {
  std::shared_ptr<grpc::ChannelCredentials> creds =
      grpc::InsecureChannelCredentials();
  if (o.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = o.tls_root_certs_pem;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(o.target, creds, args);
}

}  // namespace

Client::Client(ClientOptions options) : Client(options, MakeChannel(options)) {}

Client::Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(channel),
      stub_(v1::Diffrank::NewStub(std::move(channel))) {}

void Client::Prepare(grpc::ClientContext& c, CallOptions o) const {
  const auto d = o.deadline.count() > 0 ? o.deadline : options_.deadline;
  c.set_deadline(std::chrono::system_clock::now() + d);
  if (!options_.api_key.empty()) {
    c.AddMetadata("authorization", "Bearer " + options_.api_key);
  }
}

template <typename Call>
grpc::Status Client::Run(bool idempotent, CallOptions o, Call call) const {
  const auto total = o.deadline.count() > 0 ? o.deadline : options_.deadline;
  const auto end = std::chrono::steady_clock::now() + total;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto backoff = options_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext c;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    Prepare(c, CallOptions{std::max(left, std::chrono::milliseconds(1))});
    grpc::Status s = call(c);
    if (s.ok() || !idempotent ||
        s.error_code() != grpc::StatusCode::UNAVAILABLE ||
        attempt >= options_.max_attempts) {
      return s;
    }
    // Full jitter: sleep uniformly in [0, backoff], never past the deadline.
    std::uniform_int_distribution<int64_t> pick(0, backoff.count());
    const auto sleep = std::chrono::milliseconds(pick(rng));
    if (std::chrono::steady_clock::now() + sleep >= end) return s;
    std::this_thread::sleep_for(sleep);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

grpc::Status Client::Search(const v1::SearchRequest& req,
                            v1::SearchResponse* resp, CallOptions o) const {
  return Run(true, o, [&](grpc::ClientContext& c) {
    return stub_->Search(&c, req, resp);
  });
}

grpc::Status Client::Rerank(const v1::RerankRequest& req,
                            v1::RerankResponse* resp, CallOptions o) const {
  return Run(true, o, [&](grpc::ClientContext& c) {
    return stub_->Rerank(&c, req, resp);
  });
}

grpc::Status Client::Embed(const v1::EmbedRequest& req, v1::EmbedResponse* resp,
                           CallOptions o) const {
  return Run(true, o, [&](grpc::ClientContext& c) {
    return stub_->Embed(&c, req, resp);
  });
}

grpc::Status Client::Get(const v1::GetRequest& req, v1::GetResponse* resp,
                         CallOptions o) const {
  return Run(true, o,
             [&](grpc::ClientContext& c) { return stub_->Get(&c, req, resp); });
}

grpc::Status Client::Delete(const v1::DeleteRequest& req,
                            v1::DeleteResponse* resp, CallOptions o) const {
  // By ids it is idempotent (a repeat deletes nothing more); by filter a
  // repeat could delete documents written in between.
  return Run(req.filter().empty(), o, [&](grpc::ClientContext& c) {
    return stub_->Delete(&c, req, resp);
  });
}

grpc::Status Client::CreateCollection(const v1::CreateCollectionRequest& req,
                                      v1::CollectionInfo* resp,
                                      CallOptions o) const {
  return Run(false, o, [&](grpc::ClientContext& c) {
    return stub_->CreateCollection(&c, req, resp);
  });
}

grpc::Status Client::ListCollections(v1::ListCollectionsResponse* resp,
                                     CallOptions o) const {
  return Run(true, o, [&](grpc::ClientContext& c) {
    return stub_->ListCollections(&c, v1::ListCollectionsRequest(), resp);
  });
}

grpc::Status Client::DropCollection(const std::string& name,
                                    CallOptions o) const {
  v1::DropCollectionRequest req;
  req.set_name(name);
  v1::DropCollectionResponse resp;
  return Run(false, o, [&](grpc::ClientContext& c) {
    return stub_->DropCollection(&c, req, &resp);
  });
}

grpc::Status Client::CollectionStats(const std::string& name,
                                     v1::CollectionStatsResponse* resp,
                                     CallOptions o) const {
  v1::CollectionStatsRequest req;
  req.set_name(name);
  return Run(true, o, [&](grpc::ClientContext& c) {
    return stub_->CollectionStats(&c, req, resp);
  });
}

grpc::Status Client::PublishCollection(const v1::PublishCollectionRequest& req,
                                       v1::CollectionInfo* resp,
                                       CallOptions o) const {
  return Run(false, o, [&](grpc::ClientContext& c) {
    return stub_->PublishCollection(&c, req, resp);
  });
}

grpc::Status Client::Info(v1::InfoResponse* resp, CallOptions o) const {
  return Run(true, o, [&](grpc::ClientContext& c) {
    return stub_->Info(&c, v1::InfoRequest(), resp);
  });
}

grpc::Status Client::Upsert(const std::string& collection,
                            const std::vector<v1::Document>& documents,
                            v1::UpsertResponse* resp, int batch_size,
                            CallOptions o) const {
  if (batch_size < 1 || batch_size > 256) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "batch_size must be 1..256");
  }
  grpc::ClientContext c;
  Prepare(c, o);
  std::unique_ptr<grpc::ClientWriter<v1::UpsertRequest>> writer =
      stub_->Upsert(&c, resp);
  for (size_t i = 0; i < documents.size(); i += batch_size) {
    v1::UpsertRequest req;
    req.set_collection(collection);
    const size_t end = std::min(documents.size(), i + batch_size);
    for (size_t j = i; j < end; ++j) *req.add_documents() = documents[j];
    if (!writer->Write(req))
      break;  // the server ended the stream: Finish says why
  }
  writer->WritesDone();
  return writer->Finish();
}

}  // namespace diffrank
