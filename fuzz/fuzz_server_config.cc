// fuzz_server_config: the server's JSON config and API keys file, as an
// operator writes them: refused naming the problem, never a crash.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "service/auth.h"
#include "service/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace diffrank;
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    auto keys = service::ApiKeys::Parse(rest);
    if (keys.ok()) {
      (void)keys->Authorize("Bearer " + rest.substr(0, 32),
                            service::Role::kRead);
    } else {
      fuzz::Expect(keys.status().code() == absl::StatusCode::kInvalidArgument,
                   "bad key files are InvalidArgument");
    }
  } else {
    service::ServerConfig c;
    absl::Status s = service::ParseConfigJson(rest, "config.json", c);
    if (s.ok()) s = service::Validate(c);
    fuzz::NotInternal(s, "config");
  }
  return 0;
}
