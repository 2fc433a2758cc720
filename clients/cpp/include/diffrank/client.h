// diffrank/client.h: the C++ client of diffrank.v1.Diffrank.
//
// Typed calls for every RPC over one gRPC channel, with a default deadline
// per call, the API key sent as `authorization: Bearer <key>`, TLS when
// asked, and retries only where they are safe: idempotent calls (Search,
// Rerank, Embed, Get, Delete by ids, ListCollections, CollectionStats, Info)
// answered UNAVAILABLE are retried with exponential back-off and full jitter
// until `max_attempts` or the call's deadline. Writes that are not
// idempotent as a whole (Upsert streams, Delete by filter, collection admin)
// are never retried: their status is returned as is.
// Installed as the CMake package `diffrank-client`:
//   find_package(diffrank-client REQUIRED)
//   target_link_libraries(app PRIVATE diffrank::client)
// Thread-safety: a Client is thread-safe (calls share the channel).
#ifndef DIFFRANK_CLIENT_H_
#define DIFFRANK_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "diffrank/v1/diffrank.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace diffrank {

struct ClientOptions {
  std::string target = "127.0.0.1:50051";     // host:port
  std::string api_key;                        // "" = send none
  bool tls = false;                           // TLS (system roots unless set)
  std::string tls_root_certs_pem;             // CA bundle for the server
  std::chrono::milliseconds deadline{30000};  // per call unless overridden
  int max_attempts = 4;  // retries of idempotent calls on UNAVAILABLE
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
};

// Per-call overrides (0 = the client's default).
struct CallOptions {
  std::chrono::milliseconds deadline{0};
};

class Client {
 public:
  explicit Client(ClientOptions options);
  // For tests and custom channels (in-process, interceptors, ...).
  Client(ClientOptions options, std::shared_ptr<grpc::Channel> channel);

  grpc::Status Search(const v1::SearchRequest& req, v1::SearchResponse* resp,
                      CallOptions o = {}) const;
  grpc::Status Rerank(const v1::RerankRequest& req, v1::RerankResponse* resp,
                      CallOptions o = {}) const;
  grpc::Status Embed(const v1::EmbedRequest& req, v1::EmbedResponse* resp,
                     CallOptions o = {}) const;
  grpc::Status Get(const v1::GetRequest& req, v1::GetResponse* resp,
                   CallOptions o = {}) const;
  // Retried only when deleting by ids (idempotent); never by filter.
  grpc::Status Delete(const v1::DeleteRequest& req, v1::DeleteResponse* resp,
                      CallOptions o = {}) const;
  grpc::Status CreateCollection(const v1::CreateCollectionRequest& req,
                                v1::CollectionInfo* resp,
                                CallOptions o = {}) const;
  grpc::Status ListCollections(v1::ListCollectionsResponse* resp,
                               CallOptions o = {}) const;
  grpc::Status DropCollection(const std::string& name,
                              CallOptions o = {}) const;
  grpc::Status CollectionStats(const std::string& name,
                               v1::CollectionStatsResponse* resp,
                               CallOptions o = {}) const;
  grpc::Status PublishCollection(const v1::PublishCollectionRequest& req,
                                 v1::CollectionInfo* resp,
                                 CallOptions o = {}) const;
  grpc::Status Info(v1::InfoResponse* resp, CallOptions o = {}) const;

  // Upsert streams `documents` in batches of `batch_size` (1..256) on one
  // stream; each batch is committed atomically by the server. On an error
  // the batches before the failing one are committed (the message says
  // how many); upserts replace by id, so sending the rest again is safe.
  grpc::Status Upsert(const std::string& collection,
                      const std::vector<v1::Document>& documents,
                      v1::UpsertResponse* resp, int batch_size = 64,
                      CallOptions o = {}) const;

  v1::Diffrank::Stub& stub() const { return *stub_; }
  // The channel (for other services on the same server, e.g. health).
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  void Prepare(grpc::ClientContext& c, CallOptions o) const;
  // Runs `call` (a fresh context each attempt), retrying UNAVAILABLE when
  // `idempotent`, within the call's deadline.
  template <typename Call>
  grpc::Status Run(bool idempotent, CallOptions o, Call call) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Diffrank::Stub> stub_;
};

}  // namespace diffrank

#endif  // DIFFRANK_CLIENT_H_
