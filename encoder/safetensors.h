// safetensors.h: a small reader and writer of the safetensors format.
//
// Format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON mapping tensor names to {dtype, shape,
// data_offsets: [begin, end)} (offsets relative to the data section) plus an
// optional "__metadata__" string map, then the data section.
// Owns: parsing and validating that layout (truncated files, corrupt headers,
// out-of-range or overlapping offsets and size mismatches are InvalidArgument
// errors naming the file and tensor); writing it. Does not own: what the
// tensors mean (see model_loader.h).
// Thread-safety: a SafetensorsFile is immutable after Open.
#ifndef DIFFRANK_ENCODER_SAFETENSORS_H_
#define DIFFRANK_ENCODER_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace diffrank::encoder {

// DType lists the element types diffrank reads.
enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI8, kU8, kBool };

// DTypeName returns the safetensors spelling ("F32", ...).
absl::string_view DTypeName(DType dtype);
// DTypeSize returns the element size in bytes.
size_t DTypeSize(DType dtype);

// TensorView borrows one tensor's bytes from a SafetensorsFile.
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const char* data = nullptr;  // little-endian, row-major
  size_t nbytes = 0;
  int64_t numel() const;
};

// SafetensorsFile holds a whole file in memory and indexes its tensors.
class SafetensorsFile {
 public:
  // Open reads and validates `path`. NotFound if it cannot be opened;
  // InvalidArgument (naming the file and tensor) if it is malformed.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::string& path);
  // Parse validates an in-memory file; `name` is used in error messages.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(
      std::string bytes, const std::string& name);

  // Find returns the tensor called `name`, or nullptr.
  const TensorView* Find(absl::string_view name) const;
  const std::map<std::string, TensorView, std::less<>>& tensors() const {
    return tensors_;
  }
  const std::map<std::string, std::string>& metadata() const {
    return metadata_;
  }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::string bytes_;
  std::map<std::string, TensorView, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// TensorToWrite describes one tensor for WriteSafetensors.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  absl::string_view bytes;  // must hold numel * DTypeSize(dtype) bytes
};

// WriteSafetensors writes `tensors` to `path` (via a temporary file and a
// rename, so readers never see a half-written file).
absl::Status WriteSafetensors(
    const std::string& path, const std::vector<TensorToWrite>& tensors,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace diffrank::encoder

#endif  // DIFFRANK_ENCODER_SAFETENSORS_H_
