// The embedded default directory (directory.type = "file"): users and recipients from a local
// text file, loaded and validated once at start-up, answered from memory.
//
// File format — one user per line; `#` starts a comment (at the start of a line or after
// whitespace); blank lines are ignored; fields are separated by spaces or tabs:
//
//     address  password-hash  [status  [alternate,addresses,...]]
//
//   address        the primary address, local@domain (matched case-insensitively).
//   password-hash  {SSHA}base64      SHA-1 digest + salt, as `slappasswd -h {SSHA}` makes
//                  {SSHA512}base64   SHA-512 digest + salt (strict, padded base64: core/base64.h)
//                  {CRYPT}$6$...     or a bare crypt(3) string: $6$ (SHA-512), $5$ (SHA-256),
//                                    $y$ (yescrypt), $2b$ (bcrypt), $1$ (MD5, legacy); any `$id$`
//                                    method libcrypt can compute (no DES: it needs a `$`)
//                  -                 no login (a recipient only)
//   status         `active` (the default) or one of directory.disabled_values (case-insensitive):
//                  a disabled account is not deliverable and cannot log in.
//   alternates     comma-separated addresses that also deliver to this user and that the user may
//                  log in with and send as. No spaces inside the list.
//
// Example:
//     # address          password-hash (slappasswd -h {SSHA}, mkpasswd -m sha-512)  status  alternates
//     alice@example.org  {SSHA}...base64...   active    alias-alice@example.org,a.smith@example.org
//     bob@example.org    $6$salt$...hash...            # no status: active (alternates need one)
//     carol@example.org  -                    disabled
//
// Every error is reported as "path:line: what is wrong" and the whole file is refused.
// Contract of the directory:
//  * find_recipient answers from memory on the calling thread: Found (mailbox = primary address,
//    also for an alternate address), Disabled, NotFound — or Found for an unknown local part in a
//    directory.catchall_domains domain (mailbox = the address itself). Never Unavailable.
//  * authenticate takes the primary or any alternate address as the login (case-insensitive).
//    Password checks (crypt is CPU-heavy: SHA-512-crypt ~1 ms here) run on the BlockingPool; a full
//    pool answers Unavailable. Unknown users, wrong passwords, `-` hashes, empty passwords and
//    passwords containing NUL all answer BadCredentials. Timing does not reveal which logins
//    exist: at load the slowest kind of hash in the file is measured (scheme, crypt method and
//    cost: `$6$rounds=N$`, `$2b$12$`, `$y$j9T$`) and becomes the decoy; unknown users and `-`
//    hashes are checked against the decoy, and users whose hash is of a faster kind pay for the
//    decoy after their own check — every check costs at least the slowest kind. The password is
//    verified before the status: a disabled account answers Disabled only to its right password.
//    Hashes are compared in constant time (CRYPTO_memcmp).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "directory/directory.h"
#include "config/directory.h"
#include "net/blocking_pool.h"

namespace ldap {

// A parsed password hash. verify_password() never throws and takes the same time for a wrong
// password as for a right one (for the same hash).
struct PasswordHash {
  enum class Scheme { NoLogin, Ssha, Ssha512, Crypt };
  Scheme scheme = Scheme::NoLogin;
  std::string digest;  // Ssha/Ssha512: the raw digest; Crypt: the whole crypt(3) string
  std::string salt;    // Ssha/Ssha512
};

// Parses one password-hash field. On error returns nullopt and sets `error`.
std::optional<PasswordHash> parse_password_hash(std::string_view field, std::string& error);
bool verify_password(const PasswordHash& hash, std::string_view password);
// What the cost of verifying `hash` depends on: "{SSHA}", "{SSHA512}", "-", or the crypt setting
// without salt and digest ("$6$", "$6$rounds=90000$", "$2b$12$", "$y$j9T$").
std::string cost_class(const PasswordHash& hash);

struct UserEntry {
  std::string address;                  // primary, lower-case
  PasswordHash hash;
  bool disabled = false;
  std::vector<std::string> alternates;  // lower-case
  size_t line = 0;
};

struct UsersTable {
  std::vector<UserEntry> users;
  std::unordered_map<std::string, size_t> by_address;  // primary and alternates -> users[i]
};

struct UsersTableOrError {
  std::optional<UsersTable> table;
  std::string error;  // "source:line: what is wrong"
};

// Pure: parses a users file's text. `source` names it in errors.
UsersTableOrError parse_users(std::string_view text, const std::string& source, const config::Directory& opts);

class UsersFileDirectory final : public Directory {
 public:
  struct Stats {
    uint64_t found = 0, not_found = 0, disabled = 0, catchall = 0;
    uint64_t auth_ok = 0, auth_bad = 0, auth_disabled = 0, auth_unavailable = 0;
  };

  UsersFileDirectory(UsersTable table, std::string source, const config::Directory& opts,
                     std::shared_ptr<net::BlockingPool> pool);

  boost::asio::awaitable<RecipientResult> find_recipient(std::string address) override;
  boost::asio::awaitable<AuthResult> authenticate(std::string user, std::string password) override;
  std::string describe() const override;

  RecipientResult lookup(std::string_view address);  // the pure part of find_recipient
  const PasswordHash& decoy() const { return decoy_; }  // the slowest kind of hash in the file
  size_t users() const { return table_.users.size(); }
  Stats stats() const;

 private:
  const UserEntry* find(std::string_view address) const;
  AuthResult finish_auth(const UserEntry* user, const std::string& login, std::optional<bool> ok);

  UsersTable table_;
  std::string source_;
  std::vector<std::string> catchall_;  // lower-case
  std::shared_ptr<net::BlockingPool> pool_;
  PasswordHash decoy_;
  std::string decoy_class_;
  std::atomic<uint64_t> found_{0}, not_found_{0}, disabled_{0}, catchall_hits_{0};
  std::atomic<uint64_t> auth_ok_{0}, auth_bad_{0}, auth_disabled_{0}, auth_unavailable_{0};
};

struct UsersFileOrError {
  std::shared_ptr<UsersFileDirectory> dir;
  std::string error;
};

// Reads and parses opts.users_file. Never throws.
UsersFileOrError load_users_file(const config::Directory& opts, std::shared_ptr<net::BlockingPool> pool);

}  // namespace ldap
