// Why a session closed: set by the protocol engine or by the session, logged as the disconnect
// line's reason= (operators and the integration tests grep these names: they never change).
#pragma once
#include <string_view>

namespace smtp {

enum class CloseReason {
  None,       // not closed (yet)
  Quit,       // the client's QUIT
  Eof,        // the client closed the connection
  Error,      // a socket error, or a write that failed
  Timeout,    // a wait outlived its timeout or the session's deadline (421 4.4.2)
  Violation,  // a bare CR or LF (smuggling defence)
  Errors,     // too many erroneous commands
  Auth,       // too many AUTH failures
  Shutdown,   // draining: 421 to an idle client
  Limit,      // refused at the banner (connection limits, drain, a Connect-phase filter)
  Rejected,   // a filter's Disconnect verdict
  Refused,    // the session's view of a refused banner; the engine's Limit replaces it at the close
  Proxy,      // no valid PROXY header (untrusted peer, garbage, timeout)
  Tls,        // the TLS handshake failed
};

constexpr std::string_view name(CloseReason r) {
  switch (r) {
    case CloseReason::None: return "";
    case CloseReason::Quit: return "quit";
    case CloseReason::Eof: return "eof";
    case CloseReason::Error: return "error";
    case CloseReason::Timeout: return "timeout";
    case CloseReason::Violation: return "violation";
    case CloseReason::Errors: return "errors";
    case CloseReason::Auth: return "auth";
    case CloseReason::Shutdown: return "shutdown";
    case CloseReason::Limit: return "limit";
    case CloseReason::Rejected: return "rejected";
    case CloseReason::Refused: return "refused";
    case CloseReason::Proxy: return "proxy";
    case CloseReason::Tls: return "tls";
  }
  return "?";
}

}  // namespace smtp
