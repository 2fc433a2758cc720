// collections.cc: loading, creating and dropping collections by name.
#include "pipeline/collections.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "index/manifest.h"

namespace diffrank::pipeline {

namespace fs = std::filesystem;

absl::Status Collections::ValidateName(absl::string_view name,
                                       absl::string_view field) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  bool ok = name.size() <= 64 && name[0] != '-' && name[0] != '_';
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        field,
        " must be 1-64 characters of [A-Za-z0-9_-], not starting with "
        "'-' or '_'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Collections>> Collections::Open(
    CollectionsOptions options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("data_dir is required");
  }
  if (!options.lock) {
    ASSIGN_OR_RETURN(options.lock, DataDirLock::Acquire(options.data_dir));
  }
  std::unique_ptr<Collections> c(new Collections(std::move(options)));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(c->options_.data_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || !ValidateName(name, "name").ok()) continue;
    if (!fs::exists(e.path() / "manifest.json")) continue;
    // Each collection opens with the model that built it. One whose model
    // this process cannot load refuses the start: the operator pointed the
    // server at the wrong models, and serving it would be wrong.
    const absl::StatusOr<index::Manifest> m =
        index::ReadManifest(e.path().string());
    absl::StatusOr<index::CollectionOptions> opts =
        c->OptionsFor(name, m.ok() ? m->model_id : "");
    if (!opts.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "collection \"", name, "\" was built by model \"", m->model_id,
          "\", which this server cannot load (", opts.status().message(),
          "): add that model to the models directory (server.models_dir) or "
          "re-embed the collection (diffrank-index --reembed)"));
    }
    const index::CollectionOptions& o = *opts;
    if (m.ok() && m->dimension != o.dimension) {
      return absl::FailedPreconditionError(absl::StrCat(
          "collection \"", name, "\" holds vectors of dimension ", m->dimension,
          " but model \"", o.model_id, "\" has dimension ", o.dimension,
          ": the model directory does not hold the model that "
          "built it"));
    }
    absl::StatusOr<std::unique_ptr<index::Collection>> col =
        index::Collection::Open(o);
    if (!col.ok()) {
      c->unavailable_[name] = absl::FailedPreconditionError(absl::StrCat(
          "collection \"", name, "\" is unavailable: it could not be opened (",
          col.status().message(), "); drop it or restore it"));
      continue;
    }
    c->by_name_[name] = std::move(*col);
  }
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot list data_dir ", c->options_.data_dir, ": ", ec.message()));
  }
  return c;
}

std::vector<std::pair<std::string, absl::Status>> Collections::Unavailable()
    const {
  std::lock_guard<std::mutex> l(mu_);
  return {unavailable_.begin(), unavailable_.end()};
}

absl::StatusOr<index::CollectionOptions> Collections::OptionsFor(
    const std::string& name, const std::string& model) const {
  index::CollectionOptions o = options_.collection;
  o.dir = (fs::path(options_.data_dir) / name).string();
  if (model.empty() || model == options_.model_id) {
    o.model_id = options_.model_id;
    o.dimension = options_.dimension;
    return o;
  }
  if (!options_.models) {
    return absl::NotFoundError(absl::StrCat(
        "model \"", model, "\" is not available (this process has only \"",
        options_.model_id, "\")"));
  }
  ASSIGN_OR_RETURN(o.dimension, options_.models(model));
  o.model_id = model;
  return o;
}

absl::StatusOr<std::string> Collections::ModelOfDir(const std::string& dir) {
  ASSIGN_OR_RETURN(index::Manifest m, index::ReadManifest(dir));
  return m.model_id;
}

CollectionSummary Collections::Summary(const std::string& name,
                                       const index::Collection& c) {
  return CollectionSummary{name, c.Stats(), c.model_id(), c.dimension()};
}

absl::StatusOr<std::shared_ptr<index::Collection>> Collections::Get(
    absl::string_view name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    if (auto u = unavailable_.find(std::string(name)); u != unavailable_.end())
      return u->second;
    return absl::NotFoundError(
        absl::StrCat("collection \"", name, "\" does not exist"));
  }
  return it->second;
}

absl::StatusOr<CollectionSummary> Collections::Create(
    absl::string_view name, absl::string_view factory,
    const std::string& model) {
  RETURN_IF_ERROR(ValidateName(name, "name"));
  const std::string n(name);
  // The model first (it may load, seconds): not under the lock.
  absl::StatusOr<index::CollectionOptions> opts = OptionsFor(n, model);
  if (!opts.ok()) {
    return absl::Status(opts.status().code(),
                        absl::StrCat("model: ", opts.status().message()));
  }
  std::unique_lock<std::mutex> l(mu_);
  // A drop of this name is finishing: wait (bounded by one write batch).
  dropped_cv_.wait(l, [&] { return !dropping_.count(n); });
  if (by_name_.count(n) || unavailable_.count(n)) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection \"", name, "\" already exists"));
  }
  index::CollectionOptions o = *std::move(opts);
  o.factory = factory.empty() ? "Flat" : std::string(factory);
  if (fs::exists(o.dir)) {
    // Leftover of a failed create or drop: not a collection (no manifest
    // loaded at start), safe to clear.
    std::error_code ec;
    fs::remove_all(o.dir, ec);
  }
  absl::StatusOr<std::unique_ptr<index::Collection>> col =
      index::Collection::Create(o);
  if (!col.ok()) {
    std::error_code ec;
    fs::remove_all(o.dir, ec);
    if (col.status().code() == absl::StatusCode::kInvalidArgument) {
      return absl::InvalidArgumentError(
          absl::StrCat("index: ", col.status().message()));
    }
    return col.status();
  }
  std::shared_ptr<index::Collection> shared = std::move(*col);
  by_name_[n] = shared;
  return Summary(n, *shared);
}

absl::Status Collections::Drop(absl::string_view name) {
  RETURN_IF_ERROR(ValidateName(name, "name"));
  std::unique_lock<std::mutex> l(mu_);
  return DropLocked(l, std::string(name));
}

absl::Status Collections::DropLocked(std::unique_lock<std::mutex>& l,
                                     const std::string& name) {
  // A concurrent drop of the same name: the first one does the work.
  dropped_cv_.wait(l, [&] { return !dropping_.count(name); });
  std::shared_ptr<index::Collection> col;
  auto it = by_name_.find(name);
  if (it != by_name_.end()) {
    col = std::move(it->second);
    by_name_.erase(it);
  } else if (!unavailable_.erase(name)) {
    return absl::NotFoundError(
        absl::StrCat("collection \"", name, "\" does not exist"));
  }
  dropping_.insert(name);
  l.unlock();
  // Let the write in progress finish; later ones fail NotFound and nothing
  // of the old object touches the directory again.
  if (col) col->MarkDropped();
  // Move the directory aside first so a crash mid-delete never leaves a
  // half-deleted collection that would load at the next start.
  const std::string dir = (fs::path(options_.data_dir) / name).string();
  const std::string trash =
      (fs::path(options_.data_dir) /
       absl::StrCat(".dropped-", name, "-", absl::ToUnixNanos(absl::Now())))
          .string();
  std::error_code ec;
  fs::rename(dir, trash, ec);
  if (ec) {
    // Without the rename the manifest would load again at the next start:
    // remove it so the leftover is cleared by the next Create.
    std::error_code ec2;
    fs::remove(fs::path(dir) / "manifest.json", ec2);
    if (ec2) {
      l.lock();
      dropping_.erase(name);
      dropped_cv_.notify_all();
      return absl::InternalError(absl::StrCat("cannot drop collection \"", name,
                                              "\": ", ec.message()));
    }
  }
  l.lock();
  dropping_.erase(name);
  dropped_cv_.notify_all();
  l.unlock();
  col.reset();  // closes when the last in-flight search lets go
  if (!ec) fs::remove_all(trash, ec);
  l.lock();
  return absl::OkStatus();
}

std::string Collections::StagingDir() const {
  return (fs::path(options_.data_dir) / ".staging").string();
}

absl::StatusOr<CollectionSummary> Collections::Publish(
    absl::string_view name, absl::string_view version,
    const std::optional<CollectionCounters>& if_unchanged) {
  RETURN_IF_ERROR(ValidateName(name, "name"));
  RETURN_IF_ERROR(ValidateName(version, "version"));
  const std::string n(name);
  std::string staged = (fs::path(StagingDir()) / std::string(version)).string();
  index::CollectionOptions publish_options;  // the version's model
  if (!fs::exists(fs::path(staged) / "manifest.json")) {
    return absl::NotFoundError(absl::StrCat("version \"", version,
                                            "\" is not a built collection in ",
                                            StagingDir()));
  }
  {
    // Check it opens with its model, available here, before touching the
    // live one (a re-embed publishes another model's version).
    absl::StatusOr<std::string> model = ModelOfDir(staged);
    absl::StatusOr<index::CollectionOptions> o =
        model.ok() ? OptionsFor(n, *model) : model.status();
    absl::Status opens = o.status();
    if (o.ok()) {
      index::CollectionOptions at = *o;
      at.dir = staged;
      opens = index::Collection::Open(at).status();
    }
    if (!opens.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version \"", version, "\" cannot be published: ", opens.message()));
    }
    publish_options = *o;
  }
  // A staging directory on another file system (a volume shared with a
  // bulk-indexing Job, deploy/README.md): copy the version next to the live
  // collections first, durably, so the switch below stays one rename.
  const std::string source = staged;
  if (struct stat a, b; ::stat(staged.c_str(), &a) == 0 &&
                        ::stat(options_.data_dir.c_str(), &b) == 0 &&
                        a.st_dev != b.st_dev) {
    const fs::path incoming =
        fs::path(options_.data_dir) / ".incoming" / std::string(version);
    std::error_code ec;
    fs::remove_all(incoming, ec);
    fs::create_directories(incoming.parent_path(), ec);
    fs::copy(staged, incoming, fs::copy_options::recursive, ec);
    const int fd = ::open(options_.data_dir.c_str(), O_RDONLY | O_DIRECTORY);
    const bool synced = fd >= 0 && ::syncfs(fd) == 0;
    if (fd >= 0) ::close(fd);
    if (ec || !synced) {
      fs::remove_all(incoming, ec);
      return absl::InternalError(absl::StrCat(
          "cannot copy version \"", version, "\" from ", staged, " to ",
          incoming.string(), " (is the data volume full?)"));
    }
    staged = incoming.string();
  }
  std::unique_lock<std::mutex> l(mu_);
  dropped_cv_.wait(l, [&] { return !dropping_.count(n); });
  const std::string live = publish_options.dir;
  std::shared_ptr<index::Collection> old;
  if (auto it = by_name_.find(n); it != by_name_.end()) old = it->second;
  dropping_.insert(n);  // no create/drop/publish of this name meanwhile
  l.unlock();
  auto done = [&] {
    l.lock();
    dropping_.erase(n);
    dropped_cv_.notify_all();
  };
  // The old version takes no more writes (the one in progress finishes);
  // searches on it finish on its files, all opened now (before the swap).
  if (if_unchanged && !old) {
    done();
    return absl::AbortedError(
        absl::StrCat("collection \"", n, "\" no longer exists; not published"));
  }
  if (old) {
    old->MarkDropped(/*refuse_reads=*/false);
    if (if_unchanged) {
      // No write can land now: compare with what the caller read.
      const index::CollectionStats st = old->Stats();
      if (st.documents != if_unchanged->documents ||
          st.index_vectors != if_unchanged->index_vectors ||
          st.dead_vectors != if_unchanged->dead_vectors) {
        old->Undrop();
        done();
        return absl::AbortedError(absl::StrCat(
            "collection \"", n, "\" was written since its counters were read (",
            if_unchanged->documents, " documents then, ", st.documents,
            " now); not published"));
      }
    }
    if (absl::Status pin = old->PinReaders(); !pin.ok()) {
      old->Undrop();
      done();
      return pin;
    }
  }
  absl::Status moved;
  if (fs::exists(live)) {
    if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, live.c_str(),
                    RENAME_EXCHANGE) != 0) {
      moved =
          absl::InternalError(absl::StrCat("cannot exchange ", staged, " and ",
                                           live, ": ", std::strerror(errno)));
    }
  } else if (std::error_code ec; fs::rename(staged, live, ec), ec) {
    moved = absl::InternalError(
        absl::StrCat("cannot move ", staged, " to ", live, ": ", ec.message()));
  }
  if (!moved.ok()) {
    if (old) old->Undrop();
    done();
    return moved;
  }
  absl::StatusOr<std::unique_ptr<index::Collection>> fresh =
      index::Collection::Open(publish_options);
  done();
  if (!fresh.ok()) {
    // Checked above, so only a disk failure gets here; the files are live
    // and load at the next start.
    unavailable_[n] = absl::FailedPreconditionError(absl::StrCat(
        "collection \"", n,
        "\" is unavailable after publishing: ", fresh.status().message()));
    by_name_.erase(n);
    return unavailable_[n];
  }
  std::shared_ptr<index::Collection> shared = std::move(*fresh);
  by_name_[n] = shared;
  unavailable_.erase(n);
  l.unlock();
  // The old version now sits at the staged path: delete it once no search
  // holds it.
  old.reset();
  std::error_code ec;
  fs::remove_all(staged, ec);
  if (source != staged) fs::remove_all(source, ec);  // the copied original
  return Summary(n, *shared);
}

std::vector<CollectionSummary> Collections::List() const {
  std::vector<std::pair<std::string, std::shared_ptr<index::Collection>>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    all.assign(by_name_.begin(), by_name_.end());
  }
  std::vector<CollectionSummary> out;
  for (const auto& [name, col] : all) out.push_back(Summary(name, *col));
  return out;
}

absl::StatusOr<CollectionSummary> Collections::Describe(
    absl::string_view name) const {
  RETURN_IF_ERROR(ValidateName(name, "name"));
  ASSIGN_OR_RETURN(std::shared_ptr<index::Collection> col, Get(name));
  return Summary(std::string(name), *col);
}

absl::Status Collections::Flush() {
  std::vector<std::shared_ptr<index::Collection>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [name, col] : by_name_) all.push_back(col);
  }
  for (const auto& col : all) RETURN_IF_ERROR(col->Snapshot());
  return absl::OkStatus();
}

}  // namespace diffrank::pipeline
