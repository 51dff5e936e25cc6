// QMQP client (cr.yp.to/proto/qmqp.html), qmail-qmqpc style: one connection per message.
// Tries the configured servers in order; a refused or timed-out connect, or a send cut off (after
// which only a Z or D answer is believed), moves on to the next one. Once the whole request has been
// sent, no other server is tried (that could deliver twice): a missing or broken answer is a
// temporary failure. The answer is acted on at its final ','; the server's close is then awaited in
// the background (bounded by the answer timeout), so no socket is left behind in CLOSE_WAIT.
// With cfg.breakers, servers whose circuit breaker is open are skipped (qmqp/breaker.h); when every
// server is skipped, the one that failed longest ago is tried anyway.
#pragma once
#include <utility>  // before Boost 1.74 Asio: awaitable.hpp uses std::exchange

#include <boost/asio/awaitable.hpp>
#include <string_view>

#include "core/reply.h"
#include "qmqp/types.h"

namespace qmqp {

// Relays one message. `header` and `body` are sent back to back as the message netstring,
// both already in QMQP form: LF line endings, dot-unstuffed. Runs on the caller's executor;
// never blocks the thread.
boost::asio::awaitable<Outcome> relay(const ClientConfig& cfg, const Envelope& env,
                                      std::string_view header, std::string_view body);

// K -> 250 2.0.0, Z -> 451, D -> 554, Unavailable/ProtocolError -> 451 4.4.x (see core/reply.h).
core::Reply to_reply(const Outcome& o);

}  // namespace qmqp
