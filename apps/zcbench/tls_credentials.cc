#include "apps/zcbench/tls_credentials.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "apps/zcbench/cleanup.h"

namespace zcbench {
namespace {

// Owns the files; its destructor (at exit) removes them.
struct credentials_store {
  std::string dir;
  tls_files files;
  bool ready = false;
  // A flock on `dir` while it exists, as source_store holds on its directory: a later run's
  // reaper (source_store.cc) then leaves it alone, and removes it once this run is gone.
  int lock_fd = -1;
  ~credentials_store() {
    for (const std::string* f : {&files.key_file, &files.cert_file, &dir}) {
      if (f->empty()) continue;
      if (f == &dir) {
        ::rmdir(f->c_str());
      } else {
        ::unlink(f->c_str());
      }
      forget_cleanup(f->c_str());
    }
    if (lock_fd >= 0) ::close(lock_fd);
  }
};

credentials_store& store() {
  static credentials_store s;
  return s;
}

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

x509_ptr self_signed(EVP_PKEY* key) {
  x509_ptr cert(X509_new(), X509_free);
  if (!cert) return cert;
  X509_NAME* name = X509_get_subject_name(cert.get());
  const bool ok = X509_set_version(cert.get(), 2) == 1 &&
                  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) == 1 &&
                  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
                  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400) != nullptr &&
                  X509_set_pubkey(cert.get(), key) == 1 &&
                  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                             reinterpret_cast<const unsigned char*>("localhost"),
                                             -1, -1, 0) == 1 &&
                  X509_set_issuer_name(cert.get(), name) == 1 &&
                  X509_sign(cert.get(), key, EVP_sha256()) > 0;
  if (!ok) cert.reset();
  return cert;
}

bool write_pem(const std::string& file, EVP_PKEY* key, X509* cert) {
  FILE* f = std::fopen(file.c_str(), "wx");
  if (f == nullptr) return false;
  const bool ok = key != nullptr
                      ? PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1
                      : PEM_write_X509(f, cert) == 1;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

bool prepare_tls_credentials(const std::string& dir_parent, std::string& why) {
  credentials_store& s = store();
  if (s.ready) return true;
  pkey_ptr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  x509_ptr cert = key ? self_signed(key.get()) : x509_ptr(nullptr, X509_free);
  if (!cert) {
    why = "TLS credentials: OpenSSL could not make a key and certificate";
    return false;
  }
  std::string dir = dir_parent + "/zcbench-tls-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    why = "mkdtemp " + dir + ": " + std::strerror(errno);
    return false;
  }
  s.dir = dir;
  register_cleanup(cleanup_kind::directory, s.dir.c_str());
  s.lock_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s.lock_fd < 0 || ::flock(s.lock_fd, LOCK_EX | LOCK_NB) != 0) {
    why = "lock " + dir + ": " + std::strerror(errno);
    return false;
  }
  const std::string key_file = dir + "/key.pem", cert_file = dir + "/cert.pem";
  register_cleanup(cleanup_kind::file, key_file.c_str());
  register_cleanup(cleanup_kind::file, cert_file.c_str());
  s.files = {cert_file, key_file};
  if (!write_pem(key_file, key.get(), nullptr) || !write_pem(cert_file, nullptr, cert.get())) {
    why = "TLS credentials: cannot write " + dir + ": " + std::strerror(errno);
    return false;
  }
  s.ready = true;
  return true;
}

const tls_files& tls_credentials_files() {
  static const tls_files none;
  return store().ready ? store().files : none;
}

}  // namespace zcbench
