#pragma once

// Stacks by name over any pair of transports: "plain", "tls", "gzip+plain", "gzip+tls",
// "zstd+tls"... One side is the TLS server, the other the client.

#include <string>

#include "tests/filters/helpers.h"

namespace pwtest {

struct stack_env {
  fs::page_pool* pool = nullptr;
  fs::page_cache* cache = nullptr;
  std::size_t max_send = 0;
};

inline std::unique_ptr<filters::stream> build_stack(const std::string& spec,
                                                    std::unique_ptr<filters::stream> bottom,
                                                    bool server, const stack_env& env) {
  std::unique_ptr<filters::stream> s = std::move(bottom);
  std::error_code ec;
  if (spec.find("tls") != std::string::npos) {
    filters::tls_layer_options o;
    s = std::make_unique<filters::tls_layer>(std::move(s), server ? server_tls() : client_tls(), o,
                                             *env.pool, env.cache, ec);
    EXPECT_FALSE(ec) << ec.message();
  }
  for (auto [name, kind] :
       {std::pair{"gzip+", filters::coding::gzip}, std::pair{"zstd+", filters::coding::zstd},
        std::pair{"deflate+", filters::coding::deflate}}) {
    if (spec.rfind(name, 0) == 0) {
      filters::content_filter_options o;
      o.encode = filters::encoder_options{kind, 1};
      o.decode = filters::decoder_options{kind};
      o.decode->max_output = std::uint64_t{1} << 30;
      s = std::make_unique<filters::content_filter>(std::move(s), o, *env.pool, env.cache, ec);
      EXPECT_FALSE(ec) << ec.message();
    }
  }
  return s;
}

}  // namespace pwtest
