// fuzz_rest_body: the REST routes' request bodies (service/rest_json.h), as
// people write them by hand: rewritten into protobuf's JSON mapping or
// refused with a message, never a crash; a rewrite is valid JSON again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_util.h"
#include "nlohmann/json.hpp"
#include "service/rest_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  const std::optional<std::string> error =
      diffrank::service::RelaxRestBody(body);
  if (!error) {
    diffrank::fuzz::Expect(
        body.empty() ||
            !nlohmann::json::parse(body, nullptr, false).is_discarded(),
        "a relaxed body is valid JSON");
  } else {
    diffrank::fuzz::Expect(!error->empty(), "a refusal says why");
  }
  return 0;
}
