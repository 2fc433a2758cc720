// factory.cc: the accepted FAISS factory grammar (see factory.h).
#include "index/factory.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace diffrank::index {
namespace {

constexpr char kForms[] =
    "accepted forms: Flat; HNSW<M>[,Flat|,SQ<q>|,PQ<m>]; SQ<q>; "
    "[OPQ<m>,]IVF<n>[_HNSW<M>],(Flat|SQ<q>|PQ<m>[x<b>]) with M in [4, 256], "
    "q in {4, 6, 8, fp16}, n in [1, 65536], b in [4, 12] and m dividing the "
    "dimension";
// SQ trains one range per dimension: a few thousand vectors are plenty.
constexpr int64_t kSqTraining = 1000;
// FAISS's own guidance: at least 39 training points per centroid.
constexpr int64_t kPerCentroid = 39;

absl::Status Bad(absl::string_view factory, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "index \"", factory, "\" is not supported: ", why, " (", kForms, ")"));
}

// Number parses the decimal digits after `prefix` in `part` (all of them,
// nothing else) into [lo, hi].
bool Number(absl::string_view digits, int64_t lo, int64_t hi, int64_t* out) {
  if (digits.empty() || digits.size() > 9) return false;
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  int64_t v = 0;
  if (!absl::SimpleAtoi(digits, &v) || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Parses "HNSW<M>" exactly.
bool Hnsw(absl::string_view part) {
  int64_t m = 0;
  return absl::ConsumePrefix(&part, "HNSW") && Number(part, 4, 256, &m);
}

// Parses "SQ<q>"; sets the training need.
bool Sq(absl::string_view part, int64_t* need) {
  if (!absl::ConsumePrefix(&part, "SQ")) return false;
  if (part == "fp16") {  // a cast; FAISS still wants train() under HNSW
    *need = std::max<int64_t>(*need, 1);
    return true;
  }
  if (part == "4" || part == "6" || part == "8") {
    *need = std::max(*need, kSqTraining);
    return true;
  }
  return false;
}

// Parses "PQ<m>" (and "PQ<m>x<b>" when allow_bits); m divides `dimension`.
absl::Status Pq(absl::string_view factory, absl::string_view part,
                int dimension, bool allow_bits, int64_t* need) {
  if (!absl::ConsumePrefix(&part, "PQ")) return Bad(factory, "expected PQ<m>");
  int64_t bits = 8;
  std::vector<absl::string_view> mb = absl::StrSplit(part, 'x');
  if (mb.size() > 2 || (mb.size() == 2 && !allow_bits)) {
    return Bad(factory, absl::StrCat("PQ", part, ": bad sub-quantizer"));
  }
  int64_t m = 0;
  if (!Number(mb[0], 1, dimension, &m) || dimension % m != 0) {
    return Bad(factory,
               absl::StrCat("PQ", part, ": m must be in [1, ", dimension,
                            "] and divide the dimension ", dimension));
  }
  if (mb.size() == 2 && !Number(mb[1], 4, 12, &bits)) {
    return Bad(factory,
               absl::StrCat("PQ", part, ": bits per code must be 4 .. 12"));
  }
  *need = std::max(*need, kPerCentroid << bits);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<FactorySpec> ParseFactory(absl::string_view factory,
                                         int dimension) {
  if (dimension <= 0) {
    return absl::InvalidArgumentError("dimension must be > 0");
  }
  if (factory.empty() || factory.size() > 64) {
    return Bad(factory, "must be 1 to 64 characters");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(factory, ',');
  FactorySpec spec{std::string(factory), 0};
  int64_t& need = spec.min_training_vectors;
  size_t i = 0;
  bool opq = false;
  if (absl::StartsWith(parts[0], "OPQ")) {
    int64_t m = 0;
    absl::string_view digits = parts[0].substr(3);
    if (!Number(digits, 1, dimension, &m) || dimension % m != 0) {
      return Bad(factory,
                 absl::StrCat(parts[0], ": m must be in [1, ", dimension,
                              "] and divide the dimension ", dimension));
    }
    need = std::max(need, kPerCentroid << 8);
    opq = true;
    ++i;
  }
  const size_t rest = parts.size() - i;
  absl::string_view head = i < parts.size() ? parts[i] : absl::string_view();
  if (absl::StartsWith(head, "IVF")) {
    if (rest != 2)
      return Bad(factory, "IVF needs exactly one encoding after it");
    std::vector<absl::string_view> q = absl::StrSplit(head.substr(3), '_');
    int64_t nlist = 0;
    if (q.size() > 2 || !Number(q[0], 1, 65536, &nlist)) {
      return Bad(factory, absl::StrCat(head, ": lists must be in [1, 65536]"));
    }
    if (q.size() == 2 && !Hnsw(q[1])) {
      return Bad(factory,
                 absl::StrCat(head, ": the coarse quantizer may be HNSW<M>"));
    }
    need = std::max(need, kPerCentroid * nlist);
    absl::string_view enc = parts[i + 1];
    if (absl::StartsWith(enc, "PQ")) {
      if (absl::Status s = Pq(factory, enc, dimension, true, &need); !s.ok())
        return s;
    } else if (opq) {
      return Bad(factory, "OPQ must be followed by a PQ encoding");
    } else if (enc != "Flat" && !Sq(enc, &need)) {
      return Bad(factory, absl::StrCat("unknown IVF encoding ", enc));
    }
    return spec;
  }
  if (opq) return Bad(factory, "OPQ is only accepted before IVF<n>,PQ<m>");
  if (head == "Flat" && rest == 1) return spec;
  if (Sq(head, &need) && rest == 1) return spec;
  if (Hnsw(head)) {
    if (rest == 1) return spec;
    absl::string_view enc = parts[i + 1];
    if (rest == 2 && (enc == "Flat" || Sq(enc, &need))) return spec;
    if (rest == 2 && absl::StartsWith(enc, "PQ")) {
      if (absl::Status s = Pq(factory, enc, dimension, false, &need); !s.ok())
        return s;
      return spec;
    }
    return Bad(factory, "HNSW<M> may be followed by one of Flat, SQ<q>, PQ<m>");
  }
  if (absl::StartsWith(head, "HNSW")) {
    return Bad(factory, absl::StrCat(head, ": M must be in [4, 256]"));
  }
  return Bad(factory, absl::StrCat("unknown part \"", head, "\""));
}

}  // namespace diffrank::index
