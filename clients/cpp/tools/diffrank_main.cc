// diffrank_main.cc: the `diffrank` command line, on the C++ client.
//
//   diffrank [--server HOST:PORT] [--json] [--timeout S] COMMAND ...
//   diffrank search COLLECTION QUERY [--top-k N] [--mode hybrid|dense|lexical]
//                   [--no-rerank] [--rerank-depth N] [--filter JSON] [--text]
//   diffrank get COLLECTION ID...          diffrank delete COLLECTION (ID... |
//   --filter JSON) diffrank upsert COLLECTION [FILE|-]    JSON lines
//   {"id","text","title","metadata"} diffrank embed [--query] TEXT... diffrank
//   rerank QUERY DOCUMENT... diffrank collections create NAME [--index F]
//   [--model ID] |
//   list | stats NAME | drop NAME diffrank health diffrank info
// Output: a table when stdout is a terminal, JSON (protobuf's JSON mapping)
// otherwise or with --json. The API key comes from DIFFRANK_API_KEY or the
// file named by DIFFRANK_API_KEY_FILE / --api-key-file, never from argv.
// Exit codes (stable): 0 ok; 2 usage; 3 UNAVAILABLE or DEADLINE_EXCEEDED
// (retry later); 4 NOT_FOUND; 5 UNAUTHENTICATED or PERMISSION_DENIED;
// 6 INVALID_ARGUMENT or another refusal of the request; 1 anything else.
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/cli_flags.h"
#include "diffrank/client.h"
#include "eval.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"

namespace {

namespace v1 = diffrank::v1;

int ExitCode(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return 0;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 3;
    case grpc::StatusCode::NOT_FOUND:
      return 4;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return 5;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 6;
    default:
      return 1;
  }
}

// Set once the key is read: whether the caller gave one at all.
bool g_have_key = false;

int Report(const grpc::Status& s) {
  std::cerr << "diffrank: " << s.error_message() << " (code "
            << static_cast<int>(s.error_code()) << ")\n";
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED && !g_have_key) {
    std::cerr << "diffrank: this server needs an API key: set DIFFRANK_API_KEY "
                 "(or DIFFRANK_API_KEY_FILE, or pass --api-key-file)\n";
  }
  return ExitCode(s);
}

void PrintJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  std::cout << out << "\n";
}

std::string Cut(std::string s, size_t n) {
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (s.size() <= n) return s;
  size_t k = n;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  return s.substr(0, k) + "...";
}

std::string ApiKey(const std::string& file) {
  if (const char* k = std::getenv("DIFFRANK_API_KEY")) return k;
  std::string path = file;
  if (path.empty()) {
    if (const char* f = std::getenv("DIFFRANK_API_KEY_FILE")) path = f;
  }
  if (path.empty()) return "";
  std::ifstream in(path);
  std::string key;
  if (!in || !std::getline(in, key)) {
    std::cerr << "diffrank: cannot read the API key file " << path << "\n";
    std::exit(2);
  }
  while (!key.empty() && (key.back() == '\r' || key.back() == ' '))
    key.pop_back();
  return key;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"diffrank: the command line of a diffrank server (gRPC)"};
  app.require_subcommand(1);
  std::string server = "127.0.0.1:50051", key_file, ca_file;
  bool json = false, tls = false;
  double timeout = 30;
  app.add_option("--server", server, "host:port (default 127.0.0.1:50051)")
      ->envname("DIFFRANK_SERVER");
  app.add_flag("--json", json, "JSON output even on a terminal");
  app.add_option("--timeout", timeout, "seconds per call (default 30)")
      ->check(CLI::PositiveNumber);
  app.add_option("--api-key-file", key_file,
                 "file with the API key (else DIFFRANK_API_KEY[_FILE])");
  app.add_flag("--tls", tls, "TLS to the server");
  app.add_option("--tls-ca", ca_file, "PEM CA bundle for --tls");

  std::string collection, query, filter, mode = "hybrid", index = "Flat";
  std::vector<std::string> items;
  int top_k = 10, depth = -1;
  bool no_rerank = false, text = false, as_query = false;
  auto* search = app.add_subcommand("search", "search a collection");
  search->add_option("collection", collection, "collection name")->required();
  search->add_option("query", query, "the question, in words")->required();
  search->add_option("--top-k", top_k, "hits to return (1..1000)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  search->add_option("--mode", mode, "hybrid | dense | lexical")
      ->capture_default_str()
      ->check(CLI::IsMember({"hybrid", "dense", "lexical"}));
  search->add_flag("--no-rerank", no_rerank,
                   "return the first-stage order (no cross-encoder)");
  search
      ->add_option("--rerank-depth", depth,
                   "hits to rerank (0..200; default: the server's)")
      ->check(CLI::Range(0, 200));
  search->add_option(
      "--filter", filter,
      "JSON metadata filter, e.g. '{\"field\":\"lang\",\"eq\":\"en\"}'");
  search->add_flag("--text", text, "include each hit's text");
  auto* get = app.add_subcommand("get", "documents by id");
  get->add_option("collection", collection, "collection name")->required();
  get->add_option("ids", items, "document ids")->required();
  auto* del = app.add_subcommand("delete", "documents by id or filter");
  del->add_option("collection", collection, "collection name")->required();
  del->add_option("ids", items, "document ids (or --filter)");
  del->add_option("--filter", filter,
                  "JSON metadata filter: delete every match (or ids)");
  std::string input = "-";
  auto* upsert = app.add_subcommand("upsert", "JSON lines from FILE or stdin");
  upsert->add_option("collection", collection, "collection name")->required();
  upsert->add_option("file", input, "JSON lines (default: stdin)");
  auto* embed = app.add_subcommand("embed", "embed texts");
  embed->add_flag("--query", as_query, "as queries (default: documents)");
  embed->add_option("texts", items, "texts to embed")->required();
  auto* rerank = app.add_subcommand("rerank", "score documents for a query");
  rerank->add_option("query", query, "the question")->required();
  rerank->add_option("documents", items, "passages to score")->required();
  auto* cols =
      app.add_subcommand("collections", "create | list | stats | drop");
  cols->require_subcommand(1);
  std::string name;
  auto* create = cols->add_subcommand("create", "create a collection");
  create->add_option("name", name, "collection name ([A-Za-z0-9_-], 1..64)")
      ->required();
  create->add_option("--index", index, "FAISS factory string (default Flat)");
  std::string create_model;
  create->add_option("--model", create_model,
                     "embedding model id (default: the server's newest; "
                     "`diffrank info` lists the loaded ones)");
  auto* list = cols->add_subcommand("list", "list collections");
  auto* stats = cols->add_subcommand("stats", "a collection's counters");
  stats->add_option("name", name, "collection name")->required();
  auto* drop = cols->add_subcommand("drop", "drop a collection");
  drop->add_option("name", name, "collection name")->required();
  auto* health = app.add_subcommand("health", "grpc.health.v1 status");
  auto* info = app.add_subcommand("info", "models, versions, limits");
  diffrank::cli::EvalOptions eval_options;
  auto* eval = app.add_subcommand(
      "eval", "index a BEIR folder through the API and print its metrics");
  eval->add_option("--beir", eval_options.beir_dir, "BEIR folder")->required();
  eval->add_option("--collection", eval_options.collection,
                   "collection to use (default: a scratch one)");
  eval->add_flag("--keep", eval_options.keep, "keep the collection");
  if (int rc = diffrank::cli::ParseFlags(app, argc, argv); rc >= 0) return rc;
  if (!ca_file.empty() && !tls) {
    std::cerr << "diffrank: --tls-ca needs --tls\n";
    return 2;
  }
  const bool table = !json && isatty(STDOUT_FILENO);
  diffrank::ClientOptions o;
  o.target = server;
  o.api_key = ApiKey(key_file);
  g_have_key = !o.api_key.empty();
  o.tls = tls;
  if (!ca_file.empty()) {
    std::ifstream in(ca_file);
    if (!in) {
      std::cerr << "diffrank: cannot read " << ca_file << "\n";
      return 2;
    }
    o.tls_root_certs_pem.assign(std::istreambuf_iterator<char>(in), {});
  }
  o.deadline = std::chrono::milliseconds(int64_t(timeout * 1000));
  diffrank::Client c(o);
  grpc::Status s;

  if (*search) {
    v1::SearchRequest r;
    r.set_collection(collection);
    r.set_query(query);
    r.set_top_k(top_k);
    r.set_mode(mode == "dense"     ? v1::SEARCH_MODE_DENSE
               : mode == "lexical" ? v1::SEARCH_MODE_LEXICAL
                                   : v1::SEARCH_MODE_HYBRID);
    if (no_rerank) r.set_rerank(false);
    if (depth >= 0) r.set_rerank_depth(depth);
    r.set_filter(filter);
    r.set_include_text(text);
    v1::SearchResponse resp;
    if (s = c.Search(r, &resp); !s.ok()) return Report(s);
    if (!table) {
      PrintJson(resp);
    } else {
      // Reranked hits carry the reranker's fused score, the others the
      // retrieval score: two scales, so each row says which it shows.
      std::printf("%-4s %-24s %9s %-9s %s\n", "#", "id", "score", "stage",
                  text ? "text" : "");
      for (int i = 0; i < resp.hits_size(); ++i) {
        const auto& h = resp.hits(i);
        const std::string stage = h.has_rerank_score() ? "reranked"
                                  : mode == "hybrid"   ? "fused"
                                                       : mode;
        std::printf("%-4d %-24s %9.4f %-9s %s\n", i + 1,
                    Cut(h.id(), 24).c_str(), h.score(), stage.c_str(),
                    text ? Cut(h.text(), 60).c_str() : "");
      }
      for (const std::string& w : resp.warnings()) {
        std::printf("warning: %s\n", w.c_str());
      }
    }
  } else if (*get) {
    v1::GetRequest r;
    r.set_collection(collection);
    for (const auto& id : items) r.add_ids(id);
    v1::GetResponse resp;
    if (s = c.Get(r, &resp); !s.ok()) return Report(s);
    if (!table) {
      PrintJson(resp);
    } else {
      for (const auto& d : resp.documents()) {
        std::printf("%-24s %s\n", Cut(d.id(), 24).c_str(),
                    Cut(d.text(), 70).c_str());
      }
    }
  } else if (*del) {
    if (items.empty() == filter.empty()) {
      std::cerr << "diffrank: delete takes ids or --filter (one of them)\n";
      return 2;
    }
    v1::DeleteRequest r;
    r.set_collection(collection);
    for (const auto& id : items) r.add_ids(id);
    r.set_filter(filter);
    v1::DeleteResponse resp;
    if (s = c.Delete(r, &resp); !s.ok()) return Report(s);
    table ? (void)std::printf("deleted %lld\n", (long long)resp.deleted())
          : PrintJson(resp);
  } else if (*upsert) {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (input != "-") {
      file.open(input);
      if (!file) {
        std::cerr << "diffrank: cannot read " << input << "\n";
        return 2;
      }
      in = &file;
    }
    std::vector<v1::Document> docs;
    std::string line;
    for (int n = 1; std::getline(*in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      v1::Document d;
      google::protobuf::util::JsonParseOptions po;
      if (auto st = google::protobuf::util::JsonStringToMessage(line, &d, po);
          !st.ok()) {
        std::cerr << "diffrank: " << input << ":" << n
                  << ": not a document ({\"id\", \"text\", \"title\", "
                     "\"metadata\"}): "
                  << st.message() << "\n";
        return 2;
      }
      docs.push_back(std::move(d));
    }
    v1::UpsertResponse resp;
    if (s = c.Upsert(collection, docs, &resp); !s.ok()) return Report(s);
    table ? (void)std::printf("upserted %lld in %d batches\n",
                              (long long)resp.upserted(), resp.batches())
          : PrintJson(resp);
  } else if (*embed) {
    v1::EmbedRequest r;
    for (const auto& t : items) r.add_texts(t);
    r.set_kind(as_query ? v1::EMBED_KIND_QUERY : v1::EMBED_KIND_DOCUMENT);
    v1::EmbedResponse resp;
    if (s = c.Embed(r, &resp); !s.ok()) return Report(s);
    if (!table) {
      PrintJson(resp);
    } else {
      for (int i = 0; i < resp.embeddings_size(); ++i) {
        const auto& e = resp.embeddings(i);
        std::printf("%d: %d dims, %d tokens%s [%.4f %.4f %.4f ...]\n", i,
                    e.values_size(), e.tokens(),
                    e.truncated() ? " (truncated)" : "", e.values(0),
                    e.values(1), e.values(2));
      }
    }
  } else if (*rerank) {
    v1::RerankRequest r;
    r.set_query(query);
    for (const auto& d : items) r.add_documents(d);
    v1::RerankResponse resp;
    if (s = c.Rerank(r, &resp); !s.ok()) return Report(s);
    if (!table) {
      PrintJson(resp);
    } else {
      for (const auto& x : resp.results()) {
        std::printf("%-4d %.4f  %s\n", x.index(), x.relevance_score(),
                    Cut(items[x.index()], 60).c_str());
      }
    }
  } else if (*create) {
    v1::CreateCollectionRequest r;
    r.set_name(name);
    r.set_index(index);
    r.set_model(create_model);
    v1::CollectionInfo resp;
    if (s = c.CreateCollection(r, &resp); !s.ok()) return Report(s);
    table ? (void)std::printf("created %s (%s, %s)\n", resp.name().c_str(),
                              resp.index().c_str(), resp.model().c_str())
          : PrintJson(resp);
  } else if (*list) {
    v1::ListCollectionsResponse resp;
    if (s = c.ListCollections(&resp); !s.ok()) return Report(s);
    if (!table) {
      PrintJson(resp);
    } else {
      std::printf("%-24s %10s  %s\n", "name", "documents", "index");
      for (const auto& x : resp.collections()) {
        std::printf("%-24s %10lld  %s\n", x.name().c_str(),
                    (long long)x.documents(), x.active_index().c_str());
      }
    }
  } else if (*stats) {
    v1::CollectionStatsResponse resp;
    if (s = c.CollectionStats(name, &resp); !s.ok()) return Report(s);
    table ? (void)std::printf(
                "%s: %lld documents, %lld vectors (%lld dead), %lld bytes\n",
                resp.info().name().c_str(), (long long)resp.info().documents(),
                (long long)resp.index_vectors(), (long long)resp.dead_vectors(),
                (long long)resp.disk_bytes())
          : PrintJson(resp);
  } else if (*drop) {
    if (s = c.DropCollection(name); !s.ok()) return Report(s);
    table ? (void)std::printf("dropped %s\n", name.c_str())
          : (void)(std::cout << "{}\n");
  } else if (*health) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + o.deadline);
    // grpc.health.v1.HealthCheckRequest{} serializes to no bytes (one empty
    // slice: a default ByteBuffer is not a valid message).
    grpc::Slice empty;
    grpc::ByteBuffer req_buf(&empty, 1), resp_buf;
    grpc::GenericStub generic(c.channel());
    grpc::Status hs;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                      &req_buf, &resp_buf, [&](grpc::Status st) {
                        std::lock_guard<std::mutex> l(mu);
                        hs = std::move(st);
                        done = true;
                        cv.notify_all();
                      });
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
    if (!hs.ok()) return Report(hs);
    std::vector<grpc::Slice> slices;
    (void)resp_buf.Dump(&slices);
    std::string bytes;
    for (const auto& sl : slices) {
      bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    // HealthCheckResponse{status = 1 (SERVING)} is the bytes 08 01.
    const bool serving =
        bytes.size() == 2 && bytes[0] == 0x08 && bytes[1] == 0x01;
    table ? (void)std::printf("%s\n", serving ? "SERVING" : "NOT_SERVING")
          : (void)std::printf("{\"status\": \"%s\"}\n",
                              serving ? "SERVING" : "NOT_SERVING");
    return serving ? 0 : 3;
  } else if (*eval) {
    return diffrank::cli::RunEval(c, eval_options, &Report);
  } else if (*info) {
    v1::InfoResponse resp;
    if (s = c.Info(&resp); !s.ok()) return Report(s);
    if (!table) {
      PrintJson(resp);
    } else {
      std::printf("diffrank %s (torch %s)\n", resp.version().c_str(),
                  resp.torch_version().c_str());
      // Every loaded embedder (the default first, "default" after it),
      // then the reranker.
      std::vector<const v1::ModelInfo*> models;
      for (const v1::ModelInfo& m : resp.embedders()) models.push_back(&m);
      if (models.empty()) models.push_back(&resp.embedder());
      models.push_back(&resp.reranker());
      for (const v1::ModelInfo* m : models) {
        const bool is_default =
            m->role() == "bi-encoder" && m->id() == resp.embedder().id();
        std::printf("  %-13s %s (%s, %s, max %d tokens)%s\n", m->role().c_str(),
                    m->id().c_str(), m->architecture().c_str(),
                    m->device().c_str(), m->max_length(),
                    is_default ? ", default" : "");
      }
    }
  }
  return 0;
}
