// convert.h: the one place where gRPC/proto types meet pipeline types.
//
// ToGrpcStatus is the only absl::Status -> grpc::Status conversion. The
// FromProto / ToProto functions copy fields; they do not validate (the
// pipeline does, naming the proto's field names).
#ifndef DIFFRANK_SERVICE_CONVERT_H_
#define DIFFRANK_SERVICE_CONVERT_H_

#include "absl/status/status.h"
#include "diffrank/v1/diffrank.pb.h"
#include "grpcpp/support/status.h"
#include "pipeline/collections.h"
#include "pipeline/types.h"

namespace diffrank::service {

grpc::Status ToGrpcStatus(const absl::Status& s);

pipeline::SearchRequest FromProto(const v1::SearchRequest& r);
pipeline::RerankRequest FromProto(const v1::RerankRequest& r);
pipeline::EmbedRequest FromProto(const v1::EmbedRequest& r);
pipeline::DeleteRequest FromProto(const v1::DeleteRequest& r);
index::Document FromProto(const v1::Document& d);

void ToProto(const pipeline::SearchResult& in, v1::SearchResponse& out);
void ToProto(const pipeline::RerankResult& in, v1::RerankResponse& out);
void ToProto(const pipeline::EmbedOutput& in, v1::EmbedResponse& out);
void ToProto(const pipeline::Timing& in, v1::Timing& out);
void ToProto(const pipeline::CollectionSummary& in, v1::CollectionInfo& out);
void ToProto(const pipeline::ModelDescription& in, v1::ModelInfo& out);
void ToProto(const pipeline::Limits& in, v1::Limits& out);
void ToProto(const index::Document& in, v1::Document& out);

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_CONVERT_H_
