// The directory: the two questions mxfront asks about its users — "is this a deliverable local
// recipient?" (RCPT on the MX profile) and "are these credentials valid, and which addresses may
// this user send as?" (AUTH on the submission profiles). Implementations: a local users file
// (users_file.h, the embedded default) and OpenLDAP (ldap_directory.h). Both answer without
// blocking the calling I/O thread; "Unavailable" means the directory could not answer (the
// caller then answers 451/454 — never accept an unknown recipient, never reject a valid one).
#pragma once
#include <utility>  // before Boost 1.74 Asio

#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "core/dependency.h"

namespace ldap {

enum class Lookup {
  Found,        // deliverable local recipient
  NotFound,     // no such recipient (and no catch-all for its domain)
  Disabled,     // exists, but the account is disabled/deleted: not deliverable
  Unavailable,  // directory unreachable, timed out, or errored
};

struct RecipientResult {
  Lookup status = Lookup::Unavailable;
  std::string mailbox;  // primary address of the account (e.g. `mail`), when Found
  std::string detail;   // for the log: why (e.g. "ldap://127.0.0.1:389 timed out")
};

enum class AuthStatus { Ok, BadCredentials, Disabled, Unavailable };

struct AuthResult {
  AuthStatus status = AuthStatus::Unavailable;
  std::vector<std::string> addresses;  // primary + alternate addresses the user may send as (lower-case)
  std::string detail;                  // for the log; never contains the password
};

class Directory {
 public:
  virtual ~Directory() = default;
  // `address` is a full address (local@domain); matching is case-insensitive on the domain and
  // exact-but-case-insensitive on the local part.
  virtual boost::asio::awaitable<RecipientResult> find_recipient(std::string address) = 0;
  // `user` is a login name or an address, as the client sent it in AUTH.
  virtual boost::asio::awaitable<AuthResult> authenticate(std::string user, std::string password) = 0;
  virtual std::string describe() const = 0;  // "users file /etc/mxfront/users" / "ldap ldap://a, ldap://b"
  // The servers it depends on, for /health: each check does what a lookup does (connect, bind as
  // the configured DN, read the base), so a wrong bind DN or password shows as down. Blocking and
  // bounded; run by the dependency monitor, never on an I/O thread. None for a local file.
  virtual std::vector<core::Dependency> dependencies() const { return {}; }
};

}  // namespace ldap
