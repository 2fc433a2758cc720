// rest_json.h: the JSON shapes of the REST routes (/v1/collections/...),
// which people write by hand, next to protobuf's JSON mapping (the
// /diffrank.v1.Diffrank/{Method} route keeps that mapping exactly).
//
// Requests: `filter` and document `metadata` may be JSON objects (a string
// holding JSON still works), and `mode` may be "hybrid" | "dense" |
// "lexical" (as the CLI takes it) besides the enum names.
// Answers: int64 fields as JSON numbers (protobuf prints them as strings),
// fields left at their defaults omitted, and `metadata` as a JSON object.
// Thread-safety: pure functions.
#ifndef DIFFRANK_SERVICE_REST_JSON_H_
#define DIFFRANK_SERVICE_REST_JSON_H_

#include <optional>
#include <string>

#include "google/protobuf/message.h"

namespace diffrank::service {

// RelaxRestBody rewrites a REST request body into protobuf's JSON mapping
// (in place). Returns an error message for a body that is not JSON at all;
// anything else is left to the protobuf parser, which names the field.
std::optional<std::string> RelaxRestBody(std::string& body);

// RestJson prints an answer in the REST shape (see above), newline-ended.
std::string RestJson(const google::protobuf::Message& m);

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_REST_JSON_H_
