// The OpenLDAP directory (directory.type = "ldap"), on libldap's synchronous API confined to the
// BlockingPool: the I/O threads never block, and every libldap call runs on a pool thread.
//
// Contract:
//  * Connections: each pool thread owns one search connection per directory (a slot indexed by
//    the pool thread's index, so no locks), created lazily: ldap_initialize, LDAPv3, referrals
//    off, LDAP_OPT_NETWORK_TIMEOUT and LDAP_OPT_TIMEOUT = directory.timeout, then a simple bind as
//    bind_dn with the password from bind_password_file (or no bind: anonymous). The connection is
//    kept between requests and closed when the directory is destroyed.
//  * Failover: URIs are tried in order. Any error on a URI drops that connection and moves on to
//    the next URI; a kept connection that finds the server gone (server down: e.g. slapd was
//    restarted) is reopened once before moving on. An error on every URI answers Unavailable —
//    never NotFound. A connection to a URI other than the first is dropped after 60 s so that the
//    first URI is tried again (fail back).
//  * Recipients: subtree search under base_dn with recipient_filter (%s = the RFC 4515-escaped,
//    lower-cased address), attributes mail + alternates + status, size limit 2. No entry: Found if
//    the domain is in catchall_domains (mailbox = the address), else NotFound. An entry whose
//    status is in disabled_values (case-insensitive): Disabled. Several entries (ambiguous: logged)
//    answer Found if any of them is active. mailbox = the entry's first mail value, lower-case.
//    Found/NotFound/Disabled are cached (cache.h; a cached answer's detail starts "cached: ");
//    Unavailable never is.
//  * AUTH: an empty password (or one containing NUL) is BadCredentials at once — never sent, as an
//    empty simple bind is an "unauthenticated" bind that succeeds. Otherwise the entry is found
//    with login_filter (%s = the escaped login) and the user's password is checked by a simple bind
//    as that entry's DN on a separate, fresh connection (closed right after). invalidCredentials
//    and an unknown or ambiguous login all answer BadCredentials (no user enumeration); a right
//    password on a disabled account answers Disabled. AUTH results are not cached.
//  * A full pool answers Unavailable. Every Unavailable is logged (warn) with each URI and its
//    libldap error; passwords are never logged. Counters per outcome: stats().
//  * libldap may write to a socket the server has closed: pool threads block SIGPIPE
//    (net/blocking_pool.h), so such a write fails with EPIPE instead of killing the process.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "directory/directory.h"
#include "config/directory.h"
#include "net/blocking_pool.h"

namespace ldap {

class LdapDirectory final : public Directory {
 public:
  struct Stats {
    uint64_t found = 0, not_found = 0, disabled = 0, unavailable = 0, catchall = 0;
    uint64_t cache_hits = 0, cache_misses = 0;
    uint64_t auth_ok = 0, auth_bad = 0, auth_disabled = 0, auth_unavailable = 0;
    uint64_t uri_failures = 0;  // attempts on one URI that failed (then the next URI is tried)
    uint64_t connects = 0;    // search connections opened
    uint64_t shed = 0;        // pool full
  };
  struct Core;  // everything a pool job needs; shared with the jobs (ldap_directory.cc)

  // Use make_ldap_directory(): it validates the options and reads the bind password.
  LdapDirectory(std::shared_ptr<Core> core, std::shared_ptr<net::BlockingPool> pool);
  ~LdapDirectory() override;

  boost::asio::awaitable<RecipientResult> find_recipient(std::string address) override;
  boost::asio::awaitable<AuthResult> authenticate(std::string user, std::string password) override;
  std::string describe() const override;
  std::vector<core::Dependency> dependencies() const override;  // one per URI: connect, bind, read base_dn
  Stats stats() const;

 private:
  std::shared_ptr<Core> core_;
  std::shared_ptr<net::BlockingPool> pool_;
};

struct LdapDirectoryOrError {
  std::shared_ptr<LdapDirectory> dir;
  std::string error;
};

// Checks the options (URIs parse, filters contain %s, bind_dn has a readable password file) and
// builds the directory. No network I/O: connections open on first use. Never throws.
LdapDirectoryOrError make_ldap_directory(const config::Directory& opts, std::shared_ptr<net::BlockingPool> pool);

}  // namespace ldap
