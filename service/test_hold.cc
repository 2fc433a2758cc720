// test_hold.cc: DIFFRANK_TEST_HOLD (see test_hold.h).
#include "service/test_hold.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "absl/time/clock.h"

namespace diffrank::service {
namespace {

struct Hold {
  std::string raw, method, path;  // raw: the variable as set
};

const Hold& Setting() {
  static const Hold* hold = [] {
    auto* h = new Hold;
    const char* v = std::getenv("DIFFRANK_TEST_HOLD");
    const std::string s = v == nullptr ? "" : v;
    h->raw = s;
    const size_t colon = s.find(':');
    if (colon != std::string::npos && colon > 0 && colon + 1 < s.size()) {
      h->method = s.substr(0, colon);
      h->path = s.substr(colon + 1);
    }
    return h;
  }();
  return *hold;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

}  // namespace

const std::string& TestHoldSetting() { return Setting().raw; }

absl::Status HoldIfAsked(absl::string_view method, const CallContext& call) {
  const Hold& h = Setting();
  if (h.method.empty() || method != h.method) return absl::OkStatus();
  std::ofstream(h.path + ".held").put('1');
  while (!Exists(h.path)) {
    if (absl::Status s = call.Check("work (held by DIFFRANK_TEST_HOLD)");
        !s.ok()) {
      return s;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

}  // namespace diffrank::service
