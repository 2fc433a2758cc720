// call_context.h: what one caller's request carries through every layer
// below the transport: its deadline and a cancellation flag.
//
// The transport (gRPC) fills it; the pipeline and the batcher check it before
// expensive steps so that expired or cancelled work is dropped, not computed.
// Thread-safety: the flag is atomic; the deadline is set once before use.
#ifndef DIFFRANK_COMMON_CALL_CONTEXT_H_
#define DIFFRANK_COMMON_CALL_CONTEXT_H_

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace diffrank {

struct CallContext {
  absl::Time deadline = absl::InfiniteFuture();
  std::atomic<bool> cancelled{false};
  // Optional: asks the transport whether the caller went away.
  std::function<bool()> is_cancelled;
  // The caller's `authorization` header ("" = none): a router forwards it
  // to the shard servers, which check the key's role themselves.
  std::string authorization;

  // Check returns DeadlineExceeded / Cancelled (naming `stage`) or OK. The
  // deadline comes first: gRPC also reports a call past its deadline as
  // cancelled, and the caller (and /metrics) must see DEADLINE_EXCEEDED.
  absl::Status Check(absl::string_view stage) const {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("deadline passed before ", stage));
    }
    if (cancelled.load(std::memory_order_relaxed) ||
        (is_cancelled && is_cancelled())) {
      return absl::CancelledError(absl::StrCat("cancelled before ", stage));
    }
    return absl::OkStatus();
  }
};

}  // namespace diffrank

#endif  // DIFFRANK_COMMON_CALL_CONTEXT_H_
