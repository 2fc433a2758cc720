// config.cc: JSON config loading (strict keys) and validation.
#include "service/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "pipeline/rerank_fusion.h"
#include "service/tls_pem.h"

namespace diffrank::service {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Setter = std::function<void(const json&)>;

// Applies each key of `obj` through `setters`; unknown keys are errors.
absl::Status Apply(const json& obj, const std::string& where,
                   const std::map<std::string, Setter>& setters) {
  if (!obj.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", where.empty() ? "the file" : where,
                     " must be a JSON object"));
  }
  for (const auto& [key, value] : obj.items()) {
    const std::string name = where.empty() ? key : where + "." + key;
    auto it = setters.find(key);
    if (it == setters.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: unknown setting \"", name, "\""));
    }
    try {
      it->second(value);
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("config: setting \"", name,
                                                     "\" has the wrong type (",
                                                     e.what(), ")"));
    }
  }
  return absl::OkStatus();
}

template <typename T>
Setter Set(T& field) {
  return [&field](const json& v) { field = v.get<T>(); };
}

absl::Status Positive(int64_t v, absl::string_view name) {
  if (v > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("config: ", name, " must be positive (got ", v, ")"));
}

absl::Status HostPort(const std::string& v, absl::string_view name) {
  const size_t colon = v.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(v.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", name,
                     " must be host:port (e.g. 127.0.0.1:50051 or "
                     "0.0.0.0:50051), got \"",
                     v, "\""));
  }
  return absl::OkStatus();
}

absl::Status Readable(const std::string& path, absl::string_view name) {
  if (path.empty() || access(path.c_str(), R_OK) == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("config: ", name, " \"", path, "\" is not a readable file"));
}

}  // namespace

std::string ReadConfigFile(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

absl::Status LoadConfigFile(const std::string& path, ServerConfig& c) {
  std::ifstream f(path);
  if (!f) {
    return absl::NotFoundError(
        absl::StrCat("config: cannot read --config file ", path));
  }
  std::stringstream text;
  text << f.rdbuf();
  return ParseConfigJson(text.str(), path, c);
}

absl::Status ParseConfigJson(absl::string_view text, const std::string& name,
                             ServerConfig& c) {
  json j = json::parse(text.begin(), text.end(), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", name, " is not valid JSON"));
  }
  auto nested = [](const std::string& where,
                   std::map<std::string, Setter> setters) -> Setter {
    return [where, setters](const json& v) {
      absl::Status s = Apply(v, where, setters);
      if (!s.ok()) throw std::runtime_error(std::string(s.message()));
    };
  };
  pipeline::Limits& l = c.limits;
  std::map<std::string, Setter> top = {
      {"data_dir", Set(c.data_dir)},
      {"listen", Set(c.listen)},
      {"metrics_listen", Set(c.metrics_listen)},
      {"http_listen", Set(c.http_listen)},
      {"api_keys_file", Set(c.api_keys_file)},
      {"metrics_require_key", Set(c.metrics_require_key)},
      {"embedder_model", Set(c.embedder_model)},
      {"reranker_model", Set(c.reranker_model)},
      {"models_dir", Set(c.models_dir)},
      {"device", Set(c.device)},
      {"precision", Set(c.precision)},
      {"reranker_precision", Set(c.reranker_precision)},
      {"packed_cpu_linears", Set(c.packed_cpu_linears)},
      {"threads", Set(c.threads)},
      {"sync_full", Set(c.sync_full)},
      {"tls", nested("tls", {{"cert_file", Set(c.tls.cert_file)},
                             {"key_file", Set(c.tls.key_file)},
                             {"client_ca_file", Set(c.tls.client_ca_file)}})},
      {"batching",
       nested("batching",
              {{"max_batch_rows", Set(c.batching.max_batch_rows)},
               {"max_batch_tokens", Set(c.batching.max_batch_tokens)},
               {"max_delay_ms", Set(c.batching.max_delay_ms)},
               {"max_queue_rows", Set(c.batching.max_queue_rows)}})},
      {"limits",
       nested("limits",
              {{"max_request_bytes", Set(l.max_request_bytes)},
               {"max_texts_per_request", Set(l.max_texts_per_request)},
               {"max_text_bytes", Set(l.max_text_bytes)},
               {"max_top_k", Set(l.max_top_k)},
               {"max_candidates", Set(l.max_candidates)},
               {"default_candidates", Set(l.default_candidates)},
               {"max_rerank_depth", Set(l.max_rerank_depth)},
               {"default_rerank_depth", Set(l.default_rerank_depth)},
               {"max_rerank_documents", Set(l.max_rerank_documents)},
               {"max_response_bytes", Set(l.max_response_bytes)},
               {"default_rerank_fusion_weight",
                Set(l.default_rerank_fusion_weight)}})},
      {"router",
       nested("router", {{"shards", Set(c.router.shards)},
                         {"shard_timeout_s", Set(c.router.shard_timeout_s)},
                         {"write_timeout_s", Set(c.router.write_timeout_s)},
                         {"shard_failure", Set(c.router.shard_failure)}})},
      {"server",
       nested("server",
              {{"workers", Set(c.server.workers)},
               {"max_pending", Set(c.server.max_pending)},
               {"max_concurrent_streams", Set(c.server.max_concurrent_streams)},
               {"drain_timeout_s", Set(c.server.drain_timeout_s)},
               {"reuse_port", Set(c.server.reuse_port)}})},
  };
  try {
    return Apply(j, "", top);
  } catch (const std::runtime_error& e) {
    return absl::InvalidArgumentError(e.what());
  }
}

absl::Status Validate(const ServerConfig& c) {
  if (c.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "config: data_dir is empty; set --data_dir to a writable directory");
  }
  if (auto s = HostPort(c.listen, "listen"); !s.ok()) return s;
  for (size_t i = 0; i < c.router.shards.size(); ++i) {
    if (auto s = HostPort(c.router.shards[i],
                          absl::StrCat("router.shards[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [v, name] :
       {std::pair{c.router.shard_timeout_s, "router.shard_timeout_s"},
        std::pair{c.router.write_timeout_s, "router.write_timeout_s"}}) {
    if (!(v > 0) || v > 3600) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: ", name, " must be in (0, 3600] seconds, got ", v));
    }
  }
  if (c.router.shard_failure != "fail" && c.router.shard_failure != "partial") {
    return absl::InvalidArgumentError(
        absl::StrCat("config: router.shard_failure must be fail or partial, "
                     "got \"",
                     c.router.shard_failure, "\""));
  }
  if (!c.metrics_listen.empty()) {
    if (auto s = HostPort(c.metrics_listen, "metrics_listen"); !s.ok())
      return s;
  }
  if (!c.http_listen.empty()) {
    if (auto s = HostPort(c.http_listen, "http_listen"); !s.ok()) return s;
  }
  if (c.device != "auto" && c.device != "cpu" && c.device != "cuda") {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: device must be auto, cpu or cuda, got \"", c.device, "\""));
  }
  for (const auto& [value, name] :
       {std::pair{c.precision, "precision"},
        std::pair{c.reranker_precision, "reranker_precision"}}) {
    if (value != "auto" && value != "float32" && value != "bfloat16" &&
        value != "int8") {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: ", name, " must be auto, float32, bfloat16 or int8, got \"",
          value, "\""));
    }
  }
  if (c.device == "cuda" &&
      (c.precision == "int8" || c.reranker_precision == "int8")) {
    return absl::InvalidArgumentError(
        "config: precision int8 is a CPU path; with device cuda use bfloat16 "
        "or float32");
  }
  for (const auto& [dir, name] :
       {std::pair{c.embedder_model, "embedder_model"},
        std::pair{c.reranker_model, "reranker_model"}}) {
    if (!fs::exists(fs::path(dir) / "config.json")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: ", name, " \"", dir,
          "\" is not a model directory (no config.json); point it at one "
          "(see models/)"));
    }
  }
  if (std::error_code ec;
      !c.models_dir.empty() && !fs::is_directory(c.models_dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: models_dir \"", c.models_dir, "\" is not a directory"));
  }
  if (auto s = Readable(c.api_keys_file, "api_keys_file"); !s.ok()) return s;
  if (c.metrics_require_key && c.api_keys_file.empty()) {
    return absl::InvalidArgumentError(
        "config: metrics_require_key needs api_keys_file (the keys it "
        "accepts)");
  }
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "config: tls.cert_file and tls.key_file must be set together");
  }
  if (!c.tls.client_ca_file.empty() && c.tls.cert_file.empty()) {
    return absl::InvalidArgumentError(
        "config: tls.client_ca_file (mutual TLS) needs tls.cert_file and "
        "tls.key_file");
  }
  for (const auto& [p, name] :
       {std::pair{c.tls.cert_file, "tls.cert_file"},
        std::pair{c.tls.key_file, "tls.key_file"},
        std::pair{c.tls.client_ca_file, "tls.client_ca_file"}}) {
    if (auto s = Readable(p, name); !s.ok()) return s;
  }
  // The contents too: gRPC and libmicrohttpd only say "cannot listen".
  if (!c.tls.cert_file.empty()) {
    if (absl::Status s = CheckPemKeyPair(ReadConfigFile(c.tls.cert_file),
                                         ReadConfigFile(c.tls.key_file));
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: tls.cert_file and tls.key_file: ", s.message()));
    }
  }
  if (!c.tls.client_ca_file.empty()) {
    if (absl::Status s = CheckPemCaBundle(ReadConfigFile(c.tls.client_ca_file));
        !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: tls.client_ca_file \"", c.tls.client_ca_file,
                       "\" ", s.message()));
    }
  }
  const pipeline::Limits& l = c.limits;
  for (const auto& [v, name] :
       std::initializer_list<std::pair<int64_t, const char*>>{
           {c.batching.max_batch_rows, "batching.max_batch_rows"},
           {c.batching.max_batch_tokens, "batching.max_batch_tokens"},
           {c.batching.max_queue_rows, "batching.max_queue_rows"},
           {c.server.max_pending, "server.max_pending"},
           {c.server.max_concurrent_streams, "server.max_concurrent_streams"},
           {l.max_request_bytes, "limits.max_request_bytes"},
           {l.max_texts_per_request, "limits.max_texts_per_request"},
           {l.max_text_bytes, "limits.max_text_bytes"},
           {l.max_top_k, "limits.max_top_k"},
           {l.max_candidates, "limits.max_candidates"},
           {l.max_rerank_documents, "limits.max_rerank_documents"},
           {l.max_response_bytes, "limits.max_response_bytes"}}) {
    if (auto s = Positive(v, name); !s.ok()) return s;
  }
  if (c.batching.max_delay_ms < 0 || c.server.drain_timeout_s < 0 ||
      c.threads < 0 || c.server.workers < 0) {
    return absl::InvalidArgumentError(
        "config: batching.max_delay_ms, server.drain_timeout_s, threads and "
        "server.workers must not be negative");
  }
  if (l.default_candidates < 1 || l.default_candidates > l.max_candidates) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: limits.default_candidates (", l.default_candidates,
        ") must be between 1 and limits.max_candidates (", l.max_candidates,
        ")"));
  }
  if (l.default_rerank_depth < 0 ||
      l.default_rerank_depth > l.max_rerank_depth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: limits.default_rerank_depth (", l.default_rerank_depth,
        ") must be between 0 and limits.max_rerank_depth (", l.max_rerank_depth,
        ")"));
  }
  if (absl::Status s = pipeline::ValidateFusionWeight(
          l.default_rerank_fusion_weight,
          "config: limits.default_rerank_fusion_weight");
      !s.ok()) {
    return s;
  }
  if (l.max_candidates < l.max_top_k) {
    return absl::InvalidArgumentError(
        "config: limits.max_candidates must be >= limits.max_top_k");
  }
  return absl::OkStatus();
}

std::string DefaultModelDir(const std::string& name) {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const fs::path& p :
       {exe / ".." / "models", exe / ".." / "share" / "diffrank" / "models",
        fs::path(DIFFRANK_SOURCE_MODELS_DIR)}) {
    if (fs::exists(p / name / "config.json")) {
      return fs::weakly_canonical(p / name, ec).string();
    }
  }
  return (fs::path(DIFFRANK_SOURCE_MODELS_DIR) / name).string();
}

absl::StatusOr<std::string> FindModelDir(const ServerConfig& config,
                                         const std::string& id) {
  bool plain = !id.empty() && id.size() <= 128 && id != "." && id != "..";
  for (char ch : id) {
    plain = plain && (absl::ascii_isalnum(static_cast<unsigned char>(ch)) ||
                      ch == '.' || ch == '_' || ch == '-');
  }
  if (!plain) {
    return absl::InvalidArgumentError(
        "is not a model id (1-128 characters of [A-Za-z0-9._-])");
  }
  std::vector<fs::path> places;
  if (!config.models_dir.empty()) {
    places.push_back(config.models_dir);
  } else {
    places.push_back(fs::path(config.embedder_model).parent_path());
    places.push_back(fs::path(DefaultModelDir(id)).parent_path());
  }
  std::error_code ec;
  for (const fs::path& p : places) {
    if (fs::exists(p / id / "config.json", ec)) return (p / id).string();
  }
  std::vector<std::string> where;
  for (const fs::path& p : places) where.push_back(p.string());
  return absl::NotFoundError(
      absl::StrCat("no model \"", id, "\" (looked for ", id, "/config.json in ",
                   absl::StrJoin(where, " and "), "; set models_dir)"));
}

}  // namespace diffrank::service
