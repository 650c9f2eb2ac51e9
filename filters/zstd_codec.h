#pragma once

/// zstd engines over libzstd's streaming API (ZSTD_compressStream2 /
/// ZSTD_decompressStream). The decoder sets ZSTD_d_windowLogMax, so a frame that declares
/// a larger window fails with errc::window_too_large before any window is allocated.
/// Frames are checksummed. The decoder feeds each frame's header to libzstd a byte at a
/// time, which keeps libzstd on its streaming path whatever the cut: legacy (pre-1.0) frames
/// are refused (errc::corrupt_data), and a frame is judged as `zstd -d` judges it (a declared
/// content size that an empty last block leaves short is accepted; a checksum still has to
/// match). See codec.h for the contract.

#include <memory>
#include <system_error>

#include <pagewire/filters/codec.h>

namespace pagewire::filters {

std::unique_ptr<encoder> make_zstd_encoder(const encoder_options& o, std::error_code& ec);
std::unique_ptr<decoder> make_zstd_decoder(const decoder_options& o, std::error_code& ec);

}  // namespace pagewire::filters
