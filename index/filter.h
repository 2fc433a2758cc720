// filter.h: metadata filters and their translation to SQL.
//
// A Filter is a tree: leaves test one metadata field (equality, membership,
// numeric range), inner nodes combine children with AND / OR. A field that
// holds an array matches eq / in when any element matches. The JSON form
// (used by tests, tools and the API layer) is:
//   {"field": "lang", "eq": "en"}         {"field": "tag", "in": ["a", "b"]}
//   {"field": "year", "gte": 1990, "lt": 2000}
//   {"and": [F, ...]}                     {"or": [F, ...]}
// Field names are [A-Za-z0-9_] segments joined by '.', for nested objects.
// Limits (InvalidArgument naming them): 16 levels of nesting, 128
// conditions and and/or nodes, 1024 values per "in", 4096 values in all.
// Owns: parsing, validation and compilation to a parameterized SQL predicate
// over docs.metadata (values are always bound, never spliced into SQL).
// Thread-safety: plain values and pure functions.
#ifndef DIFFRANK_INDEX_FILTER_H_
#define DIFFRANK_INDEX_FILTER_H_

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace diffrank::index {

// FilterValue is a scalar metadata value.
using FilterValue = std::variant<std::string, double, bool>;

struct Filter {
  enum class Op { kAnd, kOr, kEq, kIn, kRange };
  Op op = Op::kAnd;
  std::string field;                       // leaves
  std::vector<FilterValue> values;         // kEq: one value, kIn: one or more
  std::optional<double> gt, gte, lt, lte;  // kRange: at least one bound
  std::vector<Filter> children;            // kAnd / kOr: at least one child
};

// ParseFilterJson parses the JSON form; InvalidArgument names the problem.
absl::StatusOr<Filter> ParseFilterJson(absl::string_view json);

// SqlPredicate is a WHERE fragment over a table aliased `d` and its params.
struct SqlPredicate {
  std::string sql;
  std::vector<FilterValue> params;
};

// CompileFilter validates `filter` and returns the SQL predicate.
// Semantics (also in proto/diffrank/v1/diffrank.proto, SearchRequest.filter):
//  - A condition on a field whose top-level key no document of the
//    collection has (`known_fields`) matches nothing, as in Qdrant and
//    Elasticsearch: a tenant filter on a new or emptied collection returns
//    no hits, not an error. The pipeline warns about such fields
//    (UnknownFilterFields) so a typo does not pass silently.
//  - eq / in compare numbers and their decimal strings alike: 8 matches the
//    metadata values 8, 8.0 and "8", and "8" matches 8 (metadata loaded
//    from CSV often holds numbers as strings). Booleans match booleans only.
//  - Ranges match numbers only.
absl::StatusOr<SqlPredicate> CompileFilter(
    const Filter& filter, const absl::flat_hash_set<std::string>& known_fields);

// UnknownFilterFields lists (once each, in order) the fields of `filter`
// whose top-level key is not in `known_fields`.
std::vector<std::string> UnknownFilterFields(
    const Filter& filter, const absl::flat_hash_set<std::string>& known_fields);

}  // namespace diffrank::index

#endif  // DIFFRANK_INDEX_FILTER_H_
