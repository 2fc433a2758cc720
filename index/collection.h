// collection.h: one collection of documents, durable and searchable.
//
// A collection is a directory (shared ARCHITECTURE.md, "On disk"):
//   manifest.json  model id, dimension, metric, FAISS factory, counts,
//                  snapshot file + CRC-32 (manifest.h)
//   docs.sqlite    WAL-mode SQLite: documents (string id, title, text,
//                  metadata JSON, vector, integer label), an FTS5 index
//                  (porter unicode61) over title and text, the set of
//                  metadata fields. Vectors whose label is >= the snapshot's
//                  vector count are the log of vectors not yet in the
//                  snapshot; they are replayed into FAISS on open.
//   vectors.faiss  FAISS snapshot (position in the index = label).
// Labels are int64 ids assigned in increasing order; the string id <-> label
// mapping lives in docs.sqlite. An upsert gives the document a new label, so
// a replaced or deleted document's old vector stays in FAISS as a dead entry
// that searches skip (an allow-list bitmap passed into FAISS); Compact()
// rebuilds without them (also run automatically when more than a third is
// dead). The label -> id map is also held in memory (about 32 bytes per
// label plus ids longer than 15 bytes), so a dense search maps its results
// under the same lock it searched with.
//
// Durability: Upsert and Delete return after the SQLite transaction commits
// (synchronous=FULL by default); FAISS is then updated in memory. After a
// crash, Open replays SQLite into FAISS; a missing, corrupt (CRC mismatch) or
// stale snapshot is detected and rebuilt from SQLite, never served.
//
// Indexes that need training ("IVF1024,Flat", "IVF1024,PQ32") are served by
// an exact Flat index until the collection holds
// VectorIndex::MinTrainingVectors(factory) vectors; then the index is trained
// on all stored vectors and rebuilt (documented fallback, no error).
//
// Thread-safety: thread-safe. Any number of concurrent searches and gets run
// with concurrent upserts and deletes; writers are serialized among
// themselves. Search parameters are per call.
#ifndef DIFFRANK_INDEX_COLLECTION_H_
#define DIFFRANK_INDEX_COLLECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "index/filter.h"
#include "index/fusion.h"
#include "index/manifest.h"
#include "index/reader_pool.h"
#include "index/types.h"
#include "index/vector_index.h"

namespace diffrank::index {

class Db;

// CollectionOptions configures Create and Open.
struct CollectionOptions {
  std::string dir;               // the collection directory (required)
  std::string model_id;          // required; Open refuses another model's index
  int dimension = 0;             // required; Open refuses another dimension
  std::string factory = "Flat";  // FAISS factory string (Create only)
  bool sync_full = true;         // SQLite synchronous=FULL (power-loss safe)
  // Snapshot FAISS after this many vectors were added since the last one.
  int64_t snapshot_every = 50000;
  size_t max_text_bytes = 1 << 20;       // per document text (default 1 MiB)
  size_t max_metadata_bytes = 64 << 10;  // per document metadata JSON
  size_t max_id_bytes = 512;
  int reader_connections = 4;  // pooled read-only SQLite connections
};

// SearchOptions are per call.
struct SearchOptions {
  int top_k = 10;                  // 1 .. 10000
  SearchKnobs knobs;               // efSearch / nprobe for this call only
  const Filter* filter = nullptr;  // optional metadata filter
  // Lexical: drop English stopwords from the query (unless nothing else is
  // left); default true: ~5x faster BM25 on questions at the same quality.
  bool drop_stopwords = true;
};

// CollectionStats are counters for operators.
struct CollectionStats {
  int64_t documents = 0;
  int64_t index_vectors = 0;  // including dead entries
  int64_t dead_vectors = 0;
  std::string factory;         // the factory string asked for at Create
  std::string active_factory;  // "Flat" until a trained index is possible
  int64_t snapshot_vectors = 0;
  int64_t snapshots_rebuilt = 0;  // snapshots found corrupt or stale on open
  int64_t snapshot_failures =
      0;  // snapshots that failed (disk full) since open
  int64_t disk_bytes = 0;
};

class Collection {
 public:
  // Create makes a new collection directory. AlreadyExists if it holds one;
  // InvalidArgument for a bad factory string, model id or dimension.
  static absl::StatusOr<std::unique_ptr<Collection>> Create(
      const CollectionOptions& options);
  // Open loads an existing collection. NotFound if absent;
  // FailedPrecondition if its model id or dimension differ from `options`.
  static absl::StatusOr<std::unique_ptr<Collection>> Open(
      const CollectionOptions& options);
  ~Collection();

  // CheckFields runs Upsert's checks of everything but the vector on
  // documents[i] (id, UTF-8, sizes, metadata: a JSON object of at most 32
  // levels; metadata is canonicalized in place; "" becomes "{}").
  // InvalidArgument names the field. For loaders that skip bad records.
  static absl::Status CheckFields(Document& doc, size_t i,
                                  const CollectionOptions& options);
  // Upsert inserts or replaces documents (text, metadata and vector together,
  // atomically: all of the batch or none). Vectors are L2-normalized here.
  // InvalidArgument names the document index and field: empty or duplicate
  // id, wrong dimension, NaN/inf or zero vector, oversized text, invalid
  // metadata JSON (must be an object), invalid UTF-8.
  absl::Status Upsert(std::vector<Document> docs);
  // Delete removes documents by id; returns how many existed.
  absl::StatusOr<int64_t> Delete(const std::vector<std::string>& ids);
  // DeleteByFilter removes every document matching `filter`.
  absl::StatusOr<int64_t> DeleteByFilter(const Filter& filter);
  // UnknownFilterFields: the fields of `filter` that no document's metadata
  // has (their conditions match nothing; filter.h), for warnings.
  std::vector<std::string> UnknownFilterFields(const Filter& filter) const;
  // Get returns the stored documents among `ids` (missing ids are skipped),
  // in the order asked.
  absl::StatusOr<std::vector<Document>> Get(const std::vector<std::string>& ids,
                                            bool with_vectors = false) const;
  // GetOptions bound what a Get loads: each text cut to `max_text_bytes`
  // (at a UTF-8 boundary; 0 = whole), and ResourceExhausted (naming
  // `budget_name`) as soon as text + title + metadata pass
  // `max_total_bytes` (0 = no bound), so memory stays bounded too.
  struct GetOptions {
    bool with_vectors = false;
    bool with_text = true;  // false: text and title left empty
    size_t max_text_bytes = 0;
    size_t max_total_bytes = 0;
    std::string budget_name = "max_total_bytes";
  };
  absl::StatusOr<std::vector<Document>> Get(const std::vector<std::string>& ids,
                                            const GetOptions& options) const;
  // List returns up to `limit` documents whose ids come after `after` in
  // byte order, in that order (paging through the collection).
  absl::StatusOr<std::vector<Document>> List(const std::string& after,
                                             int limit,
                                             const GetOptions& options) const;

  // SearchDense returns the top_k documents by inner product with `query`
  // (normalized here), among those matching the filter.
  absl::StatusOr<std::vector<Hit>> SearchDense(
      const std::vector<float>& query, const SearchOptions& options) const;
  // SearchLexical returns the top_k documents by FTS5 BM25 for `query`, whose
  // words are matched as plain terms (any FTS5 syntax is escaped).
  absl::StatusOr<std::vector<Hit>> SearchLexical(
      absl::string_view query, const SearchOptions& options) const;
  // SearchHybrid fuses dense and lexical top lists (each `candidates` long,
  // default 4 x top_k; the pipeline passes its own) into top_k.
  absl::StatusOr<std::vector<Hit>> SearchHybrid(
      const std::vector<float>& query_vector, absl::string_view query_text,
      const SearchOptions& options, const FusionOptions& fusion,
      int candidates = 0) const;

  // MarkDropped is called by the owner when the collection is dropped: it
  // waits for the write in progress (which was acknowledged before the
  // drop), then every later write, search and snapshot fails NotFound and
  // the destructor leaves the directory alone (it may hold a new collection
  // of the same name by then). Reads already running finish normally.
  // With refuse_reads false (a newer version replaced this one), searches
  // and gets keep working on the files already open until the last holder
  // lets go; only writes fail NotFound.
  void MarkDropped(bool refuse_reads = true);
  // Undrop reverses MarkDropped (a publish whose directory swap failed).
  void Undrop();
  // PinReaders opens every pooled read connection now (they open lazily
  // otherwise), so later reads never open files by path: called before the
  // directory is swapped for a newer version (Collections::Publish).
  absl::Status PinReaders();
  bool dropped() const { return dropped_.load(); }

  // Snapshot writes the FAISS snapshot and manifest now.
  absl::Status Snapshot();
  // Compact rebuilds the FAISS index from SQLite without dead entries.
  absl::Status Compact();
  CollectionStats Stats() const;
  // The embedding model its vectors come from, and their dimension.
  const std::string& model_id() const { return options_.model_id; }
  int dimension() const { return options_.dimension; }

 private:
  explicit Collection(CollectionOptions options);
  absl::Status Init(bool create);
  absl::Status LoadOrRebuildIndex();
  absl::Status RebuildIndexLocked(bool reassign_labels);
  absl::Status ValidateDocument(Document& doc, size_t index) const;
  absl::StatusOr<std::vector<int64_t>> FilterLabels(const Filter& filter) const;
  absl::Status MaybeSnapshotLocked();
  void MaybeSnapshotAfterCommitLocked();
  absl::Status SnapshotLocked();
  absl::Status RemoveLabelsLocked(const std::vector<int64_t>& labels);
  // LabelsToHits maps FAISS labels to hits; caller holds index_mu_ (shared).
  std::vector<Hit> LabelsToHitsLocked(
      const std::vector<std::pair<int64_t, float>>& found, int limit) const;
  absl::flat_hash_set<std::string> KnownFields() const;
  // NotFound once dropped (writes), else OK.
  absl::Status CheckLive() const;
  // NotFound once dropped with refuse_reads (reads), else OK.
  absl::Status CheckReadable() const;
  // A pooled read connection; NotFound when the collection was dropped.
  absl::StatusOr<ReaderPool::Lease> Reader() const;

  const CollectionOptions options_;
  Manifest manifest_;           // guarded by write_mu_ after Init
  int dimension_ = 0;           // constant after Init
  std::string factory_;         // constant after Init
  std::mutex write_mu_;         // serializes writers (and the writer Db)
  std::unique_ptr<Db> writer_;  // guarded by write_mu_
  std::unique_ptr<ReaderPool> readers_;
  mutable std::shared_mutex index_mu_;  // guards index_, live_, counters below
  std::unique_ptr<VectorIndex> index_;
  Bitmap live_;                            // bit per label: document exists
  std::vector<std::string> ids_by_label_;  // "" for dead labels
  int64_t live_count_ = 0;
  std::string active_factory_;
  int64_t added_since_snapshot_ = 0;
  int64_t epoch_ = 0;
  std::atomic<bool> dropped_{false};  // written under write_mu_
  std::atomic<bool> reads_refused_{false};
  std::atomic<int64_t> snapshots_rebuilt_{0};
  std::atomic<int64_t> snapshot_failures_{0};
  std::atomic<int64_t> snapshot_vectors_{0};
  mutable std::mutex fields_mu_;
  absl::flat_hash_set<std::string> fields_;  // guarded by fields_mu_
};

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_COLLECTION_H_
