// collection.cc: collection lifecycle, the write path, snapshots, recovery.
// The read path is in collection_search.cc.
#include "index/collection.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "index/collection_internal.h"
#include "index/factory.h"
#include "index/sqlite_db.h"
#include "nlohmann/json.hpp"

namespace diffrank::index {
namespace fs = std::filesystem;

namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS docs(
  label INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  text TEXT NOT NULL,
  metadata TEXT NOT NULL,
  vector BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
  body, content='', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS docs_ai AFTER INSERT ON docs BEGIN
  INSERT INTO docs_fts(rowid, body) VALUES (new.label, new.title || ' ' || new.text);
END;
CREATE TRIGGER IF NOT EXISTS docs_ad AFTER DELETE ON docs BEGIN
  INSERT INTO docs_fts(docs_fts, rowid, body)
    VALUES ('delete', old.label, old.title || ' ' || old.text);
END;
CREATE TABLE IF NOT EXISTS fields(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('next_label', 0), ('epoch', 0);
)sql";

// Metadata nesting limit (objects and arrays), far above real use.
constexpr int kMaxMetadataDepth = 32;

// JsonNestingDepth is the deepest bracket nesting of `json` outside strings
// (a linear scan, no recursion; the text need not be valid JSON).
int JsonNestingDepth(absl::string_view json) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

void SetBit(Bitmap& b, int64_t i, bool on) {
  if (static_cast<size_t>(i / 8) >= b.size()) b.resize(i / 8 + 1, 0);
  if (on) {
    b[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  } else {
    b[i / 8] &= static_cast<uint8_t>(~(1u << (i % 8)));
  }
}

absl::StatusOr<int64_t> MetaValue(Db& db, absl::string_view key) {
  ASSIGN_OR_RETURN(Stmt s, db.Prepare("SELECT value FROM meta WHERE key = ?"));
  s.Bind(1, key);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row)
    return absl::DataLossError(absl::StrCat("meta key ", key, " missing"));
  return s.Int(0);
}

absl::Status SetMeta(Db& db, absl::string_view key, int64_t value) {
  ASSIGN_OR_RETURN(Stmt s,
                   db.Prepare("UPDATE meta SET value = ? WHERE key = ?"));
  s.Bind(1, value).Bind(2, key);
  return s.Run();
}

// Transaction rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(Db& db) : db_(db) {}
  absl::Status Begin() {
    RETURN_IF_ERROR(db_.Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return absl::OkStatus();
  }
  absl::Status Commit() {
    RETURN_IF_ERROR(db_.Exec("COMMIT"));
    open_ = false;
    return absl::OkStatus();
  }
  ~Transaction() {
    if (open_) db_.Exec("ROLLBACK").IgnoreError();
  }

 private:
  Db& db_;
  bool open_ = false;
};

}  // namespace

Collection::Collection(CollectionOptions options)
    : options_(std::move(options)) {}
Collection::~Collection() {
  // Leave a fresh snapshot behind so the next open replays little.
  std::lock_guard<std::mutex> w(write_mu_);
  if (writer_ && !dropped_ && added_since_snapshot_ > 0) {
    SnapshotLocked().IgnoreError();
  }
}

void Collection::MarkDropped(bool refuse_reads) {
  std::lock_guard<std::mutex> w(write_mu_);
  dropped_ = true;
  reads_refused_ = refuse_reads;
}

void Collection::Undrop() {
  std::lock_guard<std::mutex> w(write_mu_);
  dropped_ = false;
  reads_refused_ = false;
}

absl::Status Collection::PinReaders() { return readers_->OpenAll(); }

absl::Status Collection::CheckReadable() const {
  if (reads_refused_.load()) {
    return absl::NotFoundError("the collection was dropped");
  }
  return absl::OkStatus();
}

absl::Status Collection::CheckLive() const {
  if (dropped_.load()) {
    return absl::NotFoundError("the collection was dropped");
  }
  return absl::OkStatus();
}

absl::StatusOr<ReaderPool::Lease> Collection::Reader() const {
  RETURN_IF_ERROR(CheckReadable());
  absl::StatusOr<ReaderPool::Lease> lease = readers_->Acquire();
  // Checked again after the acquire, which may open a connection by path: a
  // drop refuses reads before it renames the directory away, so a
  // connection opened after the rename (to a collection created under the
  // same name since: "no such table: docs_fts" in e2e_hardening's admin
  // race) is always caught here; one opened before it reads the old files.
  RETURN_IF_ERROR(CheckReadable());
  return lease;
}

absl::StatusOr<std::unique_ptr<Collection>> Collection::Create(
    const CollectionOptions& options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("dir is empty");
  if (options.model_id.empty()) {
    return absl::InvalidArgumentError("model_id is empty");
  }
  if (options.dimension <= 0 || options.dimension > 65536) {
    return absl::InvalidArgumentError("dimension must be in [1, 65536]");
  }
  if (fs::exists(options.dir + "/manifest.json")) {
    return absl::AlreadyExistsError(
        absl::StrCat("a collection already exists at ", options.dir));
  }
  // Validate the factory string before touching the disk.
  ASSIGN_OR_RETURN(auto probe,
                   VectorIndex::Create(options.dimension, options.factory));
  (void)probe;
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", options.dir, ": ", ec.message()));
  }
  std::unique_ptr<Collection> c(new Collection(options));
  c->manifest_.model_id = options.model_id;
  c->manifest_.dimension = options.dimension;
  c->manifest_.factory = options.factory;
  RETURN_IF_ERROR(c->Init(/*create=*/true));
  return c;
}

absl::StatusOr<std::unique_ptr<Collection>> Collection::Open(
    const CollectionOptions& options) {
  ASSIGN_OR_RETURN(Manifest m, ReadManifest(options.dir));
  if (m.model_id != options.model_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection at ", options.dir, " was built by model \"", m.model_id,
        "\", not \"", options.model_id, "\": re-embed it or load that model"));
  }
  if (m.dimension != options.dimension) {
    return absl::FailedPreconditionError(
        absl::StrCat("collection at ", options.dir, " has dimension ",
                     m.dimension, ", the model produces ", options.dimension));
  }
  // A collection made by an older version with a factory string now refused
  // (one that crashes FAISS) must not be opened: refuse it, don't crash.
  if (absl::Status f = ParseFactory(m.factory, m.dimension).status(); !f.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("collection at ", options.dir, ": ", f.message(),
                     "; drop it and re-create it with a supported index"));
  }
  std::unique_ptr<Collection> c(new Collection(options));
  c->manifest_ = m;
  RETURN_IF_ERROR(c->Init(/*create=*/false));
  return c;
}

absl::Status Collection::Init(bool create) {
  dimension_ = manifest_.dimension;
  factory_ = manifest_.factory;
  const std::string db_path = options_.dir + "/docs.sqlite";
  if (!create && !fs::exists(db_path)) {
    return absl::DataLossError(absl::StrCat(db_path, " is missing"));
  }
  Db::Options o;
  o.create = create;
  o.sync_full = options_.sync_full;
  ASSIGN_OR_RETURN(writer_, Db::Open(db_path, o));
  RETURN_IF_ERROR(writer_->Exec(kSchema));
  readers_ = std::make_unique<ReaderPool>(
      db_path, std::max(1, options_.reader_connections), options_.sync_full);
  {
    ASSIGN_OR_RETURN(Stmt s, writer_->Prepare("SELECT name FROM fields"));
    std::lock_guard<std::mutex> g(fields_mu_);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      fields_.insert(s.Text(0));
    }
  }
  ASSIGN_OR_RETURN(epoch_, MetaValue(*writer_, "epoch"));
  std::lock_guard<std::mutex> w(write_mu_);
  std::unique_lock<std::shared_mutex> l(index_mu_);
  RETURN_IF_ERROR(LoadOrRebuildIndex());
  if (create) RETURN_IF_ERROR(SnapshotLocked());
  return absl::OkStatus();
}

// Loads the snapshot when it is intact and current, else rebuilds from
// SQLite; then replays vectors newer than the snapshot. Caller holds
// write_mu_ and index_mu_ exclusively.
absl::Status Collection::LoadOrRebuildIndex() {
  const int dim = manifest_.dimension;
  const std::string snap = options_.dir + "/vectors.faiss";
  bool loaded = false;
  if (!manifest_.snapshot_file.empty() && fs::exists(snap) &&
      manifest_.snapshot_epoch == epoch_) {
    absl::StatusOr<uint32_t> crc = FileCrc32(snap);
    if (crc.ok() && *crc == manifest_.snapshot_crc32) {
      absl::StatusOr<std::unique_ptr<VectorIndex>> idx =
          VectorIndex::Read(snap, dim);
      if (idx.ok() && (*idx)->size() == manifest_.snapshot_vectors) {
        index_ = *std::move(idx);
        active_factory_ = manifest_.snapshot_factory;
        loaded = true;
      }
    }
  }
  if (!loaded) {
    if (!manifest_.snapshot_file.empty()) ++snapshots_rebuilt_;
    return RebuildIndexLocked(/*reassign_labels=*/false);
  }
  // Replay the log: documents whose label is not in the snapshot yet.
  ASSIGN_OR_RETURN(
      Stmt s,
      writer_->Prepare(
          "SELECT label, vector FROM docs WHERE label >= ? ORDER BY label"));
  s.Bind(1, index_->size());
  std::vector<float> zeros(dim, 0.0f);
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    const int64_t label = s.Int(0);
    if (s.Bytes(1) != dim * static_cast<int>(sizeof(float))) {
      return absl::DataLossError(
          absl::StrCat("vector of label ", label, " is corrupt"));
    }
    while (index_->size() < label)
      RETURN_IF_ERROR(index_->Add(zeros.data(), 1));
    RETURN_IF_ERROR(index_->Add(static_cast<const float*>(s.Blob(1)), 1));
    ++added_since_snapshot_;
  }
  live_.clear();
  ids_by_label_.assign(index_->size(), std::string());
  live_count_ = 0;
  ASSIGN_OR_RETURN(Stmt all, writer_->Prepare("SELECT label, id FROM docs"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, all.Step());
    if (!row) break;
    const int64_t label = all.Int(0);
    if (label < 0 || label >= index_->size()) {
      return absl::DataLossError(
          absl::StrCat("label ", label, " out of range"));
    }
    SetBit(live_, label, true);
    ids_by_label_[label] = all.Text(1);
    ++live_count_;
  }
  return absl::OkStatus();
}

// Rebuilds FAISS from SQLite. With reassign_labels, first renumbers labels
// 0..n-1 in SQLite (dropping dead entries; bumps the epoch) in one
// transaction. Trains the configured factory when there is enough data.
absl::Status Collection::RebuildIndexLocked(bool reassign_labels) {
  const int dim = manifest_.dimension;
  if (reassign_labels) {
    Transaction tx(*writer_);
    RETURN_IF_ERROR(tx.Begin());
    RETURN_IF_ERROR(writer_->Exec(
        "INSERT INTO docs_fts(docs_fts) VALUES ('delete-all');"
        "CREATE TEMP TABLE remap AS SELECT label AS old,"
        "  row_number() OVER (ORDER BY label) - 1 AS new FROM docs;"
        "UPDATE docs SET label = -1 - (SELECT new FROM remap WHERE old = "
        "docs.label);"
        "UPDATE docs SET label = -1 - label;"
        "DROP TABLE remap;"
        "INSERT INTO docs_fts(rowid, body) SELECT label, title || ' ' || text "
        "FROM docs;"
        "UPDATE meta SET value = (SELECT count(*) FROM docs) WHERE key = "
        "'next_label';"
        "UPDATE meta SET value = value + 1 WHERE key = 'epoch';"));
    RETURN_IF_ERROR(tx.Commit());
    ASSIGN_OR_RETURN(epoch_, MetaValue(*writer_, "epoch"));
  }
  ASSIGN_OR_RETURN(const int64_t next_label, MetaValue(*writer_, "next_label"));
  ASSIGN_OR_RETURN(Stmt count, writer_->Prepare("SELECT count(*) FROM docs"));
  ASSIGN_OR_RETURN(bool has, count.Step());
  const int64_t n = has ? count.Int(0) : 0;
  const int64_t need =
      VectorIndex::MinTrainingVectors(manifest_.factory, manifest_.dimension);
  const std::string factory = need > 0 && n < need ? "Flat" : manifest_.factory;
  ASSIGN_OR_RETURN(std::unique_ptr<VectorIndex> idx,
                   VectorIndex::Create(dim, factory));
  // Dense matrix by label (dead labels stay zero).
  std::vector<float> all(static_cast<size_t>(next_label) * dim, 0.0f);
  Bitmap live;
  std::vector<std::string> ids(next_label);
  int64_t live_count = 0;
  {
    ASSIGN_OR_RETURN(
        Stmt s,
        writer_->Prepare("SELECT label, vector, id FROM docs ORDER BY label"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      const int64_t label = s.Int(0);
      if (label < 0 || label >= next_label ||
          s.Bytes(1) != dim * static_cast<int>(sizeof(float))) {
        return absl::DataLossError(
            absl::StrCat("document label ", label, " is corrupt"));
      }
      std::memcpy(&all[label * dim], s.Blob(1), dim * sizeof(float));
      SetBit(live, label, true);
      ids[label] = s.Text(2);
      ++live_count;
    }
  }
  if (!idx->is_trained() && live_count == 0) {
    // Never train on nothing (FAISS crashes on some encodings).
    return absl::InternalError(
        absl::StrCat("index ", factory, " needs training but has no vectors"));
  }
  if (!idx->is_trained()) {
    // Train on the live vectors (dead labels are zeros and would skew it).
    std::vector<float> train;
    train.reserve(static_cast<size_t>(live_count) * dim);
    for (int64_t l = 0; l < next_label; ++l) {
      if (static_cast<size_t>(l / 8) < live.size() &&
          (live[l / 8] >> (l % 8)) & 1) {
        train.insert(train.end(), all.begin() + l * dim,
                     all.begin() + (l + 1) * dim);
      }
    }
    RETURN_IF_ERROR(idx->Train(train.data(), live_count));
  }
  RETURN_IF_ERROR(idx->Add(all.data(), next_label));
  index_ = std::move(idx);
  live_ = std::move(live);
  ids_by_label_ = std::move(ids);
  live_count_ = live_count;
  active_factory_ = factory;
  return SnapshotLocked();
}

absl::Status Collection::CheckFields(Document& d, size_t i,
                                     const CollectionOptions& options) {
  auto bad = [&](absl::string_view field, absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("documents[", i, "].", field, ": ", what));
  };
  if (d.id.empty()) return bad("id", "must not be empty");
  if (d.id.size() > options.max_id_bytes) {
    return bad("id",
               absl::StrCat("longer than ", options.max_id_bytes, " bytes"));
  }
  for (auto [name, value] :
       {std::pair<const char*, const std::string*>{"id", &d.id},
        {"title", &d.title},
        {"text", &d.text}}) {
    if (size_t at = Utf8ErrorOffset(*value); at != absl::string_view::npos) {
      return bad(name, absl::StrCat("invalid UTF-8 at byte ", at));
    }
  }
  if (d.text.size() + d.title.size() > options.max_text_bytes) {
    return bad("text", absl::StrCat(d.text.size() + d.title.size(),
                                    " bytes exceed the limit of ",
                                    options.max_text_bytes));
  }
  if (d.metadata.empty()) d.metadata = "{}";
  if (d.metadata.size() > options.max_metadata_bytes) {
    return bad("metadata",
               absl::StrCat("exceeds ", options.max_metadata_bytes, " bytes"));
  }
  // SQLite's JSON functions refuse nesting deeper than 1000 (and then fail
  // every filtered query over the collection): bound it at the door.
  if (JsonNestingDepth(d.metadata) > kMaxMetadataDepth) {
    return bad("metadata", absl::StrCat("nested deeper than ",
                                        kMaxMetadataDepth, " levels"));
  }
  nlohmann::json m = nlohmann::json::parse(d.metadata, nullptr, false);
  if (m.is_discarded() || !m.is_object()) {
    return bad("metadata", "must be a JSON object (valid JSON, valid UTF-8)");
  }
  d.metadata = m.dump();  // canonical, compact
  return absl::OkStatus();
}

absl::Status Collection::ValidateDocument(Document& d, size_t i) const {
  RETURN_IF_ERROR(CheckFields(d, i, options_));
  auto bad = [&](absl::string_view field, absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("documents[", i, "].", field, ": ", what));
  };
  if (static_cast<int>(d.vector.size()) != manifest_.dimension) {
    return bad("vector",
               absl::StrCat("has dimension ", d.vector.size(),
                            ", the collection has ", manifest_.dimension));
  }
  double norm = 0;
  for (float x : d.vector) {
    if (!std::isfinite(x)) return bad("vector", "contains NaN or infinity");
    norm += double(x) * x;
  }
  if (norm == 0) return bad("vector", "is all zeros");
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& x : d.vector) x *= inv;
  return absl::OkStatus();
}

absl::Status Collection::Upsert(std::vector<Document> docs) {
  if (docs.empty()) return absl::OkStatus();
  absl::flat_hash_set<absl::string_view> seen;
  for (size_t i = 0; i < docs.size(); ++i) {
    RETURN_IF_ERROR(ValidateDocument(docs[i], i));
    if (!seen.insert(docs[i].id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("documents[", i, "].id: duplicate id \"", docs[i].id,
                       "\" in the batch"));
    }
  }
  std::lock_guard<std::mutex> w(write_mu_);
  RETURN_IF_ERROR(CheckLive());
  std::vector<int64_t> old_labels, new_labels;
  std::vector<std::string> new_fields;
  {
    Transaction tx(*writer_);
    RETURN_IF_ERROR(tx.Begin());
    ASSIGN_OR_RETURN(int64_t next, MetaValue(*writer_, "next_label"));
    ASSIGN_OR_RETURN(Stmt find,
                     writer_->Prepare("SELECT label FROM docs WHERE id = ?"));
    ASSIGN_OR_RETURN(Stmt del,
                     writer_->Prepare("DELETE FROM docs WHERE label = ?"));
    ASSIGN_OR_RETURN(
        Stmt ins,
        writer_->Prepare(
            "INSERT INTO docs(label, id, title, text, metadata, vector)"
            " VALUES (?, ?, ?, ?, ?, ?)"));
    ASSIGN_OR_RETURN(
        Stmt field,
        writer_->Prepare("INSERT OR IGNORE INTO fields VALUES (?)"));
    for (const Document& d : docs) {
      find.Bind(1, d.id);
      ASSIGN_OR_RETURN(bool exists, find.Step());
      if (exists) {
        old_labels.push_back(find.Int(0));
        del.Bind(1, find.Int(0));
        RETURN_IF_ERROR(del.Run());
        RETURN_IF_ERROR(del.Reset());
      }
      RETURN_IF_ERROR(find.Reset());
      ins.Bind(1, next)
          .Bind(2, d.id)
          .Bind(3, d.title)
          .Bind(4, d.text)
          .Bind(5, d.metadata);
      ins.BindBlob(6, d.vector.data(), d.vector.size() * sizeof(float));
      RETURN_IF_ERROR(ins.Run());
      RETURN_IF_ERROR(ins.Reset());
      new_labels.push_back(next++);
      const nlohmann::json meta = nlohmann::json::parse(d.metadata);
      for (auto it = meta.begin(); it != meta.end(); ++it) {
        const std::string& key = it.key();
        field.Bind(1, key);
        RETURN_IF_ERROR(field.Run());
        RETURN_IF_ERROR(field.Reset());
        new_fields.push_back(key);
      }
    }
    RETURN_IF_ERROR(SetMeta(*writer_, "next_label", next));
    RETURN_IF_ERROR(tx.Commit());
  }
  // Durable from here on. Update the in-memory index.
  {
    std::lock_guard<std::mutex> g(fields_mu_);
    for (std::string& f : new_fields) fields_.insert(std::move(f));
  }
  std::unique_lock<std::shared_mutex> l(index_mu_);
  // One FAISS add for the batch (FAISS parallelizes within a call): rows from
  // the index's end to the last new label, zeros for any gap.
  const int64_t first = index_->size();
  const int64_t last = new_labels.back();
  std::vector<float> rows(static_cast<size_t>(last - first + 1) * dimension_,
                          0.0f);
  for (size_t i = 0; i < docs.size(); ++i) {
    std::copy(docs[i].vector.begin(), docs[i].vector.end(),
              rows.begin() + (new_labels[i] - first) * dimension_);
  }
  RETURN_IF_ERROR(index_->Add(rows.data(), last - first + 1));
  ids_by_label_.resize(index_->size());
  for (size_t i = 0; i < docs.size(); ++i) {
    SetBit(live_, new_labels[i], true);
    ids_by_label_[new_labels[i]] = std::move(docs[i].id);
  }
  for (int64_t label : old_labels) {
    SetBit(live_, label, false);
    ids_by_label_[label].clear();
  }
  live_count_ += static_cast<int64_t>(docs.size() - old_labels.size());
  added_since_snapshot_ += static_cast<int64_t>(docs.size());
  MaybeSnapshotAfterCommitLocked();
  return absl::OkStatus();
}

// The batch is committed (durable in SQLite) and in memory: a snapshot that
// fails now (a full disk) must not turn the acknowledgement into an error.
// The snapshot is retried at the next write; the log replays meanwhile.
void Collection::MaybeSnapshotAfterCommitLocked() {
  if (absl::Status s = MaybeSnapshotLocked(); !s.ok()) {
    ++snapshot_failures_;
    std::fprintf(stderr, "diffrank: %s: snapshot deferred: %s\n",
                 options_.dir.c_str(), std::string(s.message()).c_str());
  }
}

absl::Status Collection::RemoveLabelsLocked(
    const std::vector<int64_t>& labels) {
  std::unique_lock<std::shared_mutex> l(index_mu_);
  for (int64_t label : labels) {
    SetBit(live_, label, false);
    if (label < static_cast<int64_t>(ids_by_label_.size())) {
      ids_by_label_[label].clear();
    }
  }
  live_count_ -= static_cast<int64_t>(labels.size());
  MaybeSnapshotAfterCommitLocked();
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Collection::Delete(
    const std::vector<std::string>& ids) {
  std::lock_guard<std::mutex> w(write_mu_);
  RETURN_IF_ERROR(CheckLive());
  std::vector<int64_t> labels;
  {
    Transaction tx(*writer_);
    RETURN_IF_ERROR(tx.Begin());
    ASSIGN_OR_RETURN(
        Stmt s,
        writer_->Prepare("DELETE FROM docs WHERE id = ? RETURNING label"));
    for (const std::string& id : ids) {
      s.Bind(1, id);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) labels.push_back(s.Int(0));
      RETURN_IF_ERROR(s.Reset());
    }
    RETURN_IF_ERROR(tx.Commit());
  }
  RETURN_IF_ERROR(RemoveLabelsLocked(labels));
  return static_cast<int64_t>(labels.size());
}

absl::StatusOr<int64_t> Collection::DeleteByFilter(const Filter& filter) {
  ASSIGN_OR_RETURN(SqlPredicate pred, CompileFilter(filter, KnownFields()));
  std::lock_guard<std::mutex> w(write_mu_);
  RETURN_IF_ERROR(CheckLive());
  std::vector<int64_t> labels;
  {
    Transaction tx(*writer_);
    RETURN_IF_ERROR(tx.Begin());
    ASSIGN_OR_RETURN(
        Stmt s, writer_->Prepare(absl::StrCat("DELETE FROM docs AS d WHERE ",
                                              pred.sql, " RETURNING label")));
    internal::BindParams(s, pred.params, 1);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      labels.push_back(s.Int(0));
    }
    RETURN_IF_ERROR(tx.Commit());
  }
  RETURN_IF_ERROR(RemoveLabelsLocked(labels));
  return static_cast<int64_t>(labels.size());
}

// Caller holds write_mu_ and index_mu_ exclusively.
absl::Status Collection::MaybeSnapshotLocked() {
  const int64_t need =
      VectorIndex::MinTrainingVectors(manifest_.factory, manifest_.dimension);
  if (active_factory_ != manifest_.factory && need > 0 && live_count_ >= need) {
    return RebuildIndexLocked(
        /*reassign_labels=*/true);  // train the real index
  }
  const int64_t dead = index_->size() - live_count_;
  if (dead > 1000 && dead * 3 > index_->size()) {
    return RebuildIndexLocked(/*reassign_labels=*/true);  // compaction
  }
  if (added_since_snapshot_ >= options_.snapshot_every) return SnapshotLocked();
  return absl::OkStatus();
}

// Caller holds write_mu_ (no concurrent adds) and index_mu_ (any mode).
absl::Status Collection::SnapshotLocked() {
  const std::string path = options_.dir + "/vectors.faiss";
  RETURN_IF_ERROR(index_->Write(path));
  ASSIGN_OR_RETURN(uint32_t crc, FileCrc32(path));
  Manifest m = manifest_;
  m.snapshot_file = "vectors.faiss";
  m.snapshot_factory = active_factory_;
  m.snapshot_vectors = index_->size();
  m.snapshot_epoch = epoch_;
  m.snapshot_crc32 = crc;
  m.documents = live_count_;
  RETURN_IF_ERROR(WriteManifest(options_.dir, m));
  manifest_ = m;
  snapshot_vectors_ = m.snapshot_vectors;
  added_since_snapshot_ = 0;
  return absl::OkStatus();
}

absl::Status Collection::Snapshot() {
  std::lock_guard<std::mutex> w(write_mu_);
  RETURN_IF_ERROR(CheckLive());
  std::shared_lock<std::shared_mutex> l(index_mu_);
  return SnapshotLocked();
}

absl::Status Collection::Compact() {
  std::lock_guard<std::mutex> w(write_mu_);
  RETURN_IF_ERROR(CheckLive());
  std::unique_lock<std::shared_mutex> l(index_mu_);
  return RebuildIndexLocked(/*reassign_labels=*/true);
}

CollectionStats Collection::Stats() const {
  CollectionStats s;
  {
    std::shared_lock<std::shared_mutex> l(index_mu_);
    s.documents = live_count_;
    s.index_vectors = index_->size();
    s.dead_vectors = index_->size() - live_count_;
    s.active_factory = active_factory_;
  }
  s.factory = factory_;
  s.snapshot_vectors = snapshot_vectors_.load();
  s.snapshots_rebuilt = snapshots_rebuilt_.load();
  s.snapshot_failures = snapshot_failures_.load();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.dir, ec)) {
    if (e.is_regular_file(ec))
      s.disk_bytes += static_cast<int64_t>(e.file_size(ec));
  }
  return s;
}

std::vector<std::string> Collection::UnknownFilterFields(
    const Filter& filter) const {
  return index::UnknownFilterFields(filter, KnownFields());
}

absl::flat_hash_set<std::string> Collection::KnownFields() const {
  std::lock_guard<std::mutex> g(fields_mu_);
  return fields_;
}

}  // namespace diffrank::index
