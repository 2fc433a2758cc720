// test_hold.h: a test hook that holds unary calls at the start of their work,
// so end-to-end tests can keep a call in flight for exactly as long as they
// need (drain on SIGTERM, cancellation) whatever the machine's speed.
//
// DIFFRANK_TEST_HOLD=METHOD:PATH, read once: a METHOD call (e.g. "Rerank")
// that reaches a worker creates PATH.held, then waits until PATH exists, or
// the call is cancelled or past its deadline (then it ends as such). Unset,
// as in production, it costs one comparison per call. Test-only: the
// server logs a warning at start when it is set.
// Thread-safety: Hold may be called from any number of workers.
#ifndef DIFFRANK_SERVICE_TEST_HOLD_H_
#define DIFFRANK_SERVICE_TEST_HOLD_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/call_context.h"

namespace diffrank::service {

// TestHoldSetting: the DIFFRANK_TEST_HOLD value ("" when unset).
const std::string& TestHoldSetting();
// HoldIfAsked: blocks a `method` call as described above; OK unless the
// call was cancelled or its deadline passed while held.
absl::Status HoldIfAsked(absl::string_view method, const CallContext& call);

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_TEST_HOLD_H_
