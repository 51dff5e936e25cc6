// Users file: parser, password verification and the in-memory directory (users_file.h).
#include "directory/users_file.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/base64.h"
#include "core/log.h"
#include "core/text.h"

namespace ldap {
namespace {

// Costs what verifying a default SHA-512-crypt hash costs; used for unknown logins.
constexpr const char* kDummySetting = "$6$mxfrontdummy00$";

using core::domain_of;
using core::iequals;

// ---- password hashes ----------------------------------------------------------------------

bool has_prefix_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::optional<PasswordHash> parse_salted(std::string_view b64, PasswordHash::Scheme scheme,
                                         size_t digest_len, std::string_view name, std::string& error) {
  auto raw = core::base64_decode(b64);  // strict: canonical, padded base64 only
  if (!raw || raw->size() <= digest_len) {
    error = fmt::format("{} value is not base64 of a {}-byte digest followed by a salt", name, digest_len);
    return std::nullopt;
  }
  PasswordHash h;
  h.scheme = scheme;
  h.digest = raw->substr(0, digest_len);
  h.salt = raw->substr(digest_len);
  return h;
}

// Modern methods are CRYPT_SALT_OK; libxcrypt calls $5$ and $1$ "legacy" but still computes them,
// and old directories hold them. Invalid or disabled methods would never verify: refuse them.
bool usable_crypt(const std::string& h) {
  int rc = crypt_checksalt(h.c_str());
  return rc == CRYPT_SALT_OK || rc == CRYPT_SALT_METHOD_LEGACY || rc == CRYPT_SALT_TOO_CHEAP;
}

std::optional<PasswordHash> parse_crypt(std::string_view s, std::string& error) {
  std::string str(s);
  if (str.size() < 4 || str[0] != '$' || !usable_crypt(str)) {
    error = fmt::format("'{}' is not a crypt(3) hash this libcrypt accepts ($6$, $5$, $y$, $2b$ ...)",
                        str.substr(0, 4));
    return std::nullopt;
  }
  PasswordHash h;
  h.scheme = PasswordHash::Scheme::Crypt;
  h.digest = std::move(str);
  return h;
}

std::optional<std::string> digest(const EVP_MD* md, std::string_view a, std::string_view b) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, md, nullptr) == 1 && EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
            EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return std::nullopt;
  return std::string(reinterpret_cast<char*>(out), len);
}

bool same(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// crypt_r with a per-thread work area (struct crypt_data is ~32 KB: not for the stack).
std::optional<std::string> crypt_string(const std::string& password, const char* setting) {
  thread_local std::unique_ptr<crypt_data> data;
  if (!data) data = std::make_unique<crypt_data>();  // value-initialised: initialized = 0
  const char* out = crypt_r(password.c_str(), setting, data.get());
  if (!out || out[0] == '*') return std::nullopt;
  return std::string(out);
}

// ---- users file lines -----------------------------------------------------------------------

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> f;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size() || line[i] == '#') break;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    f.push_back(line.substr(i, j - i));
    i = j;
  }
  return f;
}

bool valid_address(std::string_view a) {
  auto at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) return false;
  return std::none_of(a.begin(), a.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x21 || u == 0x7f || c == ',';
  });
}

// Parses one non-empty line into `u`; returns the error text (empty when fine).
std::string parse_line(const std::vector<std::string_view>& f, const config::Directory& opts, UserEntry& u) {
  if (f.size() < 2) return "expected: address password-hash [status [alternate,addresses,...]]";
  if (f.size() > 4) return "too many fields: expected address password-hash [status [alternate,addresses,...]]";
  if (!valid_address(f[0])) return fmt::format("'{}' is not an address (local@domain)", f[0]);
  u.address = core::lowercase(f[0]);
  std::string err;
  auto h = parse_password_hash(f[1], err);
  if (!h) return err;
  u.hash = std::move(*h);
  if (f.size() >= 3) {
    bool active = iequals(f[2], "active");
    u.disabled = std::any_of(opts.disabled_values.begin(), opts.disabled_values.end(),
                             [&](const std::string& v) { return iequals(v, f[2]); });
    if (!active && !u.disabled)
      return fmt::format("unknown status '{}' (expected active or one of: {})", f[2],
                         fmt::join(opts.disabled_values, ", "));
  }
  if (f.size() == 4) {
    std::string_view list = f[3];
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = std::min(list.find(',', start), list.size());
      auto alt = list.substr(start, comma - start);
      if (!valid_address(alt)) return fmt::format("'{}' is not an alternate address (local@domain)", alt);
      u.alternates.push_back(core::lowercase(alt));
      start = comma + 1;
    }
  }
  return {};
}

// Registers every address of users[i]; returns the error text (empty when fine).
std::string index_user(UsersTable& t, size_t i) {
  const UserEntry& u = t.users[i];
  std::vector<std::string> all{u.address};
  all.insert(all.end(), u.alternates.begin(), u.alternates.end());
  for (const auto& a : all) {
    auto [it, inserted] = t.by_address.emplace(a, i);
    if (!inserted)
      return fmt::format("address {} is already used on line {}", a, t.users[it->second].line);
  }
  return {};
}

}  // namespace

std::optional<PasswordHash> parse_password_hash(std::string_view field, std::string& error) {
  if (field == "-") return PasswordHash{};
  if (has_prefix_ci(field, "{SSHA}"))
    return parse_salted(field.substr(6), PasswordHash::Scheme::Ssha, 20, "{SSHA}", error);
  if (has_prefix_ci(field, "{SSHA512}"))
    return parse_salted(field.substr(9), PasswordHash::Scheme::Ssha512, 64, "{SSHA512}", error);
  if (has_prefix_ci(field, "{CRYPT}")) return parse_crypt(field.substr(7), error);
  if (!field.empty() && field[0] == '$') return parse_crypt(field, error);
  error = "unknown password hash (expected {SSHA}, {SSHA512}, {CRYPT}, a crypt(3) $id$ string or -)";
  return std::nullopt;
}

std::string cost_class(const PasswordHash& hash) {
  switch (hash.scheme) {
    case PasswordHash::Scheme::NoLogin: return "-";
    case PasswordHash::Scheme::Ssha: return "{SSHA}";
    case PasswordHash::Scheme::Ssha512: return "{SSHA512}";
    case PasswordHash::Scheme::Crypt: break;
  }
  const std::string& s = hash.digest;
  if (s.rfind("$2", 0) == 0) {  // bcrypt: $2b$cost$ then salt and digest in one field
    size_t p = s.find('$', 4);
    return p == std::string::npos ? s : s.substr(0, p + 1);
  }
  size_t last = s.rfind('$');  // the others end in $salt$digest
  if (last == std::string::npos || last == 0) return s;
  size_t prev = s.rfind('$', last - 1);
  return prev == std::string::npos ? s : s.substr(0, prev + 1);
}

bool verify_password(const PasswordHash& hash, std::string_view password) {
  switch (hash.scheme) {
    case PasswordHash::Scheme::NoLogin:
      return false;
    case PasswordHash::Scheme::Ssha: {
      auto d = digest(EVP_sha1(), password, hash.salt);
      return d && same(*d, hash.digest);
    }
    case PasswordHash::Scheme::Ssha512: {
      auto d = digest(EVP_sha512(), password, hash.salt);
      return d && same(*d, hash.digest);
    }
    case PasswordHash::Scheme::Crypt: {
      auto out = crypt_string(std::string(password), hash.digest.c_str());
      return out && same(*out, hash.digest);
    }
  }
  return false;
}

UsersTableOrError parse_users(std::string_view text, const std::string& source, const config::Directory& opts) {
  UsersTable t;
  size_t lineno = 0;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto fields = split_fields(line);
    if (fields.empty()) continue;
    UserEntry u;
    u.line = lineno;
    std::string err = parse_line(fields, opts, u);
    if (err.empty()) {
      t.users.push_back(std::move(u));
      err = index_user(t, t.users.size() - 1);
    }
    if (!err.empty()) return {std::nullopt, fmt::format("{}:{}: {}", source, lineno, err)};
  }
  return {std::move(t), {}};
}

// ---- the directory ------------------------------------------------------------------------

UsersFileDirectory::UsersFileDirectory(UsersTable table, std::string source, const config::Directory& opts,
                                       std::shared_ptr<net::BlockingPool> pool)
    : table_(std::move(table)), source_(std::move(source)), pool_(std::move(pool)) {
  for (const auto& d : opts.catchall_domains) catchall_.push_back(core::lowercase(d));
  // The decoy: one hash of each kind in the file is timed (best of two); the slowest kind wins.
  decoy_ = PasswordHash{PasswordHash::Scheme::Crypt, kDummySetting, {}};  // no login in the file
  double slowest = -1;
  std::vector<std::string> seen;
  for (const auto& u : table_.users) {
    if (u.hash.scheme == PasswordHash::Scheme::NoLogin) continue;
    std::string cls = cost_class(u.hash);
    if (std::find(seen.begin(), seen.end(), cls) != seen.end()) continue;
    seen.push_back(cls);
    double best = 1e9;
    for (int i = 0; i < 2; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      (void)verify_password(u.hash, "mxfront decoy timing");
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (best > slowest) {
      slowest = best;
      decoy_ = u.hash;  // only its cost is used: a decoy check never decides anything
    }
  }
  decoy_class_ = cost_class(decoy_);
}

std::string UsersFileDirectory::describe() const { return "users file " + source_; }

const UserEntry* UsersFileDirectory::find(std::string_view address) const {
  auto it = table_.by_address.find(core::lowercase(address));
  return it == table_.by_address.end() ? nullptr : &table_.users[it->second];
}

RecipientResult UsersFileDirectory::lookup(std::string_view address) {
  if (const UserEntry* u = find(address)) {
    if (u->disabled) {
      disabled_.fetch_add(1, std::memory_order_relaxed);
      return {Lookup::Disabled, u->address, fmt::format("{} line {}: account disabled", source_, u->line)};
    }
    found_.fetch_add(1, std::memory_order_relaxed);
    return {Lookup::Found, u->address, {}};
  }
  std::string domain = core::lowercase(domain_of(address));
  if (!domain.empty() && std::find(catchall_.begin(), catchall_.end(), domain) != catchall_.end()) {
    catchall_hits_.fetch_add(1, std::memory_order_relaxed);
    return {Lookup::Found, core::lowercase(address), "catch-all domain " + domain};
  }
  not_found_.fetch_add(1, std::memory_order_relaxed);
  return {Lookup::NotFound, {}, {}};
}

boost::asio::awaitable<RecipientResult> UsersFileDirectory::find_recipient(std::string address) {
  co_return lookup(address);
}

boost::asio::awaitable<AuthResult> UsersFileDirectory::authenticate(std::string user, std::string password) {
  if (password.empty() || password.find('\0') != std::string::npos) {
    auth_bad_.fetch_add(1, std::memory_order_relaxed);
    co_return AuthResult{AuthStatus::BadCredentials, {}, "empty password"};
  }
  const UserEntry* u = find(user);
  bool real = u && u->hash.scheme != PasswordHash::Scheme::NoLogin;
  // Unknown logins and `-` cost one decoy check; a faster kind of hash pays for the decoy too.
  PasswordHash hash = real ? u->hash : decoy_;
  bool pad = real && cost_class(u->hash) != decoy_class_;
  // A named closure: GCC 12 miscompiles closure temporaries passed to a coroutine (blocking_pool.h).
  auto check = [hash = std::move(hash), decoy = pad ? decoy_ : PasswordHash{}, pad, real,
                password = std::move(password)] {
    bool ok = verify_password(hash, password);
    if (pad) (void)verify_password(decoy, password);
    return ok && real;
  };
  auto ok = co_await pool_->run(std::move(check));
  co_return finish_auth(u, user, ok);
}

AuthResult UsersFileDirectory::finish_auth(const UserEntry* u, const std::string& login, std::optional<bool> ok) {
  if (!ok) {
    auth_unavailable_.fetch_add(1, std::memory_order_relaxed);
    core::log().warn("directory {}: password check for {} not run: pool {} full", source_, core::quoted_for_log(login),
                     pool_->name());
    return {AuthStatus::Unavailable, {}, "password check queue full"};
  }
  if (!u || !*ok) {
    auth_bad_.fetch_add(1, std::memory_order_relaxed);
    const char* why = !u ? "unknown user"
                      : u->hash.scheme == PasswordHash::Scheme::NoLogin ? "login not allowed (-)"
                                                                        : "wrong password";
    return {AuthStatus::BadCredentials, {}, why};
  }
  if (u->disabled) {
    auth_disabled_.fetch_add(1, std::memory_order_relaxed);
    return {AuthStatus::Disabled, {}, "account disabled"};
  }
  auth_ok_.fetch_add(1, std::memory_order_relaxed);
  AuthResult r{AuthStatus::Ok, {u->address}, {}};
  r.addresses.insert(r.addresses.end(), u->alternates.begin(), u->alternates.end());
  return r;
}

UsersFileDirectory::Stats UsersFileDirectory::stats() const {
  return Stats{found_.load(), not_found_.load(), disabled_.load(), catchall_hits_.load(),
               auth_ok_.load(), auth_bad_.load(), auth_disabled_.load(), auth_unavailable_.load()};
}

UsersFileOrError load_users_file(const config::Directory& opts, std::shared_ptr<net::BlockingPool> pool) {
  std::ifstream f(opts.users_file, std::ios::binary);
  if (!f) return {nullptr, fmt::format("{}: cannot read: {}", opts.users_file, std::strerror(errno))};
  std::stringstream buf;
  buf << f.rdbuf();
  if (f.bad()) return {nullptr, fmt::format("{}: read error", opts.users_file)};
  auto parsed = parse_users(buf.str(), opts.users_file, opts);
  if (!parsed.table) return {nullptr, parsed.error};
  if (!pool) return {nullptr, "users file directory needs a worker pool"};
  auto dir = std::make_shared<UsersFileDirectory>(std::move(*parsed.table), opts.users_file, opts, std::move(pool));
  core::log().info("directory: {} users from {}", dir->users(), opts.users_file);
  return {dir, {}};
}

}  // namespace ldap
