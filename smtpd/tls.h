// Server TLS context from [tls]: certificate chain and key, minimum version, cipher list.
// Built once per config generation (a reload re-reads the files: new certificates without a
// restart); sessions keep the context they started with.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "config/config.h"

namespace smtpd {

struct TlsContextOrError {
  std::shared_ptr<boost::asio::ssl::context> ctx;  // null when [tls] is not configured or on error
  std::string error;
};

TlsContextOrError make_tls_context(const config::Tls& t);

// "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384" for logs and the Received header.
std::string describe_tls(SSL* ssl);

}  // namespace smtpd
