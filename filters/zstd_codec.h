#pragma once

/// zstd engines over libzstd's streaming API (ZSTD_compressStream2 /
/// ZSTD_decompressStream). The decoder sets ZSTD_d_windowLogMax, so a frame that declares
/// a larger window fails with errc::window_too_large before any window is allocated.
/// Frames are checksummed. The decoder feeds each frame's header to libzstd a byte at a
/// time, which keeps libzstd on its streaming path whatever the cut: legacy (pre-1.0) frames
/// are refused (errc::corrupt_data). A frame that decodes to another size than its header
/// declares is corrupt too (libzstd's streaming path lets an empty last block end it short).
/// See codec.h for the contract.

#include <memory>
#include <system_error>

#include <pagewire/filters/codec.h>

namespace pagewire::filters {

std::unique_ptr<encoder> make_zstd_encoder(const encoder_options& o, std::error_code& ec);
std::unique_ptr<decoder> make_zstd_decoder(const decoder_options& o, std::error_code& ec);

}  // namespace pagewire::filters
