// tls_pem.cc: PEM checks on a scratch GnuTLS credential (see tls_pem.h).
#include "service/tls_pem.h"

#include <gnutls/gnutls.h>

#include <functional>

#include "absl/strings/str_cat.h"

namespace diffrank::service {
namespace {

gnutls_datum_t Datum(const std::string& s) {
  return gnutls_datum_t{
      reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
      static_cast<unsigned>(s.size())};
}

// WithCredentials runs `f` on a fresh credential and frees it.
absl::Status WithCredentials(
    const std::function<absl::Status(gnutls_certificate_credentials_t)>& f) {
  gnutls_certificate_credentials_t cred = nullptr;
  if (gnutls_certificate_allocate_credentials(&cred) != GNUTLS_E_SUCCESS) {
    return absl::ResourceExhaustedError("TLS: cannot allocate credentials");
  }
  absl::Status st = f(cred);
  gnutls_certificate_free_credentials(cred);
  return st;
}

}  // namespace

absl::Status CheckPemKeyPair(const std::string& cert_pem,
                             const std::string& key_pem) {
  return WithCredentials([&](gnutls_certificate_credentials_t cred) {
    const gnutls_datum_t cert = Datum(cert_pem), key = Datum(key_pem);
    const int rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key,
                                                       GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "not a PEM certificate and matching key: ", gnutls_strerror(rc)));
    }
    return absl::OkStatus();
  });
}

absl::Status CheckPemCaBundle(const std::string& ca_pem) {
  return WithCredentials([&](gnutls_certificate_credentials_t cred) {
    const gnutls_datum_t ca = Datum(ca_pem);
    const int rc =
        gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "holds no PEM CA certificate",
          rc < 0 ? absl::StrCat(" (", gnutls_strerror(rc), ")") : ""));
    }
    return absl::OkStatus();
  });
}

}  // namespace diffrank::service
