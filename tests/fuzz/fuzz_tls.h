#pragma once

// TLS helpers the fuzz targets share: a self-signed certificate and a tls_context that must
// build. Failures abort through check() (fuzz_check.h).

#include <cstdio>
#include <memory>
#include <string>
#include <system_error>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <pagewire/filters/tls_context.h>

#include "fuzz_check.h"

namespace fuzz_tls {

// A self-signed Ed25519 certificate for CN=localhost (and DNS:localhost as a subject
// alternative name when `san`), written where tls_options can name it. Ed25519 signs
// deterministically in 64 bytes (an ECDSA signature's DER length varies), so the handshake
// takes the same number of bytes every time and an input meets the same page boundaries.
inline void write_certificate(const std::string& cert, const std::string& key, bool san) {
  EVP_PKEY* pk = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  X509* x = X509_new();
  check(pk && x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400);
  X509_set_pubkey(x, pk);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (san) {
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, "DNS:localhost");
    check(ext != nullptr);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  check(X509_sign(x, pk, nullptr) > 0);  // Ed25519 hashes itself
  FILE* f = std::fopen(cert.c_str(), "w");
  check(f && PEM_write_X509(f, x) == 1);
  std::fclose(f);
  f = std::fopen(key.c_str(), "w");
  check(f && PEM_write_PrivateKey(f, pk, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(pk);
}

// tls_context::create(o), or the reason on stderr and an abort.
inline std::shared_ptr<pagewire::filters::tls_context> make_context(
    const pagewire::filters::tls_options& o) {
  std::error_code ec;
  std::string detail;
  auto ctx = pagewire::filters::tls_context::create(o, ec, &detail);
  if (ec) std::fprintf(stderr, "tls_context: %s %s\n", ec.message().c_str(), detail.c_str());
  check(ctx != nullptr);
  return ctx;
}

}  // namespace fuzz_tls
