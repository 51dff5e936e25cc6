// smtpd::Session — one SMTP connection: owns the socket, drives the sans-I/O Protocol, applies
// timeouts (every wait has one; expiry sends 421 4.4.2 and closes), consults the filter chain,
// relays accepted messages over QMQP and answers only after the mailbox server did.
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>

#include "smtpd/snapshot.h"

namespace smtpd {

// Starts a session on the socket's executor; the session keeps itself alive until it closes.
void start_session(boost::asio::ip::tcp::socket socket, std::shared_ptr<const Snapshot> snap, Shared& shared,
                   config::Listener listener);

}  // namespace smtpd
