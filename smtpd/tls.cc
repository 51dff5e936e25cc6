// OpenSSL server context set-up (through Boost.Asio ssl::context).
#include "smtpd/tls.h"

#include <openssl/err.h>

#include <fmt/format.h>

namespace smtpd {

TlsContextOrError make_tls_context(const config::Tls& t) {
  if (t.cert_file.empty()) return {};
  namespace ssl = boost::asio::ssl;
  try {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, t.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!t.ciphers.empty() && SSL_CTX_set_cipher_list(native, t.ciphers.c_str()) != 1)
      return {nullptr, fmt::format("tls.ciphers '{}': no usable cipher", t.ciphers)};
    auto openssl_error = [] {
      char buf[256];
      ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
      ERR_clear_error();
      return std::string(buf);
    };
    if (SSL_CTX_use_certificate_chain_file(native, t.cert_file.c_str()) != 1)
      return {nullptr, fmt::format("tls.cert_file '{}': {}", t.cert_file, openssl_error())};
    if (SSL_CTX_use_PrivateKey_file(native, t.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return {nullptr, fmt::format("tls.key_file '{}': {}", t.key_file, openssl_error())};
    if (SSL_CTX_check_private_key(native) != 1) return {nullptr, "tls.key_file does not match tls.cert_file"};
    return {ctx, {}};
  } catch (const std::exception& e) {
    return {nullptr, fmt::format("tls: {}", e.what())};
  }
}

std::string describe_tls(SSL* ssl) {
  return fmt::format("{} with cipher {}", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

}  // namespace smtpd
