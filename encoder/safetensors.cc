// safetensors.cc: parsing, validation and writing of safetensors files.
#include "encoder/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace diffrank::encoder {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100 << 20;

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kF64, "F64", 8}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},   {DType::kBool, "BOOL", 1},
};

absl::Status Malformed(const std::string& file, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": malformed safetensors file: ", what));
}

}  // namespace

absl::string_view DTypeName(DType dtype) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

size_t DTypeSize(DType dtype) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 0;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return Parse(std::move(ss).str(), path);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(
    std::string bytes, const std::string& name) {
  if (bytes.size() < 8) {
    return Malformed(name, absl::StrCat("truncated: ", bytes.size(),
                                        " bytes, the header length needs 8"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) {
    header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  }
  if (header_len > kMaxHeaderBytes || header_len > bytes.size() - 8) {
    return Malformed(
        name, absl::StrCat("header length ", header_len, " exceeds the file (",
                           bytes.size(), " bytes): truncated or corrupt"));
  }
  nlohmann::json header = nlohmann::json::parse(
      bytes.begin() + 8, bytes.begin() + 8 + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    return Malformed(name, "header is not a JSON object");
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = name;
  const size_t data_start = 8 + header_len;
  const size_t data_size = bytes.size() - data_start;
  std::vector<std::pair<size_t, size_t>> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) return Malformed(name, "__metadata__ is not a map");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          return Malformed(name, "__metadata__ values must be strings");
        }
        file->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](absl::string_view what) {
      return Malformed(name, absl::StrCat("tensor '", key, "': ", what));
    };
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets")) {
      return bad("needs dtype, shape and data_offsets");
    }
    TensorView t;
    t.name = key;
    const nlohmann::json& dt = v["dtype"];
    const DTypeInfo* info = nullptr;
    if (dt.is_string()) {
      for (const DTypeInfo& d : kDTypes) {
        if (dt.get<std::string>() == d.name) info = &d;
      }
    }
    if (info == nullptr)
      return bad(absl::StrCat("unsupported dtype ", dt.dump()));
    t.dtype = info->dtype;
    const nlohmann::json& shape = v["shape"];
    if (!shape.is_array()) return bad("shape is not an array");
    uint64_t numel = 1;
    for (const nlohmann::json& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0 ||
          d.get<int64_t>() > (int64_t{1} << 40)) {
        return bad("shape has an invalid dimension");
      }
      t.shape.push_back(d.get<int64_t>());
      numel *= static_cast<uint64_t>(t.shape.back());
      if (numel > (uint64_t{1} << 40)) return bad("shape is too large");
    }
    const nlohmann::json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned()) {
      return bad("data_offsets must be two non-negative integers");
    }
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return bad(absl::StrCat("data_offsets [", begin, ", ", end,
                              ") exceed the data section (", data_size,
                              " bytes): truncated or corrupt"));
    }
    if (end - begin != numel * info->size) {
      return bad(absl::StrCat("holds ", end - begin, " bytes but shape and ",
                              info->name, " need ", numel * info->size));
    }
    t.nbytes = end - begin;
    spans.emplace_back(begin, end);
    // Pointers are set after bytes_ is moved into place.
    t.data = reinterpret_cast<const char*>(begin);
    file->tensors_.emplace(key, std::move(t));
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) {
      return Malformed(name, "tensors overlap in the data section");
    }
  }
  file->bytes_ = std::move(bytes);
  for (auto& [key, t] : file->tensors_) {
    t.data =
        file->bytes_.data() + data_start + reinterpret_cast<uintptr_t>(t.data);
  }
  return file;
}

const TensorView* SafetensorsFile::Find(absl::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::Status WriteSafetensors(
    const std::string& path, const std::vector<TensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
    if (numel * DTypeSize(t.dtype) != t.bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", t.name, "': byte size does not match shape"));
    }
    header[t.name] = {{"dtype", std::string(DTypeName(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string json = header.dump();
  while ((json.size() + 8) % 8 != 0) json.push_back(' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    const uint64_t n = json.size();
    char len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    out.write(len, 8);
    out.write(json.data(), json.size());
    for (const TensorToWrite& t : tensors)
      out.write(t.bytes.data(), t.bytes.size());
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat("short write to ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace diffrank::encoder
