// tls_pem.h: checks TLS material (PEM certificate/key pairs and CA bundles)
// with GnuTLS before a server starts on it, so a bad file is named at start
// instead of surfacing as gRPC's or libmicrohttpd's "cannot listen".
#ifndef DIFFRANK_SERVICE_TLS_PEM_H_
#define DIFFRANK_SERVICE_TLS_PEM_H_

#include <string>

#include "absl/status/status.h"

namespace diffrank::service {

// InvalidArgument unless `cert_pem` is a PEM certificate chain whose first
// certificate matches the PEM private key `key_pem`.
absl::Status CheckPemKeyPair(const std::string& cert_pem,
                             const std::string& key_pem);

// InvalidArgument unless `ca_pem` holds at least one PEM certificate and
// every block in it parses.
absl::Status CheckPemCaBundle(const std::string& ca_pem);

}  // namespace diffrank::service

#endif  // DIFFRANK_SERVICE_TLS_PEM_H_
