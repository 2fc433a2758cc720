// fuzz_tls_pem: the TLS files an operator points the server at (certificate,
// key, client CA), as checked at start before gRPC and libmicrohttpd see
// them: accepted or refused as InvalidArgument, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "fuzz/fuzz_util.h"
#include "service/tls_pem.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  // Input: certificate \0 key \0 client CA (missing parts are empty).
  std::vector<std::string> parts = absl::StrSplit(
      absl::string_view(reinterpret_cast<const char*>(data), size),
      absl::MaxSplits('\0', 2));
  parts.resize(3);
  for (const absl::Status& s : {service::CheckPemKeyPair(parts[0], parts[1]),
                                service::CheckPemCaBundle(parts[2])}) {
    fuzz::Expect(s.ok() || s.code() == absl::StatusCode::kInvalidArgument,
                 "bad TLS material is InvalidArgument");
  }
  return 0;
}
