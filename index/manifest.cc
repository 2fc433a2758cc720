// manifest.cc: manifest I/O and the durable-file helpers.
#include "index/manifest.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace diffrank::index {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  const int fd =
      ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return Errno("open", path);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync", path);
  return absl::OkStatus();
}

}  // namespace

absl::Status SyncFileAndRename(const std::string& tmp,
                               const std::string& path) {
  if (absl::Status st = FsyncPath(tmp, false); !st.ok()) return st;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename", tmp);
  return FsyncPath(std::filesystem::path(path).parent_path().string(), true);
}

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Errno("create", tmp);
    out.write(bytes.data(), bytes.size());
    out.flush();
    if (!out) return Errno("write", tmp);
  }
  return SyncFileAndRename(tmp, path);
}

absl::StatusOr<uint32_t> FileCrc32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), buf.size());
    const std::streamsize n = in.gcount();
    if (n > 0) crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), n);
  }
  return static_cast<uint32_t>(crc);
}

absl::StatusOr<Manifest> ReadManifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no collection at ", dir));
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, " is not valid JSON"));
  }
  Manifest m;
  try {
    m.format_version = j.at("format_version").get<int>();
    m.model_id = j.at("model_id").get<std::string>();
    m.dimension = j.at("dimension").get<int>();
    m.metric = j.at("metric").get<std::string>();
    m.factory = j.at("factory").get<std::string>();
    m.documents = j.value("documents", int64_t{0});
    const auto& s = j.at("snapshot");
    m.snapshot_file = s.at("file").get<std::string>();
    m.snapshot_factory = s.value("factory", m.factory);
    m.snapshot_vectors = s.at("vectors").get<int64_t>();
    m.snapshot_epoch = s.at("epoch").get<int64_t>();
    m.snapshot_crc32 = s.at("crc32").get<uint32_t>();
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what()));
  }
  if (m.format_version != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": format_version ", m.format_version, " is not supported (1)"));
  }
  return m;
}

absl::Status WriteManifest(const std::string& dir, const Manifest& m) {
  nlohmann::json j = {{"format_version", m.format_version},
                      {"model_id", m.model_id},
                      {"dimension", m.dimension},
                      {"metric", m.metric},
                      {"factory", m.factory},
                      {"documents", m.documents},
                      {"snapshot",
                       {{"file", m.snapshot_file},
                        {"factory", m.snapshot_factory},
                        {"vectors", m.snapshot_vectors},
                        {"epoch", m.snapshot_epoch},
                        {"crc32", m.snapshot_crc32}}}};
  return WriteFileAtomically(dir + "/manifest.json", j.dump(2) + "\n");
}

}  // namespace diffrank::index
