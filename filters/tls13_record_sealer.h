#pragma once

/// tls13_record_sealer: TLS 1.3 application-traffic records sealed by pagewire itself
/// (RFC 8446 5.2), straight into page_writer pages: the 5-byte header, the ciphertext of
/// the plaintext and of the inner content type, and the 16-byte tag, a record spanning as
/// many 4 KiB pages as it needs (one EVP_EncryptUpdate per page span). No plaintext copy:
/// the cipher reads the caller's bytes and writes the pages. Suites: TLS_AES_128_GCM_SHA256,
/// TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256.
///
/// Keys: key and iv from the traffic secret by HKDF-Expand-Label ("key", "iv"); the nonce
/// is the iv XOR the 64-bit record sequence number; the AAD is the record header. A key
/// update (RFC 8446 4.6.3, 7.2) seals a KeyUpdate message under the current key, then moves
/// to the next secret ("traffic upd") with the sequence number back at 0; seal() does one
/// itself so that at most `records_per_key` records (its KeyUpdate included) go out under
/// one key.
///
/// open() is the same key schedule read the other way (one whole record in, plaintext out):
/// used to count the records OpenSSL sealed before pagewire took over, and by tests.
///
/// Ownership: holds its EVP contexts and a copy of the secret (wiped on destruction).
/// Threading: one thread at a time. Errors: seal results (below); open() returns false for
/// a record that does not authenticate (the sequence number then stays).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <pagewire/filters/page_writer.h>

typedef struct evp_cipher_st EVP_CIPHER;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace pagewire::filters {

class tls13_record_sealer {
 public:
  static constexpr std::size_t kHeader = 5;
  static constexpr std::size_t kTag = 16;
  static constexpr std::size_t kMaxPlaintext = 16384;
  /// Bytes a record adds to its plaintext: header, inner content type, tag.
  static constexpr std::size_t kOverhead = kHeader + 1 + kTag;

  enum class content : std::uint8_t { alert = 21, handshake = 22, application_data = 23 };
  enum class result : std::uint8_t {
    ok,
    want_pages,  ///< the pool refused a page: nothing of this record was written
    error,       ///< the cipher failed (output may hold a partial record: fatal)
  };

  /// `suite`: the TLS 1.3 cipher suite number (0x1301, 0x1302, 0x1303); `secret`: the
  /// application traffic secret of the direction sealed; `sequence`: the next record's
  /// sequence number; `records_per_key`: own key update bound (0: 2^24 for AES-GCM, 2^60
  /// for ChaCha20-Poly1305; at least 2). Null and `why` set for another suite or a bad secret
  /// length.
  static std::unique_ptr<tls13_record_sealer> create(std::uint16_t suite,
                                                     std::span<const std::byte> secret,
                                                     std::uint64_t sequence,
                                                     std::uint64_t records_per_key,
                                                     std::string& why);
  ~tls13_record_sealer();
  tls13_record_sealer(const tls13_record_sealer&) = delete;
  tls13_record_sealer& operator=(const tls13_record_sealer&) = delete;

  /// A record's plaintext in pieces: their concatenation, each piece read where it lies.
  using pieces = std::span<const std::span<const std::byte>>;

  /// Seals `plain` (at most kMaxPlaintext bytes) as one record of type `type` into `out`,
  /// after a KeyUpdate record of its own when the current key reached records_per_key.
  result seal(page_writer& out, std::span<const std::byte> plain,
              content type = content::application_data);
  /// The same for a plaintext in pieces (together at most kMaxPlaintext bytes): a record
  /// whose bytes lie in several pages is sealed without gathering them first.
  result seal(page_writer& out, pieces plain, content type = content::application_data);
  /// Seals a KeyUpdate (update_requested as given) under the current key, then switches
  /// to the next one.
  result seal_key_update(page_writer& out, bool request_peer_update);
  /// Seals a close_notify alert.
  result seal_close_notify(page_writer& out);

  /// Opens one whole record (header first, exactly one record) under the current key:
  /// its plaintext into `plain` (replaced), its inner content type into `type`.
  bool open(std::span<const std::byte> record, std::vector<std::byte>& plain, content& type);
  /// Moves to the next secret ("traffic upd"), sequence 0: what a KeyUpdate does.
  bool update_key();

  std::uint64_t sequence() const noexcept { return seq_; }
  std::uint64_t key_updates() const noexcept { return key_updates_; }
  std::uint64_t records_per_key() const noexcept { return records_per_key_; }

 private:
  struct suite_info;
  static const suite_info* find_suite(std::uint16_t id);
  tls13_record_sealer(const suite_info& s, std::uint64_t sequence, std::uint64_t limit);
  bool set_secret(std::span<const std::byte> secret);
  void nonce(std::array<unsigned char, 12>& n) const noexcept;
  result seal_record(page_writer& out, pieces plain, content type);
  bool encrypt_into(page_writer& out, const unsigned char* in, std::size_t n);

  const suite_info* suite_;
  EVP_CIPHER* cipher_ = nullptr;
  EVP_CIPHER_CTX* enc_ = nullptr;
  EVP_CIPHER_CTX* dec_ = nullptr;
  bool dec_keyed_ = false;  // dec_ holds the current key
  std::array<unsigned char, 48> secret_{};
  std::array<unsigned char, 32> key_{};
  std::array<unsigned char, 12> iv_{};
  std::uint64_t seq_ = 0;
  std::uint64_t records_per_key_ = 0;
  std::uint64_t key_updates_ = 0;
};

}  // namespace pagewire::filters
