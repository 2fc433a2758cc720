// reembed.cc: reading a live collection (server or data directory) for
// diffrank-index --reembed.
#include "indexer/reembed.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "diffrank/v1/diffrank.grpc.pb.h"
#include "index/collection.h"
#include "index/manifest.h"
#include "nlohmann/json.hpp"
#include "pipeline/data_dir_lock.h"

namespace diffrank::indexer {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::diffrank::v1;
using json = nlohmann::json;

constexpr int kPage = 256;

absl::Status FromGrpc(const grpc::Status& s, const std::string& what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

std::unique_ptr<v1::Diffrank::Stub> Stub(const ReembedSource& s) {
  return v1::Diffrank::NewStub(grpc::CreateChannel(
      s.server,
      s.credentials ? s.credentials : grpc::InsecureChannelCredentials()));
}

void Prepare(grpc::ClientContext& c, const ReembedSource& s) {
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
  if (!s.api_key.empty()) {
    c.AddMetadata("authorization", absl::StrCat("Bearer ", s.api_key));
  }
}

// A collection of a data directory no server holds, opened with the model
// and dimension its manifest records (read only here).
struct Local {
  std::unique_ptr<pipeline::DataDirLock> lock;
  std::unique_ptr<index::Collection> collection;
};

absl::StatusOr<Local> OpenLocal(const ReembedSource& s) {
  Local l;
  absl::StatusOr<std::unique_ptr<pipeline::DataDirLock>> lock =
      pipeline::DataDirLock::Acquire(s.data_dir);
  if (!lock.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(lock.status().message(),
                     " (a server holds it: pass --server HOST:PORT)"));
  }
  l.lock = *std::move(lock);
  index::CollectionOptions o;
  o.dir = (fs::path(s.data_dir) / s.collection).string();
  absl::StatusOr<index::Manifest> m = index::ReadManifest(o.dir);
  if (!m.ok()) {
    return absl::NotFoundError(absl::StrCat("collection \"", s.collection,
                                            "\" is not in ", s.data_dir, " (",
                                            m.status().message(), ")"));
  }
  o.model_id = m->model_id;
  o.dimension = m->dimension;
  ASSIGN_OR_RETURN(l.collection, index::Collection::Open(o));
  return l;
}

std::string Line(const std::string& id, const std::string& title,
                 const std::string& text, const std::string& metadata) {
  json j = {{"id", id}, {"title", title}, {"text", text}};
  json m = json::parse(metadata.empty() ? "{}" : metadata, nullptr, false);
  j["metadata"] = m.is_discarded() ? json::object() : m;
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

absl::StatusOr<LiveState> ReadLiveState(const ReembedSource& source) {
  LiveState st;
  if (!source.server.empty()) {
    auto stub = Stub(source);
    grpc::ClientContext c;
    Prepare(c, source);
    v1::CollectionStatsRequest r;
    r.set_name(source.collection);
    v1::CollectionStatsResponse p;
    if (grpc::Status s = stub->CollectionStats(&c, r, &p); !s.ok()) {
      return FromGrpc(s, absl::StrCat("collection \"", source.collection,
                                      "\" on ", source.server));
    }
    st.model = p.info().model();
    st.factory = p.info().index();
    st.documents = p.info().documents();
    st.index_vectors = p.index_vectors();
    st.dead_vectors = p.dead_vectors();
    return st;
  }
  ASSIGN_OR_RETURN(Local l, OpenLocal(source));
  const index::CollectionStats s = l.collection->Stats();
  st.model = l.collection->model_id();
  st.factory = s.factory;
  st.documents = s.documents;
  st.index_vectors = s.index_vectors;
  st.dead_vectors = s.dead_vectors;
  return st;
}

absl::StatusOr<std::string> ExportCollection(
    const ReembedSource& source, const std::string& staging_dir,
    const std::function<void(int64_t)>& on_documents) {
  std::error_code ec;
  fs::create_directories(staging_dir, ec);
  const std::string path =
      (fs::path(staging_dir) /
       absl::StrCat(".reembed-", source.collection, ".jsonl"))
          .string();
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::trunc);
  if (!out) {
    return absl::FailedPreconditionError(absl::StrCat("cannot write ", tmp));
  }
  int64_t n = 0;
  std::string after;
  if (!source.server.empty()) {
    auto stub = Stub(source);
    while (true) {
      grpc::ClientContext c;
      Prepare(c, source);
      v1::GetRequest r;
      r.set_collection(source.collection);
      r.set_cursor(after);
      r.set_limit(kPage);
      v1::GetResponse p;
      if (grpc::Status s = stub->Get(&c, r, &p); !s.ok()) {
        return FromGrpc(
            s, absl::StrCat("reading collection \"", source.collection, "\""));
      }
      for (const v1::Document& d : p.documents()) {
        out << Line(d.id(), d.title(), d.text(), d.metadata());
      }
      n += p.documents_size();
      if (on_documents) on_documents(n);
      if (p.next_cursor().empty()) break;
      after = p.next_cursor();
    }
  } else {
    ASSIGN_OR_RETURN(Local l, OpenLocal(source));
    while (true) {
      ASSIGN_OR_RETURN(std::vector<index::Document> page,
                       l.collection->List(after, kPage, {}));
      for (const index::Document& d : page) {
        out << Line(d.id, d.title, d.text, d.metadata);
      }
      n += static_cast<int64_t>(page.size());
      if (on_documents) on_documents(n);
      if (static_cast<int>(page.size()) < kPage) break;
      after = page.back().id;
    }
  }
  out.close();
  if (!out) {
    return absl::DataLossError(
        absl::StrCat("cannot write ", tmp, " (is the disk full?)"));
  }
  // The same export as last time keeps the old file (its fingerprint, and
  // so the offline build's checkpoint: an interrupted build resumes).
  auto same = [&] {
    if (fs::file_size(tmp, ec) != fs::file_size(path, ec) || ec) return false;
    std::ifstream a(tmp, std::ios::binary), b(path, std::ios::binary);
    return std::equal(std::istreambuf_iterator<char>(a), {},
                      std::istreambuf_iterator<char>(b));
  };
  if (fs::exists(path, ec) && same()) {
    fs::remove(tmp, ec);
  } else {
    fs::rename(tmp, path, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot move ", tmp, " to ", path, ": ", ec.message()));
    }
  }
  return path;
}

}  // namespace diffrank::indexer
