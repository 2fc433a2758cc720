// http_api.cc: HttpApi (see http_api.h): JSON shapes <-> diffrank.v1 calls.
#include "service/http_api.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "service/rest_json.h"

namespace diffrank::service {
namespace {

using json = nlohmann::json;
namespace pbu = google::protobuf::util;

// The gRPC code's name ("INVALID_ARGUMENT"), as the metrics label it.
std::string CodeName(grpc::StatusCode c) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(c));
}

HttpResponse Json(int status, const json& j) {
  return {status, "application/json",
          j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"};
}

HttpResponse Error(grpc::StatusCode code, const std::string& message) {
  const int status = HttpStatusOf(code);
  const char* type = status == 401   ? "authentication_error"
                     : status == 403 ? "permission_error"
                     : status == 429 ? "rate_limit_error"
                     : status < 500  ? "invalid_request_error"
                                     : "server_error";
  return Json(
      status,
      {{"error",
        {{"code", CodeName(code)}, {"message", message}, {"type", type}}}});
}

HttpResponse BadRequest(const std::string& message) {
  return Error(grpc::StatusCode::INVALID_ARGUMENT, message);
}

HttpResponse FromStatus(const grpc::Status& s) {
  return Error(s.error_code(), s.error_message());
}

// Rewrites "<from>j]" in a message to "<to>(offset + j)]": an error about
// one Embed call's texts[j] names the caller's input[offset + j].
std::string RemapIndex(std::string msg, absl::string_view from,
                       absl::string_view to, int offset) {
  const size_t at = msg.find(std::string(from));
  if (at == std::string::npos) return msg;
  const size_t end = msg.find(']', at);
  int j = 0;
  if (end == std::string::npos ||
      !absl::SimpleAtoi(msg.substr(at + from.size(), end - at - from.size()),
                        &j)) {
    return msg;
  }
  return absl::StrCat(msg.substr(0, at), to, offset + j, msg.substr(end));
}

// Parses the body as a JSON object (`out`), or says why not.
std::optional<HttpResponse> ParseObject(const std::string& body, json& out) {
  out = json::parse(body.empty() ? std::string("{}") : body, nullptr, false);
  if (out.is_discarded()) return BadRequest("the body is not valid JSON");
  if (!out.is_object()) return BadRequest("the body must be a JSON object");
  return std::nullopt;
}

// Texts from a string or an array of strings at `field`.
std::optional<HttpResponse> Texts(const json& j, const char* field,
                                  std::vector<std::string>& out) {
  auto it = j.find(field);
  if (it == j.end()) return BadRequest(absl::StrCat(field, " is required"));
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
    return std::nullopt;
  }
  if (!it->is_array()) {
    return BadRequest(
        absl::StrCat(field, " must be a string or an array of strings"));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& v = (*it)[i];
    if (!v.is_string()) {
      return BadRequest(
          absl::StrCat(field, "[", i, "] must be a string",
                       v.is_number() || v.is_array()
                           ? " (token ids are not accepted: send text)"
                           : ""));
    }
    out.push_back(v.get<std::string>());
  }
  return std::nullopt;
}

template <typename T>
std::optional<HttpResponse> Optional(const json& j, const char* field, T& out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    return BadRequest(absl::StrCat(field, " has the wrong type"));
  }
  return std::nullopt;
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  pbu::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  (void)pbu::MessageToJsonString(m, &out, o);
  return out + "\n";
}

// Fills `m` from protobuf JSON text, or says what is wrong with it.
std::optional<HttpResponse> FromJson(const std::string& body,
                                     google::protobuf::Message& m) {
  const auto s = pbu::JsonStringToMessage(body.empty() ? "{}" : body, &m);
  if (!s.ok()) {
    return BadRequest(absl::StrCat("the body is not a valid ",
                                   m.GetDescriptor()->name(), ": ",
                                   std::string(s.message())));
  }
  return std::nullopt;
}

}  // namespace

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 400;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

HttpApi::HttpApi(std::shared_ptr<grpc::Channel> channel, int max_texts)
    : stub_(v1::Diffrank::NewStub(std::move(channel))),
      max_texts_(std::max(1, max_texts)) {}

HttpResponse HttpApi::Handle(const HttpRequest& req) const {
  // The caller's key and deadline travel with every call.
  std::optional<std::chrono::system_clock::time_point> deadline;
  if (auto it = req.headers.find("x-timeout-ms"); it != req.headers.end()) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(it->second, &ms) || ms <= 0) {
      return BadRequest(
          "X-Timeout-Ms must be a positive integer (milliseconds)");
    }
    deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
  }
  auto prepare = [&](grpc::ClientContext& c) {
    if (req.authorization) c.AddMetadata("authorization", *req.authorization);
    if (deadline) c.set_deadline(*deadline);
  };
  const std::string& path = req.path;
  const bool post = req.method == "POST";
  auto only_post = [&]() -> std::optional<HttpResponse> {
    if (post) return std::nullopt;
    HttpResponse r = Error(grpc::StatusCode::UNIMPLEMENTED,
                           absl::StrCat(path, " takes POST"));
    r.status = 405;
    return r;
  };

  // Embeddings in chunks of max_texts_ texts (the gRPC limit per call).
  // `model` in: the model to use ("" = the default); out: the one used.
  auto embed = [&](const std::vector<std::string>& texts, v1::EmbedKind kind,
                   bool truncate, const char* field,
                   std::vector<v1::Embedding>& out, std::string& model,
                   int& dimension) -> std::optional<HttpResponse> {
    const std::string wanted = model;
    for (size_t off = 0; off < std::max<size_t>(texts.size(), 1);
         off += max_texts_) {
      v1::EmbedRequest r;
      for (size_t i = off; i < std::min(texts.size(), off + max_texts_); ++i) {
        r.add_texts(texts[i]);
      }
      r.set_kind(kind);
      r.set_truncate(truncate);
      r.set_model(wanted);
      v1::EmbedResponse resp;
      grpc::ClientContext c;
      prepare(c);
      grpc::Status s = stub_->Embed(&c, r, &resp);
      if (!s.ok()) {
        return Error(s.error_code(),
                     RemapIndex(s.error_message(), "texts[",
                                absl::StrCat(field, "["), int(off)));
      }
      model = resp.model();
      dimension = resp.dimension();
      for (auto& e : *resp.mutable_embeddings()) out.push_back(std::move(e));
    }
    return std::nullopt;
  };

  // OpenAI's model list (the SDK's models.list(), which several frameworks
  // call first): this server's embedder and reranker, from Info.
  if (path == "/v1/models" || absl::StartsWith(path, "/v1/models/")) {
    if (req.method != "GET") {
      HttpResponse r = Error(grpc::StatusCode::UNIMPLEMENTED,
                             absl::StrCat(path, " takes GET"));
      r.status = 405;
      return r;
    }
    v1::InfoResponse info;
    grpc::ClientContext c;
    prepare(c);
    grpc::Status s = stub_->Info(&c, v1::InfoRequest(), &info);
    if (!s.ok()) return FromStatus(s);
    json data = json::array();
    std::vector<const v1::ModelInfo*> models;
    for (const v1::ModelInfo& m : info.embedders()) models.push_back(&m);
    if (models.empty()) models.push_back(&info.embedder());
    models.push_back(&info.reranker());
    for (const v1::ModelInfo* m : models) {
      if (m->id().empty()) continue;
      data.push_back({{"id", m->id()},
                      {"object", "model"},
                      {"created", 0},
                      {"owned_by", "diffrank"},
                      {"role", m->role()}});
    }
    if (path == "/v1/models") {
      return Json(200, {{"object", "list"}, {"data", std::move(data)}});
    }
    const std::string id(path.substr(strlen("/v1/models/")));
    for (const json& m : data) {
      if (m["id"] == id) return Json(200, m);
    }
    return Error(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat("no model \"", id, "\" on this server"));
  }

  if (path == "/v1/embeddings") {
    if (auto r = only_post()) return *r;
    json j;
    if (auto r = ParseObject(req.body, j)) return *r;
    std::vector<std::string> texts;
    if (auto r = Texts(j, "input", texts)) return *r;
    std::string format = "float", input_type = "document", asked;
    int dimensions = 0;
    if (auto r = Optional(j, "model", asked)) return *r;
    if (auto r = Optional(j, "encoding_format", format)) return *r;
    if (auto r = Optional(j, "input_type", input_type)) return *r;
    if (auto r = Optional(j, "dimensions", dimensions)) return *r;
    if (format != "float" && format != "base64") {
      return BadRequest("encoding_format must be float or base64");
    }
    if (input_type != "document" && input_type != "query") {
      return BadRequest("input_type must be document or query");
    }
    // OpenAI SDKs send a model on every call ("text-embedding-3-small" in
    // many existing clients): a model this server has loaded is used, any
    // other name gets the default embedder; "model" in the answer says
    // which one embedded.
    std::string model;
    if (!asked.empty()) {
      v1::InfoResponse info;
      grpc::ClientContext c;
      prepare(c);
      if (grpc::Status s = stub_->Info(&c, v1::InfoRequest(), &info); !s.ok()) {
        return FromStatus(s);
      }
      for (const v1::ModelInfo& m : info.embedders()) {
        if (m.id() == asked) model = asked;
      }
    }
    std::vector<v1::Embedding> out;
    int dim = 0;
    if (auto r = embed(texts,
                       input_type == "query" ? v1::EMBED_KIND_QUERY
                                             : v1::EMBED_KIND_DOCUMENT,
                       true, "input", out, model, dim)) {
      return *r;
    }
    if (dimensions != 0 && dimensions != dim) {
      return BadRequest(absl::StrCat("dimensions: this model has ", dim,
                                     " (got ", dimensions, ")"));
    }
    json data = json::array();
    int64_t tokens = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      tokens += out[i].tokens();
      json e = {{"object", "embedding"}, {"index", i}};
      if (format == "base64") {
        const auto& v = out[i].values();
        e["embedding"] = absl::Base64Escape(absl::string_view(
            reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
      } else {
        e["embedding"] =
            std::vector<float>(out[i].values().begin(), out[i].values().end());
      }
      data.push_back(std::move(e));
    }
    return Json(200, {{"object", "list"},
                      {"data", std::move(data)},
                      {"model", model},
                      {"usage",
                       {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  }

  if (path == "/embed" || path == "/") {
    if (auto r = only_post()) return *r;
    json j;
    if (auto r = ParseObject(req.body, j)) return *r;
    std::vector<std::string> texts;
    if (auto r = Texts(j, "inputs", texts)) return *r;
    bool truncate = false, normalize = true;
    if (auto r = Optional(j, "truncate", truncate)) return *r;
    if (auto r = Optional(j, "normalize", normalize)) return *r;
    if (!normalize) {
      return BadRequest("normalize: this model's embeddings are unit length");
    }
    std::vector<v1::Embedding> out;
    std::string model;
    int dim = 0;
    if (auto r = embed(texts, v1::EMBED_KIND_DOCUMENT, truncate, "inputs", out,
                       model, dim)) {
      return *r;
    }
    json rows = json::array();
    for (const auto& e : out) {
      rows.push_back(std::vector<float>(e.values().begin(), e.values().end()));
    }
    return Json(200, rows);
  }

  const bool tei_rerank = path == "/rerank";
  if (tei_rerank || path == "/v1/rerank" || path == "/v2/rerank") {
    if (auto r = only_post()) return *r;
    json j;
    if (auto r = ParseObject(req.body, j)) return *r;
    v1::RerankRequest r;
    std::string query;
    if (auto e = Optional(j, "query", query)) return *e;
    r.set_query(query);
    const char* field = tei_rerank ? "texts" : "documents";
    auto docs = j.find(field);
    if (docs == j.end() || !docs->is_array()) {
      return BadRequest(absl::StrCat(field, " must be an array"));
    }
    for (size_t i = 0; i < docs->size(); ++i) {
      const json& d = (*docs)[i];
      if (d.is_string()) {
        r.add_documents(d.get<std::string>());
      } else if (!tei_rerank && d.is_object() && d.contains("text") &&
                 d["text"].is_string()) {
        r.add_documents(d["text"].get<std::string>());  // Cohere v1 objects
      } else {
        return BadRequest(
            absl::StrCat(field, "[", i, "] must be a string",
                         tei_rerank ? "" : " or {\"text\": ...}"));
      }
    }
    int top_n = 0;
    bool return_docs = false, raw = false;
    if (auto e = Optional(j, "top_n", top_n)) return *e;
    if (top_n < 0) return BadRequest("top_n must be >= 0");
    if (auto e = Optional(j, tei_rerank ? "return_text" : "return_documents",
                          return_docs)) {
      return *e;
    }
    if (auto e = Optional(j, "raw_scores", raw)) return *e;
    // Cohere v2's per-document token cap (Haystack sends 4096): checked; the
    // cross-encoder cuts each pair to its own window (model card) anyway.
    int max_tokens_per_doc = 1;
    if (auto e = Optional(j, "max_tokens_per_doc", max_tokens_per_doc)) {
      return *e;
    }
    if (max_tokens_per_doc < 1) {
      return BadRequest("max_tokens_per_doc must be >= 1");
    }
    r.set_top_n(top_n);
    v1::RerankResponse resp;
    grpc::ClientContext c;
    prepare(c);
    grpc::Status s = stub_->Rerank(&c, r, &resp);
    if (!s.ok()) return FromStatus(s);
    json results = json::array();
    for (const auto& x : resp.results()) {
      const std::string& text = r.documents(x.index());
      if (tei_rerank) {
        json o = {{"index", x.index()},
                  {"score", raw ? x.logit() : x.relevance_score()}};
        if (return_docs) o["text"] = text;
        results.push_back(std::move(o));
      } else {
        json o = {{"index", x.index()},
                  {"relevance_score", x.relevance_score()}};
        if (return_docs) o["document"] = {{"text", text}};
        results.push_back(std::move(o));
      }
    }
    if (tei_rerank) return Json(200, results);
    static std::atomic<uint64_t> counter{0};
    return Json(
        200,
        {{"id", absl::StrCat("rerank-", ++counter)},
         {"results", std::move(results)},
         {"meta",
          {{"api_version", {{"version", path == "/v2/rerank" ? "2" : "1"}}},
           {"billed_units", {{"search_units", 1}}}}}});
  }

  // protobuf JSON for one RPC: parse `Req`, call, print `Resp`.
  using Unary = std::function<HttpResponse(const std::string& body,
                                           const std::string& name)>;
  // rest: a /v1/collections route (rest_json.h shapes), else protobuf's
  // JSON mapping exactly.
  auto unary = [&](auto method, auto req_proto, auto resp_proto, auto set_name,
                   bool rest = false) -> Unary {
    return [&, method, req_proto, resp_proto, set_name, rest](
               const std::string& raw, const std::string& name) mutable {
      std::string body = raw;
      if (rest) {
        if (auto e = RelaxRestBody(body)) return BadRequest(*e);
      }
      if (auto e = FromJson(body, req_proto)) return *e;
      if (!name.empty()) {
        if (auto e = set_name(req_proto, name)) return *e;
      }
      grpc::ClientContext c;
      prepare(c);
      grpc::Status s = (stub_.get()->*method)(&c, req_proto, &resp_proto);
      if (!s.ok()) return FromStatus(s);
      return HttpResponse{200, "application/json",
                          rest ? RestJson(resp_proto) : ToJson(resp_proto)};
    };
  };
  // Sets the collection from the path; a different one in the body is
  // refused (which collection was meant is ambiguous).
  auto collection = [](auto& m,
                       const std::string& name) -> std::optional<HttpResponse> {
    if (!m.collection().empty() && m.collection() != name) {
      return BadRequest(absl::StrCat("collection \"", m.collection(),
                                     "\" in the body differs from \"", name,
                                     "\" in the path"));
    }
    m.set_collection(name);
    return std::nullopt;
  };
  auto named = [](auto& m,
                  const std::string& name) -> std::optional<HttpResponse> {
    if (!m.name().empty() && m.name() != name) {
      return BadRequest(absl::StrCat("name \"", m.name(),
                                     "\" in the body differs from \"", name,
                                     "\" in the path"));
    }
    m.set_name(name);
    return std::nullopt;
  };
  auto none = [](auto&, const std::string&) -> std::optional<HttpResponse> {
    return std::nullopt;
  };
  using S = v1::Diffrank::Stub;
  auto upsert = [&](std::string body, const std::string& name,
                    bool rest) -> HttpResponse {
    if (rest) {
      if (auto e = RelaxRestBody(body)) return BadRequest(*e);
    }
    json j =
        json::parse(body.empty() ? std::string("{}") : body, nullptr, false);
    if (j.is_discarded()) return BadRequest("the body is not valid JSON");
    std::vector<json> parts;
    if (j.is_array()) {
      parts.assign(j.begin(), j.end());
    } else {
      parts.push_back(j);
    }
    std::vector<v1::UpsertRequest> msgs(parts.size());
    for (size_t i = 0; i < parts.size(); ++i) {
      if (auto e = FromJson(parts[i].dump(), msgs[i])) return *e;
      if (!name.empty()) {
        if (auto e = collection(msgs[i], name)) return *e;
      }
    }
    v1::UpsertResponse resp;
    grpc::ClientContext c;
    prepare(c);
    auto writer = stub_->Upsert(&c, &resp);
    for (const auto& m : msgs) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (!s.ok()) return FromStatus(s);
    return HttpResponse{200, "application/json",
                        rest ? RestJson(resp) : ToJson(resp)};
  };

  // /diffrank.v1.Diffrank/{Method}: the gRPC API's JSON mapping.
  constexpr absl::string_view kRpc = "/diffrank.v1.Diffrank/";
  if (absl::StartsWith(path, kRpc)) {
    if (auto r = only_post()) return *r;
    const std::string m(path.substr(kRpc.size()));
    const std::map<std::string, Unary> rpcs = {
        {"Search",
         unary(&S::Search, v1::SearchRequest(), v1::SearchResponse(), none)},
        {"Rerank",
         unary(&S::Rerank, v1::RerankRequest(), v1::RerankResponse(), none)},
        {"Embed",
         unary(&S::Embed, v1::EmbedRequest(), v1::EmbedResponse(), none)},
        {"Delete",
         unary(&S::Delete, v1::DeleteRequest(), v1::DeleteResponse(), none)},
        {"Get", unary(&S::Get, v1::GetRequest(), v1::GetResponse(), none)},
        {"CreateCollection",
         unary(&S::CreateCollection, v1::CreateCollectionRequest(),
               v1::CollectionInfo(), none)},
        {"ListCollections",
         unary(&S::ListCollections, v1::ListCollectionsRequest(),
               v1::ListCollectionsResponse(), none)},
        {"DropCollection",
         unary(&S::DropCollection, v1::DropCollectionRequest(),
               v1::DropCollectionResponse(), none)},
        {"CollectionStats",
         unary(&S::CollectionStats, v1::CollectionStatsRequest(),
               v1::CollectionStatsResponse(), none)},
        {"PublishCollection",
         unary(&S::PublishCollection, v1::PublishCollectionRequest(),
               v1::CollectionInfo(), none)},
        {"Info", unary(&S::Info, v1::InfoRequest(), v1::InfoResponse(), none)},
    };
    if (m == "Upsert") return upsert(req.body, "", /*rest=*/false);
    auto it = rpcs.find(m);
    if (it == rpcs.end()) {
      return Error(grpc::StatusCode::NOT_FOUND,
                   absl::StrCat("no RPC diffrank.v1.Diffrank/", m));
    }
    return it->second(req.body, "");
  }

  // /v1/collections[/{name}[/{op}]]
  constexpr absl::string_view kCollections = "/v1/collections";
  if (path == kCollections || absl::StartsWith(path, "/v1/collections/")) {
    std::vector<std::string> parts =
        absl::StrSplit(absl::string_view(path).substr(kCollections.size()), '/',
                       absl::SkipEmpty());
    if (parts.empty()) {
      if (req.method == "GET") {
        return unary(&S::ListCollections, v1::ListCollectionsRequest(),
                     v1::ListCollectionsResponse(), none, true)("{}", "");
      }
      if (post) {
        return unary(&S::CreateCollection, v1::CreateCollectionRequest(),
                     v1::CollectionInfo(), none, true)(req.body, "");
      }
    } else if (parts.size() == 1) {
      if (req.method == "GET") {
        return unary(&S::CollectionStats, v1::CollectionStatsRequest(),
                     v1::CollectionStatsResponse(), named,
                     true)("{}", parts[0]);
      }
      if (req.method == "DELETE") {
        return unary(&S::DropCollection, v1::DropCollectionRequest(),
                     v1::DropCollectionResponse(), named, true)("{}", parts[0]);
      }
    } else if (parts.size() == 2 && post) {
      const std::string& name = parts[0];
      const std::string& op = parts[1];
      if (op == "search") {
        return unary(&S::Search, v1::SearchRequest(), v1::SearchResponse(),
                     collection, true)(req.body, name);
      }
      if (op == "upsert") return upsert(req.body, name, /*rest=*/true);
      if (op == "delete") {
        return unary(&S::Delete, v1::DeleteRequest(), v1::DeleteResponse(),
                     collection, true)(req.body, name);
      }
      if (op == "get") {
        return unary(&S::Get, v1::GetRequest(), v1::GetResponse(), collection,
                     true)(req.body, name);
      }
      if (op == "publish") {
        return unary(&S::PublishCollection, v1::PublishCollectionRequest(),
                     v1::CollectionInfo(), named, true)(req.body, name);
      }
    }
    return Error(grpc::StatusCode::NOT_FOUND,
                 absl::StrCat(req.method, " ", path, " is not a route"));
  }
  return Error(grpc::StatusCode::NOT_FOUND,
               absl::StrCat(req.method, " ", path, " is not a route"));
}

}  // namespace diffrank::service
