// status_macros.h: RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status code.
// Header-only; the bottom of the dependency graph (no other diffrank code).
#ifndef DIFFRANK_COMMON_STATUS_MACROS_H_
#define DIFFRANK_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DIFFRANK_CONCAT_INNER(a, b) a##b
#define DIFFRANK_CONCAT(a, b) DIFFRANK_CONCAT_INNER(a, b)

// RETURN_IF_ERROR(expr) returns the status of `expr` when it is not OK.
#define RETURN_IF_ERROR(expr)                                     \
  do {                                                            \
    if (absl::Status _diffrank_st = (expr); !_diffrank_st.ok()) { \
      return _diffrank_st;                                        \
    }                                                             \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr) assigns the value of a StatusOr or returns its
// error. `lhs` may declare a variable: ASSIGN_OR_RETURN(auto x, Foo());
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(DIFFRANK_CONCAT(_diffrank_so_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(so, lhs, expr) \
  auto so = (expr);                          \
  if (!so.ok()) return so.status();          \
  lhs = std::move(so).value()

#endif  // DIFFRANK_COMMON_STATUS_MACROS_H_
