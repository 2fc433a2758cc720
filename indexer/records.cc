// records.cc: JSONL, CSV/TSV, BEIR and directory readers (see records.h).
#include "indexer/records.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <istream>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/shard_hash.h"
#include "common/status_macros.h"
#include "indexer/chunker.h"
#include "nlohmann/json.hpp"

namespace diffrank::indexer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ReadLine reads one line into `line` unless it is longer than `max`, in
// which case the rest of the line is skipped and `too_long` is set. False
// at the end of the input.
bool ReadLine(std::istream& in, size_t max, std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  bool any = false;
  std::streambuf* sb = in.rdbuf();
  while (true) {
    const int c = sb->sbumpc();
    if (c == std::char_traits<char>::eof()) return any;
    any = true;
    if (c == '\n') return true;
    if (line.size() < max) {
      line.push_back(static_cast<char>(c));
    } else {
      too_long = true;
    }
  }
}

// FieldString turns a JSON value into a string field (strings as they are,
// integers in decimal); false for other types.
bool FieldString(const json& v, std::string& out) {
  if (v.is_string()) {
    out = v.get<std::string>();
    return true;
  }
  if (v.is_number_integer() || v.is_number_unsigned()) {
    out = v.dump();
    return true;
  }
  return false;
}

// FromFields builds a document from named fields; "" on success, else why.
std::string FromFields(const std::map<std::string, const json*>& f,
                       const InputOptions& o, index::Document& d) {
  auto get = [&](const std::string& name) -> const json* {
    auto it = f.find(name);
    return it == f.end() ? nullptr : it->second;
  };
  const json* id = get(o.id_field);
  if (id == nullptr || !FieldString(*id, d.id) || d.id.empty()) {
    return absl::StrCat("missing or empty \"", o.id_field,
                        "\" (a string or an integer)");
  }
  const json* text = get(o.text_field);
  if (text == nullptr || !text->is_string()) {
    return absl::StrCat("missing \"", o.text_field, "\" (a string)");
  }
  d.text = text->get<std::string>();
  if (const json* title = get(o.title_field); title && !title->is_null()) {
    if (!title->is_string()) {
      return absl::StrCat("\"", o.title_field, "\" must be a string");
    }
    d.title = title->get<std::string>();
  }
  if (const json* m = get(o.metadata_field); m && !m->is_null()) {
    if (m->is_object()) {
      d.metadata = m->dump();
    } else if (m->is_string()) {
      d.metadata = m->get<std::string>();
    } else {
      return absl::StrCat("\"", o.metadata_field,
                          "\" must be an object or a JSON string");
    }
  }
  return "";
}

// Emit sends the record built from `fields` to `good`, or why not to `bad`.
absl::Status Emit(const std::map<std::string, const json*>& fields,
                  const std::string& where, const InputOptions& o,
                  const GoodSink& good, const BadSink& bad) {
  Record r;
  r.where = where;
  if (std::string why = FromFields(fields, o, r.doc); !why.empty()) {
    return bad(where, why);
  }
  return good(std::move(r));
}

absl::Status ReadJsonl(std::istream& in, const std::string& name,
                       const InputOptions& o, const GoodSink& good,
                       const BadSink& bad) {
  std::string line;
  bool too_long = false;
  for (int64_t n = 1; ReadLine(in, o.max_record_bytes, line, too_long); ++n) {
    const std::string where = absl::StrCat(name, ":", n);
    if (too_long) {
      RETURN_IF_ERROR(bad(where, absl::StrCat("line longer than ",
                                              o.max_record_bytes, " bytes")));
      continue;
    }
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      RETURN_IF_ERROR(bad(where, "not a JSON object"));
      continue;
    }
    std::map<std::string, const json*> fields;
    for (auto it = j.begin(); it != j.end(); ++it) fields[it.key()] = &*it;
    RETURN_IF_ERROR(Emit(fields, where, o, good, bad));
  }
  return absl::OkStatus();
}

// CsvRow reads one RFC 4180 row; false at the end of the input. `lines`
// counts the physical lines it consumed; `error` is set for a quote left
// open at the end or a row over `max` bytes.
bool CsvRow(std::istream& in, char sep, size_t max,
            std::vector<std::string>& row, int64_t& lines, std::string& error) {
  row.assign(1, "");
  error.clear();
  std::streambuf* sb = in.rdbuf();
  bool quoted = false, any = false;
  size_t bytes = 0;
  while (true) {
    const int c = sb->sbumpc();
    if (c == std::char_traits<char>::eof()) {
      if (quoted) error = "a quoted field is not closed";
      return any;
    }
    any = true;
    if (++bytes > max && error.empty()) error = "row too long";
    const char ch = static_cast<char>(c);
    if (quoted) {
      if (ch == '"') {
        if (sb->sgetc() == '"') {
          sb->sbumpc();
          row.back().push_back('"');
        } else {
          quoted = false;
        }
      } else {
        if (ch == '\n') ++lines;
        if (bytes <= max) row.back().push_back(ch);
      }
    } else if (ch == '"' && row.back().empty()) {
      quoted = true;
    } else if (ch == sep) {
      row.emplace_back();
    } else if (ch == '\n') {
      ++lines;
      if (!row.back().empty() && row.back().back() == '\r')
        row.back().pop_back();
      return true;
    } else if (bytes <= max) {
      row.back().push_back(ch);
    }
  }
}

absl::Status ReadCsv(std::istream& in, const std::string& name, char sep,
                     const InputOptions& o, const GoodSink& good,
                     const BadSink& bad) {
  std::vector<std::string> header, row;
  int64_t line = 0;
  std::string error;
  if (!CsvRow(in, sep, o.max_record_bytes, header, line, error)) {
    return absl::OkStatus();  // empty file
  }
  if (!error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":1: header: ", error));
  }
  while (true) {
    const int64_t first = line + 1;
    if (!CsvRow(in, sep, o.max_record_bytes, row, line, error)) break;
    const std::string where = absl::StrCat(name, ":", first);
    if (row.size() == 1 && row[0].empty()) continue;  // blank line
    if (!error.empty()) {
      RETURN_IF_ERROR(bad(where, error));
      continue;
    }
    if (row.size() != header.size()) {
      RETURN_IF_ERROR(bad(
          where,
          absl::StrCat(row.size(), " fields, the header has ", header.size())));
      continue;
    }
    std::vector<json> values(row.size());
    std::map<std::string, const json*> fields;
    for (size_t i = 0; i < row.size(); ++i) {
      values[i] = row[i];
      fields[header[i]] = &values[i];
    }
    RETURN_IF_ERROR(Emit(fields, where, o, good, bad));
  }
  return absl::OkStatus();
}

// DirFiles: the files under `root` with one of the wanted extensions, sorted.
absl::StatusOr<std::vector<fs::path>> DirFiles(const std::string& root,
                                               const InputOptions& o) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file(ec)) continue;
    const std::string ext =
        absl::AsciiStrToLower(it->path().extension().string());
    if (std::find(o.extensions.begin(), o.extensions.end(), ext) !=
        o.extensions.end()) {
      files.push_back(it->path());
    }
  }
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot list ", root, ": ", ec.message()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

absl::Status ReadDir(const std::string& root, const InputOptions& o,
                     const GoodSink& good, const BadSink& bad) {
  ASSIGN_OR_RETURN(std::vector<fs::path> files, DirFiles(root, o));
  for (const fs::path& p : files) {
    const std::string rel = fs::relative(p, root).generic_string();
    std::error_code sec;
    const auto size = fs::file_size(p, sec);
    if (sec) {
      RETURN_IF_ERROR(bad(rel, sec.message()));
      continue;
    }
    if (size > o.max_record_bytes) {
      RETURN_IF_ERROR(bad(rel, absl::StrCat("file of ", size, " bytes is over ",
                                            o.max_record_bytes)));
      continue;
    }
    std::ifstream f(p, std::ios::binary);
    if (!f) {
      RETURN_IF_ERROR(bad(rel, "cannot be read"));
      continue;
    }
    Record r;
    r.where = rel;
    r.doc.id = rel;
    r.doc.text.assign(std::istreambuf_iterator<char>(f), {});
    RETURN_IF_ERROR(good(std::move(r)));
  }
  return absl::OkStatus();
}

}  // namespace

int64_t CountRecords(const std::string& path, const InputOptions& o) {
  // Chunks and shards change what a record is; a count would mislead.
  if (path == "-" || o.chunk_tokens > 0 || o.shards > 1) return 0;
  absl::StatusOr<std::string> format = ResolveFormat(path, o);
  if (!format.ok()) return 0;
  if (*format == "dir") {
    absl::StatusOr<std::vector<fs::path>> files = DirFiles(path, o);
    return files.ok() ? static_cast<int64_t>(files->size()) : 0;
  }
  const std::string file =
      *format == "beir" ? (fs::path(path) / "corpus.jsonl").string() : path;
  std::ifstream in(file, std::ios::binary);
  if (!in) return 0;
  // Lines that hold something (a CSV row with a quoted newline counts
  // twice: the count is an estimate there).
  int64_t lines = 0;
  bool content = false;
  std::vector<char> buf(1 << 20);
  while (in.read(buf.data(), buf.size()) || in.gcount() > 0) {
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      const char c = buf[i];
      if (c == '\n') {
        lines += content;
        content = false;
      } else if (c != '\r' && c != ' ' && c != '\t') {
        content = true;
      }
    }
  }
  lines += content;
  if (*format == "csv" || *format == "tsv")
    return std::max<int64_t>(0, lines - 1);
  return lines;
}

absl::Status CheckInput(const std::string& path, const InputOptions& o) {
  if (path != "-") {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      return absl::NotFoundError(
          absl::StrCat("--input ", path, ": no such file or directory"));
    }
    if (!fs::is_directory(path, ec) && !std::ifstream(path, std::ios::binary)) {
      return absl::PermissionDeniedError(
          absl::StrCat("--input ", path, ": cannot be read"));
    }
  }
  return ResolveFormat(path, o).status();
}

absl::StatusOr<std::string> ResolveFormat(const std::string& path,
                                          const InputOptions& o) {
  static const char* kFormats[] = {"jsonl", "csv", "tsv", "beir", "dir"};
  if (o.format != "auto") {
    if (std::find(std::begin(kFormats), std::end(kFormats), o.format) ==
        std::end(kFormats)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--format must be auto, jsonl, csv, tsv, beir or dir, got \"",
          o.format, "\""));
    }
    return o.format;
  }
  if (path == "-") return std::string("jsonl");
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return std::string(fs::exists(fs::path(path) / "corpus.jsonl") ? "beir"
                                                                   : "dir");
  }
  for (const char* f : {"jsonl", "csv", "tsv"}) {
    if (absl::EndsWith(path, absl::StrCat(".", f))) return std::string(f);
  }
  if (absl::EndsWith(path, ".json") || absl::EndsWith(path, ".ndjson")) {
    return std::string("jsonl");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot tell the format of ", path, "; pass --format"));
}

absl::Status ReadRecords(const std::string& path, const InputOptions& options,
                         const GoodSink& good, const BadSink& bad) {
  if (options.shards > 1) {
    if (options.shard < 0 || options.shard >= options.shards) {
      return absl::InvalidArgumentError("shard must be in [0, shards)");
    }
    InputOptions all = options;
    all.shards = 1;
    // Applied to the final ids (after chunking): the ids the router routes.
    const GoodSink mine = [&options, &good](Record r) {
      if (ShardOf(r.doc.id, options.shards) != options.shard) {
        return absl::OkStatus();
      }
      return good(std::move(r));
    };
    return ReadRecords(path, all, mine, bad);
  }
  if (options.chunk_tokens > 0) {
    if (options.tokenizer == nullptr) {
      return absl::InvalidArgumentError("chunking needs a tokenizer");
    }
    const ChunkOptions c{options.chunk_tokens, options.chunk_overlap};
    RETURN_IF_ERROR(ValidateChunkOptions(c));
    InputOptions plain = options;
    plain.chunk_tokens = 0;
    return ReadRecords(path, plain,
                       ChunkingSink(*options.tokenizer, c, good, bad), bad);
  }
  ASSIGN_OR_RETURN(std::string format, ResolveFormat(path, options));
  if (format == "dir") return ReadDir(path, options, good, bad);
  InputOptions o = options;
  std::string file = path;
  if (format == "beir") {
    file = (fs::path(path) / "corpus.jsonl").string();
    o.id_field = "_id";
    format = "jsonl";
  }
  if (file == "-") return ReadJsonl(std::cin, "stdin", o, good, bad);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return fs::exists(file)
               ? absl::PermissionDeniedError(absl::StrCat("cannot read ", file))
               : absl::NotFoundError(absl::StrCat(file, " does not exist"));
  }
  if (format == "jsonl") return ReadJsonl(in, file, o, good, bad);
  return ReadCsv(in, file, format == "csv" ? ',' : '\t', o, good, bad);
}

std::string InputFingerprint(const std::string& path) {
  std::error_code ec;
  if (path == "-" || fs::is_directory(path, ec)) return "";
  return absl::StrCat(fs::file_size(path, ec), "|",
                      fs::last_write_time(path, ec).time_since_epoch().count());
}

std::string RecordChecker::Problem(index::Document& doc) {
  absl::Status valid = index::Collection::CheckFields(doc, 0, limits_);
  if (!valid.ok()) {
    std::string why(valid.message());
    if (absl::StartsWith(why, "documents[0].")) why = why.substr(13);
    return why;
  }
  // The server's rule (pipeline Upsert): a document needs text. Checked here
  // so offline and online loads refuse the same records.
  if (absl::StripAsciiWhitespace(doc.text).empty()) {
    return "text is empty (every document needs text)";
  }
  if (!seen_.insert(doc.id).second) {
    return absl::StrCat("duplicate id \"", doc.id,
                        "\" (an earlier record has it)");
  }
  return "";
}

int64_t InputBytes(const std::string& path, const InputOptions& options) {
  if (path == "-") return 0;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : static_cast<int64_t>(n);
  }
  if (fs::exists(fs::path(path) / "corpus.jsonl")) {
    const auto n = fs::file_size(fs::path(path) / "corpus.jsonl", ec);
    return ec ? 0 : static_cast<int64_t>(n);
  }
  int64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(
           path, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec))
      total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

}  // namespace diffrank::indexer
