// collections.cc: loading, creating and dropping collections by name.
#include "pipeline/collections.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

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
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data_dir ", options.data_dir, ": ", ec.message()));
  }
  std::unique_ptr<Collections> c(new Collections(std::move(options)));
  for (const auto& e : fs::directory_iterator(c->options_.data_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || !ValidateName(name, "name").ok()) continue;
    if (!fs::exists(e.path() / "manifest.json")) continue;
    absl::StatusOr<std::unique_ptr<index::Collection>> col =
        index::Collection::Open(c->OptionsFor(name));
    if (!col.ok()) {
      return absl::Status(
          col.status().code(),
          absl::StrCat("collection \"", name, "\": ", col.status().message()));
    }
    c->by_name_[name] = std::move(*col);
  }
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot list data_dir ", c->options_.data_dir, ": ", ec.message()));
  }
  return c;
}

index::CollectionOptions Collections::OptionsFor(
    const std::string& name) const {
  index::CollectionOptions o = options_.collection;
  o.dir = (fs::path(options_.data_dir) / name).string();
  o.model_id = options_.model_id;
  o.dimension = options_.dimension;
  return o;
}

absl::StatusOr<std::shared_ptr<index::Collection>> Collections::Get(
    absl::string_view name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    return absl::NotFoundError(
        absl::StrCat("collection \"", name, "\" does not exist"));
  }
  return it->second;
}

absl::StatusOr<CollectionSummary> Collections::Create(
    absl::string_view name, absl::string_view factory) {
  RETURN_IF_ERROR(ValidateName(name, "name"));
  std::lock_guard<std::mutex> l(mu_);
  const std::string n(name);
  if (by_name_.count(n)) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection \"", name, "\" already exists"));
  }
  index::CollectionOptions o = OptionsFor(n);
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
  return CollectionSummary{n, shared->Stats()};
}

absl::Status Collections::Drop(absl::string_view name) {
  RETURN_IF_ERROR(ValidateName(name, "name"));
  std::shared_ptr<index::Collection> col;
  std::string dir;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_name_.find(std::string(name));
    if (it == by_name_.end()) {
      return absl::NotFoundError(
          absl::StrCat("collection \"", name, "\" does not exist"));
    }
    col = std::move(it->second);
    by_name_.erase(it);
    dir = OptionsFor(std::string(name)).dir;
    // Move the directory aside first so a crash mid-delete never leaves a
    // half-deleted collection that would load at the next start.
    const std::string trash =
        (fs::path(options_.data_dir) /
         absl::StrCat(".dropped-", name, "-", absl::ToUnixNanos(absl::Now())))
            .string();
    std::error_code ec;
    fs::rename(dir, trash, ec);
    if (ec) {
      by_name_[std::string(name)] = col;
      return absl::InternalError(
          absl::StrCat("cannot drop ", dir, ": ", ec.message()));
    }
    dir = trash;
  }
  col.reset();  // closes when the last in-flight search lets go
  std::error_code ec;
  fs::remove_all(dir, ec);
  return absl::OkStatus();
}

std::vector<CollectionSummary> Collections::List() const {
  std::vector<std::pair<std::string, std::shared_ptr<index::Collection>>> all;
  {
    std::lock_guard<std::mutex> l(mu_);
    all.assign(by_name_.begin(), by_name_.end());
  }
  std::vector<CollectionSummary> out;
  for (const auto& [name, col] : all) out.push_back({name, col->Stats()});
  return out;
}

absl::StatusOr<CollectionSummary> Collections::Describe(
    absl::string_view name) const {
  RETURN_IF_ERROR(ValidateName(name, "name"));
  ASSIGN_OR_RETURN(std::shared_ptr<index::Collection> col, Get(name));
  return CollectionSummary{std::string(name), col->Stats()};
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
