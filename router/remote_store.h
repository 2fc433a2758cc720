// remote_store.h: a Store whose collections are spread over shard servers.
//
// The router role of diffrank-server (deploy/README.md "Sharded") serves
// the public API with a Pipeline over a RemoteStore: every collection exists
// on each of N shard servers (ordinary diffrank-servers), and document id
// `id` lives on shard ShardOf(id, N) (common/shard_hash.h).
//   Search    fans out to every shard in parallel (per-shard deadline =
//             min(caller's, shard_timeout)). Dense and lexical lists are
//             asked for separately (`candidates` long), merged by score and
//             fused here exactly as one server fuses them; the Pipeline then
//             reranks the merged list once. Dense scores are comparable
//             across shards; BM25 uses each shard's own statistics
//             (docs/scaling.md measures the effect).
//   Fetch/Get, Upsert, Delete by id: to the owning shards only.
//   Delete by filter and collection admin: to every shard.
// A shard that does not answer fails the call with UNAVAILABLE naming it,
// or, for Search with ShardFailure::kPartial, is left out and named in
// SearchResponse.missing_shards. Writes never answer partially: a batch is
// atomic per shard, and an Upsert retried after a failure is idempotent.
// Thread-safety: thread-safe.
#ifndef DIFFRANK_ROUTER_REMOTE_STORE_H_
#define DIFFRANK_ROUTER_REMOTE_STORE_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "diffrank/v1/diffrank.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "pipeline/store.h"

namespace diffrank::router {

enum class ShardFailure { kFail, kPartial };

struct RemoteStoreOptions {
  std::vector<std::string> shards;  // host:port of each shard, in shard order
  // Deadline of each shard call of Search (and its fetch): min(caller's,
  // this). Writes and admin calls (which embed or fsync on the shards) use
  // min(caller's, write_timeout).
  absl::Duration shard_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(60);
  ShardFailure failure = ShardFailure::kFail;
  // Credentials for the shard channels (default: insecure, for a private
  // network such as a Kubernetes namespace behind a NetworkPolicy).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Document checks run here before a batch is split (so a bad document
  // fails the whole batch, as on one server): the shards' size limits.
  index::CollectionOptions document_limits;
  int max_top_k = 1000;             // the shards' limits.max_top_k
  int max_texts_per_request = 256;  // the shards' limits
  int64_t max_request_bytes = 8 << 20;
  absl::Duration model_cache_ttl = absl::Seconds(10);
};

class RemoteStore final : public pipeline::Store {
 public:
  explicit RemoteStore(RemoteStoreOptions options);

  bool wants_vectors() const override { return false; }
  absl::StatusOr<pipeline::RetrieveResult> Retrieve(
      const pipeline::RetrieveRequest& req,
      const CallContext& ctx) const override;
  absl::StatusOr<std::vector<index::Document>> Fetch(
      const std::string& collection, const std::vector<std::string>& ids,
      const index::Collection::GetOptions& options,
      const CallContext& ctx) const override;
  // List asks every shard for its next `limit` ids after `after` and keeps
  // the first `limit` of their union (ids are unique across shards).
  absl::StatusOr<std::vector<index::Document>> List(
      const std::string& collection, const std::string& after, int limit,
      const index::Collection::GetOptions& options,
      const CallContext& ctx) const override;
  absl::StatusOr<int64_t> Write(const std::string& collection,
                                std::vector<index::Document>&& docs,
                                const std::string& model,
                                const CallContext& ctx) const override;
  // ModelOf asks the shards (CollectionStats) and remembers the answer for
  // model_cache_ttl; a shard's refusal of a query vector of the wrong model
  // (the collection was re-embedded) forgets it at once.
  absl::StatusOr<std::string> ModelOf(const std::string& collection,
                                      const CallContext& ctx) const override;
  absl::StatusOr<int64_t> Delete(const std::string& collection,
                                 const std::vector<std::string>& ids,
                                 const index::Filter* filter,
                                 const std::string& filter_json,
                                 const CallContext& ctx) const override;
  absl::StatusOr<pipeline::CollectionSummary> Create(
      const std::string& name, const std::string& factory,
      const std::string& model, const CallContext& ctx) const override;
  absl::Status Drop(const std::string& name,
                    const CallContext& ctx) const override;
  absl::StatusOr<std::vector<pipeline::CollectionSummary>> List(
      const CallContext& ctx) const override;
  absl::StatusOr<pipeline::CollectionSummary> Describe(
      const std::string& name, const CallContext& ctx) const override;
  // if_unchanged is refused (InvalidArgument): each shard has its own
  // counters; publish on each shard instead.
  absl::StatusOr<pipeline::CollectionSummary> Publish(
      const std::string& name, const std::string& version,
      const std::optional<pipeline::CollectionCounters>& if_unchanged,
      const CallContext& ctx) const override;

  int shards() const { return static_cast<int>(stubs_.size()); }

 private:
  // One call's outcome per shard.
  template <typename Resp>
  struct Answer {
    grpc::Status status;
    Resp response;
  };
  // Configures a client context: deadline min(caller's, shard_timeout or,
  // for writes and admin, write_timeout) and the caller's authorization.
  void Prepare(grpc::ClientContext& c, const CallContext& ctx, bool read) const;
  // The error for shard `i`'s failed call (its own code for user errors,
  // UNAVAILABLE naming the shard for transport failures).
  absl::Status ShardError(int i, const grpc::Status& s) const;
  // Search on every shard in one mode; lists merged by score. `unknown`
  // (optional) gets the filter fields no answering shard has (read from
  // the shards' SearchResponse.warnings).
  absl::StatusOr<std::vector<index::Hit>> SearchAll(
      const pipeline::RetrieveRequest& req, pipeline::SearchMode mode,
      int top_k, const CallContext& ctx, std::vector<std::string>& missing,
      std::vector<std::string>* unknown = nullptr) const;
  // Sends one unary call to each shard in `which` in parallel and waits.
  template <typename Req, typename Resp, typename Call>
  std::vector<Answer<Resp>> Fan(const std::vector<int>& which,
                                const std::vector<Req>& requests,
                                const CallContext& ctx, bool read,
                                Call call) const;
  std::vector<int> AllShards() const;

  void ForgetModel(const std::string& collection) const;
  absl::Status Refused(const std::string& collection,
                       const absl::Status& s) const;

  const RemoteStoreOptions options_;
  std::vector<std::unique_ptr<v1::Diffrank::Stub>> stubs_;
  mutable std::mutex cache_mu_;  // guards model_cache_
  // collection -> (model id, when asked)
  mutable std::map<std::string, std::pair<std::string, absl::Time>>
      model_cache_;
};

}  // namespace diffrank::router

#endif  // DIFFRANK_ROUTER_REMOTE_STORE_H_
