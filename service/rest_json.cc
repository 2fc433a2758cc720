// rest_json.cc: REST request relaxations and answer shaping (see header).
#include "service/rest_json.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace diffrank::service {
namespace {

using json = nlohmann::json;
namespace pb = google::protobuf;

// A JSON object or array given where the API takes JSON text.
void ObjectToText(json& j, const char* key) {
  auto it = j.find(key);
  if (it != j.end() && (it->is_object() || it->is_array())) {
    *it = it->dump();
  }
}

// Walks an answer with its message type: int64 strings become numbers and
// metadata text becomes an object.
void Shape(json& j, const pb::Descriptor* d) {
  if (!j.is_object()) return;
  for (auto& [key, value] : j.items()) {
    const pb::FieldDescriptor* f = d->FindFieldByName(key);
    if (f == nullptr) continue;
    auto fix = [&](json& x) {
      switch (f->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_INT64:
          if (x.is_string()) {
            x = std::strtoll(x.get<std::string>().c_str(), nullptr, 10);
          }
          break;
        case pb::FieldDescriptor::CPPTYPE_UINT64:
          if (x.is_string()) {
            x = std::strtoull(x.get<std::string>().c_str(), nullptr, 10);
          }
          break;
        case pb::FieldDescriptor::CPPTYPE_MESSAGE:
          Shape(x, f->message_type());
          break;
        case pb::FieldDescriptor::CPPTYPE_STRING:
          if (f->name() == "metadata" && x.is_string()) {
            json m = json::parse(x.get<std::string>(), nullptr, false);
            if (m.is_object()) x = std::move(m);
          }
          break;
        default:
          break;
      }
    };
    if (f->is_repeated() && value.is_array()) {
      for (json& x : value) fix(x);
    } else {
      fix(value);
    }
  }
}

std::optional<std::string> RelaxObject(json& j) {
  if (!j.is_object()) return std::nullopt;  // the protobuf parser says why
  ObjectToText(j, "filter");
  if (auto m = j.find("mode"); m != j.end() && m->is_string()) {
    const std::string given = m->get<std::string>();
    const std::string s = absl::AsciiStrToLower(given);
    if (s == "hybrid" || s == "dense" || s == "lexical") {
      *m = "SEARCH_MODE_" + absl::AsciiStrToUpper(s);
    } else if (!absl::StartsWith(given, "SEARCH_MODE_")) {
      return absl::StrCat(
          "mode must be \"hybrid\", \"dense\" or \"lexical\" (got \"", given,
          "\")");
    }
  }
  if (auto docs = j.find("documents"); docs != j.end() && docs->is_array()) {
    for (json& d : *docs) {
      if (d.is_object()) ObjectToText(d, "metadata");
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> RelaxRestBody(std::string& body) {
  if (body.empty()) return std::nullopt;
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return "the body is not valid JSON";
  if (j.is_array()) {  // Upsert: several messages of one stream
    for (json& m : j) {
      if (auto e = RelaxObject(m)) return e;
    }
  } else if (auto e = RelaxObject(j)) {
    return e;
  }
  body = j.dump();
  return std::nullopt;
}

std::string RestJson(const pb::Message& m) {
  std::string out;
  pb::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)pb::util::MessageToJsonString(m, &out, o);
  json j = json::parse(out, nullptr, false);
  if (j.is_discarded()) return out + "\n";
  Shape(j, m.GetDescriptor());
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace diffrank::service
