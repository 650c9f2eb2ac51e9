#include <cstring>
#include <mutex>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <pagewire/filters/tls13_secrets.h>

namespace pagewire::filters {
namespace {

using keylog_fn = void (*)(const SSL*, const char*);

// The ex_data slots: on the SSL the tls13_secrets, on the SSL_CTX the callback we chained.
struct slots {
  int ssl = -1;
  int ctx = -1;
};
const slots& ex_slots() {
  static const slots s{SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr),
                       SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr)};
  return s;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses `n` hex digits (even) into out; the number of bytes, or 0 on a bad digit.
std::size_t unhex(const char* p, std::size_t n, unsigned char* out, std::size_t cap) {
  if (n % 2 || n / 2 > cap) return 0;
  for (std::size_t i = 0; i < n; i += 2) {
    const int hi = hex(p[i]), lo = hex(p[i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out[i / 2] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return n / 2;
}

}  // namespace

bool tls13_secrets::install(SSL_CTX* ctx) {
  static std::mutex m;
  const std::lock_guard<std::mutex> lock(m);
  const slots& s = ex_slots();
  if (s.ssl < 0 || s.ctx < 0) return false;
  const keylog_fn current = SSL_CTX_get_keylog_callback(ctx);
  if (current == &tls13_secrets::on_keylog) return true;
  // The earlier callback (possibly null) lives in the context's slot, a function pointer
  // carried as data.
  static_assert(sizeof(keylog_fn) == sizeof(void*));
  void* prev = nullptr;
  std::memcpy(&prev, &current, sizeof prev);
  if (SSL_CTX_set_ex_data(ctx, s.ctx, prev) != 1) return false;
  SSL_CTX_set_keylog_callback(ctx, &tls13_secrets::on_keylog);
  return true;
}

tls13_secrets::tls13_secrets(SSL* ssl) : ssl_(ssl) {
  SSL_set_ex_data(ssl_, ex_slots().ssl, this);
}

tls13_secrets::~tls13_secrets() {
  if (SSL_get_ex_data(ssl_, ex_slots().ssl) == this) SSL_set_ex_data(ssl_, ex_slots().ssl, nullptr);
  OPENSSL_cleanse(client_.data(), client_.size());
  OPENSSL_cleanse(server_.data(), server_.size());
}

void tls13_secrets::on_keylog(const SSL* ssl, const char* line) {
  void* prev = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_slots().ctx);
  if (prev) {
    keylog_fn fn;
    std::memcpy(&fn, &prev, sizeof fn);
    fn(ssl, line);
  }
  if (auto* self = static_cast<tls13_secrets*>(SSL_get_ex_data(ssl, ex_slots().ssl))) {
    self->take(ssl, line);
  }
}

// "LABEL <client random, 64 hex digits> <secret, hex>"
void tls13_secrets::take(const SSL* ssl, const char* line) {
  static constexpr char kClient[] = "CLIENT_TRAFFIC_SECRET_0 ";
  static constexpr char kServer[] = "SERVER_TRAFFIC_SECRET_0 ";
  const bool client = std::strncmp(line, kClient, sizeof kClient - 1) == 0;
  const bool server = std::strncmp(line, kServer, sizeof kServer - 1) == 0;
  if (!client && !server) return;
  const char* p = line + sizeof kClient - 1;  // both labels are the same length
  const char* space = std::strchr(p, ' ');
  if (!space) return;
  unsigned char random[SSL3_RANDOM_SIZE], ours[SSL3_RANDOM_SIZE];
  if (unhex(p, static_cast<std::size_t>(space - p), random, sizeof random) != sizeof random ||
      SSL_get_client_random(ssl, ours, sizeof ours) != sizeof ours ||
      std::memcmp(random, ours, sizeof ours) != 0) {
    return;  // another connection's line
  }
  const char* secret = space + 1;
  const std::size_t digits = std::strcspn(secret, " \r\n");
  auto& dst = client ? client_ : server_;
  const std::size_t n = unhex(secret, digits, dst.data(), dst.size());
  (client ? client_len_ : server_len_) = n;
}

}  // namespace pagewire::filters
