// The no-open-relay filter and recipient check, at RcptTo:
//  * a local part with routing syntax ('%', '!', quoted '@') that a downstream could act on: 554 5.7.1;
//  * a local domain: accepted — after a directory lookup when one is configured
//    (unknown 550 5.1.1, disabled 550 5.2.1, directory down 451 4.3.0: never accept an unknown
//    recipient, never reject a valid one because the directory is down);
//  * <postmaster> and postmaster@<local domain> (RFC 5321 §4.5.1): both stand for relay.postmaster
//    (the session relays them to it), so that address is what the directory is asked about — the
//    two forms always get the same answer, and never an unknown mailbox;
//  * any other domain: accepted for authenticated clients only, otherwise 554 5.7.1.
#pragma once
#include <string>
#include <vector>

#include <memory>

#include "filters/filter.h"
#include "directory/directory.h"

namespace filters {

class RelayControl final : public Filter {
 public:
  // `local_domains` lower-case; `directory` may be null (then every local address is accepted).
  // `postmaster`: where the postmaster forms go (relay.postmaster); empty = postmaster@<first domain>.
  RelayControl(std::vector<std::string> local_domains, std::shared_ptr<ldap::Directory> directory = nullptr,
               std::string postmaster = {});
  std::string_view name() const override { return "relay_control"; }
  bool wants(Phase p) const override { return p == Phase::RcptTo; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

  // The decision as if every local address existed (pure, for tests).
  Verdict decide(const smtp::Address& rcpt, bool authenticated = false) const;
  // A directory answer as a verdict (pure, for tests).
  static Verdict from_lookup(const ldap::RecipientResult& r);

 private:
  bool is_local_domain(const smtp::Address& rcpt) const;

  std::vector<std::string> domains_;
  std::shared_ptr<ldap::Directory> directory_;
  std::string postmaster_;
};

}  // namespace filters
