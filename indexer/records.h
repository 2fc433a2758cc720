// records.h: the document sources diffrank-index reads.
//
// Formats (ReadRecords picks one by --format or by the path):
//   jsonl  one JSON object per line (path or "-" for stdin); field names for
//          id, title, text and metadata are configurable; ids may be strings
//          or integers; metadata may be an object or a string holding one.
//   csv / tsv  RFC 4180 (quoted fields, doubled quotes, newlines inside
//          quotes); the header row names the fields.
//   beir   a BEIR folder: corpus.jsonl with _id, title, text, metadata.
//   dir    a directory tree of text files (.txt, .md by default): id = the
//          path relative to the root, text = the file; read in sorted order.
// Parquet is not offered: Debian 12 ships no maintained C++ Parquet reader
// (Apache Arrow's C++ libraries are not packaged there).
// Every record carries where it came from ("file:line"); a record that
// cannot be read (broken JSON, missing id or text, a line over the size
// limit) goes to `bad` with the reason, and reading continues. Records come
// in a deterministic order, so a resumed run can skip what was done.
// Thread-safety: plain functions.
#ifndef DIFFRANK_INDEXER_RECORDS_H_
#define DIFFRANK_INDEXER_RECORDS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "encoder/tokenizer.h"
#include "index/collection.h"
#include "index/types.h"

namespace diffrank::indexer {

struct InputOptions {
  std::string format = "auto";  // auto | jsonl | csv | tsv | beir | dir
  std::string id_field = "id";
  std::string title_field = "title";
  std::string text_field = "text";
  std::string metadata_field = "metadata";
  std::vector<std::string> extensions = {".txt", ".md"};  // dir
  size_t max_record_bytes = 8 << 20;  // longer lines/files are bad records
  // Chunking (chunker.h): windows of chunk_tokens tokens (0 = off) sharing
  // chunk_overlap tokens, counted by `tokenizer` (required when on).
  int chunk_tokens = 0;
  int chunk_overlap = 0;
  const encoder::Tokenizer* tokenizer = nullptr;
  // Sharding (common/shard_hash.h): keep only the records (chunks) whose
  // id ShardOf maps to `shard` of `shards` (1 = keep all): one shard's
  // version of a collection served by a router.
  int shard = 0;
  int shards = 1;
};

struct Record {
  index::Document doc;
  std::string where;  // "file:line" or the file path
};

// Sink receives each record in order; a non-OK status stops reading and is
// returned by ReadRecords.
using GoodSink = std::function<absl::Status(Record)>;
using BadSink = std::function<absl::Status(const std::string& where,
                                           const std::string& why)>;

// Progress is what both modes report while they run (and at the end).
struct Progress {
  int64_t records = 0;        // consumed (good + bad)
  int64_t total_records = 0;  // in the input (CountRecords); 0 = unknown
  int64_t documents = 0;      // committed (online: acknowledged)
  int64_t embedded = 0;  // embedded (committed or in the open chunk; online:
                         // acknowledged)
  int64_t embedded_at_start = 0;  // documents of earlier (resumed) runs
  int64_t bad = 0;
  int64_t tokens = 0;         // real tokens embedded
  int64_t padded_tokens = 0;  // tokens computed (with padding)
  int64_t input_bytes_read = 0;
  int64_t input_bytes = 0;  // 0 = unknown (stdin)
  absl::Duration elapsed;
  absl::Duration read, embed, write;  // time per stage
};

// CheckInput tells at once whether `path` can be read at all: NotFound (no
// such file or directory), PermissionDenied, or InvalidArgument (unknown
// format); run before anything slow (loading a model, calling a server).
absl::Status CheckInput(const std::string& path, const InputOptions& options);

// CountRecords counts the records of `path` for progress (one fast pass:
// lines of JSON lines and BEIR corpora, rows of CSV/TSV less the header,
// files of a directory tree with the wanted extensions); 0 when unknown
// (stdin, chunking, unreadable).
int64_t CountRecords(const std::string& path, const InputOptions& options);

// ResolveFormat names the format ReadRecords will use for `path`.
absl::StatusOr<std::string> ResolveFormat(const std::string& path,
                                          const InputOptions& options);

// ReadRecords streams the records of `path` (as their chunks when
// chunk_tokens > 0). NotFound / PermissionDenied when the input itself
// cannot be opened; bad records go to `bad`.
absl::Status ReadRecords(const std::string& path, const InputOptions& options,
                         const GoodSink& good, const BadSink& bad);

// InputBytes is the total size of the input (0 for stdin), for progress.
int64_t InputBytes(const std::string& path, const InputOptions& options);

// InputFingerprint identifies the content version of a file input (its
// size and modification time; "" for stdin and directories), for the
// resume signatures of both modes.
std::string InputFingerprint(const std::string& path);

// RecordChecker applies the Upsert rules (index::Collection::CheckFields and
// the server's: text must not be blank) to each record before it is written
// or sent, and refuses an id an earlier record of the input already had.
// Offline and online loads use it alike, so both refuse the same records.
class RecordChecker {
 public:
  explicit RecordChecker(index::CollectionOptions limits)
      : limits_(std::move(limits)) {}
  // Problem returns "" for a good document (metadata canonicalized in
  // place), else why it is bad.
  std::string Problem(index::Document& doc);

 private:
  index::CollectionOptions limits_;
  absl::flat_hash_set<std::string> seen_;
};

}  // namespace diffrank::indexer

#endif  // DIFFRANK_INDEXER_RECORDS_H_
