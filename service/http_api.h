// http_api.h: the HTTP/JSON front of diffrank, in the shapes RAG frameworks
// already call, over the same gRPC service.
//
// Every route turns its JSON into a diffrank.v1 request and calls this
// server's own gRPC service through an in-process channel, with the caller's
// `Authorization` header and deadline (`X-Timeout-Ms`), so keys, roles,
// limits, validation, metrics and errors are the gRPC path's, not a second
// copy. Errors come back as {"error": {"code", "message", "type"}} with the
// HTTP status mapped from the gRPC code (HttpStatusOf).
// Routes (POST unless noted):
//   /v1/embeddings              OpenAI embeddings (input string or list,
//                               encoding_format float|base64, usage)
//   /embed, /                   Text Embeddings Inference embed
//   /rerank                     Text Embeddings Inference rerank
//   /v1/rerank, /v2/rerank      Cohere rerank (top_n, return_documents)
//   /v1/collections             GET list, POST create {"name", "index"}
//   /v1/collections/{name}      GET stats, DELETE drop
//   /v1/collections/{name}/{search,upsert,delete,get,publish}
//                               the RPC's request as JSON, minus the name
//   /diffrank.v1.Diffrank/{Method}
//                               any RPC in protobuf's JSON mapping (Upsert:
//                               one request object or an array of them)
// Thread-safety: thread-safe (the stub is).
#ifndef DIFFRANK_SERVICE_HTTP_API_H_
#define DIFFRANK_SERVICE_HTTP_API_H_

#include <memory>
#include <string>

#include "diffrank/v1/diffrank.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "service/http_server.h"

namespace diffrank::service {

// The HTTP status for a gRPC status code (Google's HTTP mapping).
int HttpStatusOf(grpc::StatusCode code);

class HttpApi {
 public:
  // `channel` reaches this process's Diffrank service (in-process).
  // `max_texts` is limits.max_texts_per_request: longer OpenAI / TEI inputs
  // are sent as several Embed calls.
  HttpApi(std::shared_ptr<grpc::Channel> channel, int max_texts);

  HttpResponse Handle(const HttpRequest& req) const;

 private:
  std::unique_ptr<v1::Diffrank::Stub> stub_;
  const int max_texts_;
};

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_HTTP_API_H_
