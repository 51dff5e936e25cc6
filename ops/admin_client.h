// ops::request_reload — the client side of the admin listener's POST /reload, for
// `mxfront --reload FILE` (systemd's ExecReload): it waits for the reload's result, so a refused
// reload fails `systemctl reload` instead of looking like a success (as `kill -HUP` does).
#pragma once
#include <cstdint>
#include <string>

namespace ops {

struct ReloadAnswer {
  int status = 0;    // HTTP status (200 reloaded, 409 refused, 403 not from loopback); 0 = no answer
  std::string text;  // the body, or why there was no answer
};

// Connects to host:port (a wildcard address means loopback) and POSTs /reload; blocks up to
// `timeout_seconds` (the server itself gives a reload up to 60 s).
ReloadAnswer request_reload(const std::string& host, uint16_t port, int timeout_seconds = 75);

}  // namespace ops
