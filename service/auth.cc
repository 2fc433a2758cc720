// auth.cc: keys file parsing and the per-call check.
#include "service/auth.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace diffrank::service {
namespace {

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

}  // namespace

const char* RoleName(Role r) {
  switch (r) {
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    return absl::NotFoundError(
        absl::StrCat("cannot read api_keys_file ", path));
  }
  std::stringstream ss;
  ss << f.rdbuf();
  absl::StatusOr<ApiKeys> k = Parse(ss.str());
  if (!k.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("api_keys_file ", path, ": ", k.status().message()));
  }
  if (k->open()) {
    return absl::InvalidArgumentError(
        absl::StrCat("api_keys_file ", path,
                     " holds no keys; add `<role> <key>` lines or "
                     "drop --api_keys to run open"));
  }
  return k;
}

absl::StatusOr<ApiKeys> ApiKeys::Parse(absl::string_view text) {
  ApiKeys out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    // Comments are whole lines: a `#` inside a key line would silently cut
    // the key (its prefix would then be the key).
    if (line.empty() || line[0] == '#') continue;
    if (absl::StrContains(line, '#')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_no,
          ": `#` is not allowed in a key line (comments are whole lines "
          "starting with #)"));
    }
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no,
                       ": expected `<role> <key>` (role read|write|admin)"));
    }
    Role role;
    if (parts[0] == "read") {
      role = Role::kRead;
    } else if (parts[0] == "write") {
      role = Role::kWrite;
    } else if (parts[0] == "admin") {
      role = Role::kAdmin;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": unknown role \"", parts[0],
                       "\" (read|write|admin)"));
    }
    if (parts[1].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_no, ": keys must be at least 16 characters"));
    }
    for (const Key& k : out.keys_) {
      if (k.key == parts[1]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "line ", line_no, ": this key is already listed (role ",
            RoleName(k.role), "); each key has exactly one role"));
      }
    }
    out.keys_.push_back({std::string(parts[1]), role});
  }
  return out;
}

absl::Status ApiKeys::Authorize(std::optional<absl::string_view> header,
                                Role needed) const {
  if (open()) return absl::OkStatus();
  if (!header || absl::StripAsciiWhitespace(*header).empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send the header `authorization: Bearer <key>`");
  }
  if (!absl::StartsWithIgnoreCase(*header, "bearer ")) {
    return absl::UnauthenticatedError(
        "the authorization header must be `Bearer <key>` (the value has no "
        "\"Bearer \" before the key)");
  }
  const absl::string_view key = absl::StripAsciiWhitespace(header->substr(7));
  const Key* found = nullptr;
  for (const Key& k : keys_) {
    if (ConstantTimeEquals(k.key, key)) found = &k;
  }
  if (found == nullptr) return absl::UnauthenticatedError("unknown API key");
  if (found->role < needed) {
    return absl::PermissionDeniedError(
        absl::StrCat("this API key has role ", RoleName(found->role),
                     "; the call needs ", RoleName(needed)));
  }
  return absl::OkStatus();
}

}  // namespace diffrank::service
