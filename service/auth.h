// auth.h: API keys and roles.
//
// The keys file has one key per line: `<role> <key>` where role is read,
// write or admin; lines starting with `#` are comments. A `#` elsewhere and a
// key listed twice are refused at load (naming the line). Roles are ordered:
// write includes read, admin includes write. Callers send `authorization:
// Bearer <key>`. With no keys file every call is allowed (the server warns at
// start). Keys are compared in constant time. Thread-safety: immutable after
// Load.
#ifndef DIFFRANK_SERVICE_AUTH_H_
#define DIFFRANK_SERVICE_AUTH_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace diffrank::service {

enum class Role { kRead = 0, kWrite = 1, kAdmin = 2 };
const char* RoleName(Role r);

class ApiKeys {
 public:
  // Open: every call allowed.
  ApiKeys() = default;
  // Load parses a keys file; InvalidArgument names the line.
  static absl::StatusOr<ApiKeys> Load(const std::string& path);
  static absl::StatusOr<ApiKeys> Parse(absl::string_view text);

  bool open() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // Authorize checks the `authorization` header value (nullopt if absent)
  // against the role a method needs: Unauthenticated without a known key,
  // PermissionDenied when the key's role is too low.
  absl::Status Authorize(std::optional<absl::string_view> header,
                         Role needed) const;

 private:
  struct Key {
    std::string key;
    Role role;
  };
  std::vector<Key> keys_;
};

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_AUTH_H_
