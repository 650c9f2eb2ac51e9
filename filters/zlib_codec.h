#pragma once

/// gzip (RFC 1952) and deflate (zlib format, RFC 1950, as HTTP's "deflate" means) engines
/// over zlib's z_stream. Memory: deflate's window 2^window_bits (9..15) and memLevel
/// tables; inflate's 32 KiB window. Concatenated gzip members decode as one stream
/// (what `gzip -d` does). See codec.h for the contract.

#include <memory>
#include <system_error>

#include <pagewire/filters/codec.h>

namespace pagewire::filters {

std::unique_ptr<encoder> make_zlib_encoder(const encoder_options& o, std::error_code& ec);
std::unique_ptr<decoder> make_zlib_decoder(const decoder_options& o, std::error_code& ec);

}  // namespace pagewire::filters
