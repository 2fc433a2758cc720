// filter.cc: filter JSON parsing and SQL compilation.
#include "index/filter.h"

#include <cctype>
#include <charconv>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace diffrank::index {
namespace {

using json = nlohmann::json;
constexpr int kMaxDepth = 16;
constexpr size_t kMaxInValues = 1024;
// Bounds on the whole tree, so the SQL stays far inside SQLite's limits
// (expression depth 1000, 32766 bound values): every condition adds at most
// ~6 levels of expression depth along its path and 9 + values parameters.
constexpr int kMaxConditions = 128;
constexpr size_t kMaxTotalValues = 4096;

struct Budget {
  int conditions = 0;
  size_t values = 0;
};

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("filter: ", what));
}

absl::StatusOr<FilterValue> ScalarValue(const json& v, absl::string_view key) {
  if (v.is_string()) return FilterValue(v.get<std::string>());
  if (v.is_boolean()) return FilterValue(v.get<bool>());
  if (v.is_number()) {
    const double d = v.get<double>();
    if (!std::isfinite(d))
      return Bad(absl::StrCat("\"", key, "\" must be finite"));
    return FilterValue(d);
  }
  return Bad(absl::StrCat("\"", key, "\" must be a string, number or boolean"));
}

absl::StatusOr<Filter> Parse(const json& j, int depth, Budget& budget) {
  if (depth > kMaxDepth) return Bad("nested deeper than 16 levels");
  if (!j.is_object()) return Bad("each filter must be a JSON object");
  if (++budget.conditions > kMaxConditions) {
    return Bad(absl::StrCat("more than ", kMaxConditions,
                            " conditions and and/or nodes in one filter "
                            "(use \"in\" for lists of values)"));
  }
  Filter f;
  if (j.contains("and") || j.contains("or")) {
    const bool is_and = j.contains("and");
    if (j.size() != 1)
      return Bad("\"and\" / \"or\" must be the only key of its object");
    const json& list = j[is_and ? "and" : "or"];
    if (!list.is_array() || list.empty()) {
      return Bad(absl::StrCat("\"", is_and ? "and" : "or",
                              "\" needs a non-empty list"));
    }
    f.op = is_and ? Filter::Op::kAnd : Filter::Op::kOr;
    for (const json& c : list) {
      ASSIGN_OR_RETURN(Filter child, Parse(c, depth + 1, budget));
      f.children.push_back(std::move(child));
    }
    return f;
  }
  if (!j.contains("field") || !j["field"].is_string()) {
    return Bad("a condition needs \"field\" (a string)");
  }
  f.field = j["field"].get<std::string>();
  int kinds = 0;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "field") continue;
    if (k == "eq") {
      f.op = Filter::Op::kEq;
      ++kinds;
      ASSIGN_OR_RETURN(FilterValue v, ScalarValue(it.value(), k));
      f.values.push_back(std::move(v));
    } else if (k == "in") {
      f.op = Filter::Op::kIn;
      ++kinds;
      if (!it.value().is_array() || it.value().empty() ||
          it.value().size() > kMaxInValues) {
        return Bad("\"in\" needs a list of 1 to 1024 values");
      }
      budget.values += it.value().size();
      if (budget.values > kMaxTotalValues) {
        return Bad(absl::StrCat("more than ", kMaxTotalValues,
                                " values in one filter's \"in\" lists"));
      }
      for (const json& v : it.value()) {
        ASSIGN_OR_RETURN(FilterValue fv, ScalarValue(v, k));
        f.values.push_back(std::move(fv));
      }
    } else if (k == "gt" || k == "gte" || k == "lt" || k == "lte") {
      if (!it.value().is_number() || !std::isfinite(it.value().get<double>())) {
        return Bad(absl::StrCat("\"", k, "\" needs a finite number"));
      }
      const double v = it.value().get<double>();
      (k == "gt" ? f.gt : k == "gte" ? f.gte : k == "lt" ? f.lt : f.lte) = v;
    } else {
      return Bad(
          absl::StrCat("unknown operator \"", k,
                       "\" (expected eq, in, gt, gte, lt, lte, and, or)"));
    }
  }
  const bool range = f.gt || f.gte || f.lt || f.lte;
  if (range) {
    if (kinds)
      return Bad("a condition is either eq, in or a range, not several");
    f.op = Filter::Op::kRange;
  } else if (kinds != 1) {
    return Bad(absl::StrCat("condition on \"", f.field, "\" has no operator"));
  }
  return f;
}

bool ValidFieldName(absl::string_view field) {
  if (field.empty() || field.size() > 256) return false;
  for (absl::string_view seg : absl::StrSplit(field, '.')) {
    if (seg.empty()) return false;
    for (char c : seg) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
        return false;
    }
  }
  return true;
}

absl::Status Compile(const Filter& f,
                     const absl::flat_hash_set<std::string>& known,
                     SqlPredicate& out, int depth, Budget& budget) {
  // Trees built in code (not parsed) get the same bounds.
  if (depth > kMaxDepth) return Bad("nested deeper than 16 levels");
  budget.values += f.values.size();
  if (++budget.conditions > kMaxConditions || budget.values > kMaxTotalValues) {
    return Bad(absl::StrCat("more than ", kMaxConditions, " conditions or ",
                            kMaxTotalValues, " values in one filter"));
  }
  if (f.op == Filter::Op::kAnd || f.op == Filter::Op::kOr) {
    if (f.children.empty()) return Bad("\"and\" / \"or\" needs children");
    out.sql += "(";
    for (size_t i = 0; i < f.children.size(); ++i) {
      if (i) out.sql += f.op == Filter::Op::kAnd ? " AND " : " OR ";
      RETURN_IF_ERROR(Compile(f.children[i], known, out, depth + 1, budget));
    }
    out.sql += ")";
    return absl::OkStatus();
  }
  if (!ValidFieldName(f.field)) {
    return Bad(
        absl::StrCat("invalid field name \"", f.field,
                     "\" (use letters, digits and _, dots for nesting)"));
  }
  const std::string top(f.field.substr(0, f.field.find('.')));
  if (!known.contains(top)) {
    out.sql += "0";  // no document has the field: the condition is false
    return absl::OkStatus();
  }
  const std::string path = absl::StrCat("$.", f.field);
  if (f.op == Filter::Op::kRange) {
    out.sql += "(json_type(d.metadata, ?) IN ('integer', 'real')";
    out.params.push_back(path);
    for (auto [bound, op] :
         {std::pair{f.gt, ">"}, {f.gte, ">="}, {f.lt, "<"}, {f.lte, "<="}}) {
      if (!bound) continue;
      absl::StrAppend(&out.sql, " AND json_extract(d.metadata, ?) ", op, " ?");
      out.params.push_back(path);
      out.params.push_back(*bound);
    }
    out.sql += ")";
    return absl::OkStatus();
  }
  if (f.values.empty()) return Bad("eq / in needs a value");
  // json_each over a scalar yields the scalar; over an array, its elements.
  // Numbers and decimal strings match each other (see filter.h).
  std::vector<FilterValue> values;
  for (const FilterValue& v : f.values) {
    values.push_back(v);
    if (const double* d = std::get_if<double>(&v)) {
      if (std::trunc(*d) == *d && std::fabs(*d) < 1e15) {
        values.push_back(absl::StrCat(static_cast<int64_t>(*d)));
      } else {
        char buf[64];  // the shortest text that reads back as *d
        auto r = std::to_chars(buf, buf + sizeof(buf), *d);
        values.push_back(std::string(buf, r.ptr));
      }
    } else if (const std::string* s = std::get_if<std::string>(&v)) {
      double d = 0;
      if (!s->empty() && absl::SimpleAtod(*s, &d) && std::isfinite(d) &&
          !std::isspace(static_cast<unsigned char>(s->front())) &&
          !std::isspace(static_cast<unsigned char>(s->back()))) {
        values.push_back(d);
      }
    }
  }
  budget.values += values.size() - f.values.size();
  if (budget.values > kMaxTotalValues) {
    return Bad(absl::StrCat("more than ", kMaxTotalValues,
                            " values in one filter (numbers count twice: "
                            "they also match their decimal strings)"));
  }
  out.sql +=
      "EXISTS (SELECT 1 FROM json_each(d.metadata, ?) AS e WHERE e.value IN (";
  out.params.push_back(path);
  for (size_t i = 0; i < values.size(); ++i) {
    out.sql += i ? ", ?" : "?";
    out.params.push_back(values[i]);
  }
  out.sql += "))";
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Filter> ParseFilterJson(absl::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return Bad("not valid JSON");
  Budget budget;
  return Parse(j, 0, budget);
}

absl::StatusOr<SqlPredicate> CompileFilter(
    const Filter& filter, const absl::flat_hash_set<std::string>& known) {
  SqlPredicate out;
  Budget budget;
  RETURN_IF_ERROR(Compile(filter, known, out, 0, budget));
  return out;
}

std::vector<std::string> UnknownFilterFields(
    const Filter& filter, const absl::flat_hash_set<std::string>& known) {
  std::vector<std::string> out;
  absl::flat_hash_set<std::string> seen;
  std::vector<const Filter*> stack = {&filter};
  while (!stack.empty()) {
    const Filter* f = stack.back();
    stack.pop_back();
    if (f->op == Filter::Op::kAnd || f->op == Filter::Op::kOr) {
      for (auto it = f->children.rbegin(); it != f->children.rend(); ++it) {
        stack.push_back(&*it);
      }
      continue;
    }
    const std::string top(f->field.substr(0, f->field.find('.')));
    if (!known.contains(top) && seen.insert(f->field).second) {
      out.push_back(f->field);
    }
  }
  return out;
}

}  // namespace diffrank::index
