// fuzz_model_files: model.safetensors bytes and config.json text, as an ML
// engineer's model directory (or a corrupted download) presents them.
#include <cstddef>
#include <cstdint>

#include "encoder/model_config.h"
#include "encoder/safetensors.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    auto f = encoder::SafetensorsFile::Parse(rest, "model.safetensors");
    if (f.ok()) {
      for (const auto& [name, t] : (*f)->tensors()) (void)(*f)->Find(name);
    } else {
      fuzz::NotInternal(f.status(), "safetensors");
    }
  } else {
    auto c = encoder::ParseModelConfig(rest, "config.json");
    if (c.ok()) {
      auto again = encoder::ParseModelConfig(encoder::ModelConfigToJson(*c),
                                             "config.json");
      fuzz::Expect(again.ok(), "a parsed config serializes back");
    } else {
      fuzz::NotInternal(c.status(), "config.json");
    }
  }
  return 0;
}
