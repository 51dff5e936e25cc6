// OpenLDAP directory (ldap_directory.h): pool jobs doing synchronous libldap calls on per-thread
// connections, with URI failover; the coroutines only check the cache and hop to the pool.
#include "directory/ldap_directory.h"

// libldap names its opaque handle `struct ldap` (`typedef struct ldap LDAP;`), which clashes with
// our namespace ldap. The tag is only ever used through LDAP* and the functions are extern "C",
// so renaming the tag in this file changes nothing at the ABI level.
#define ldap openldap_handle
#include <ldap.h>
#undef ldap

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "core/log.h"
#include "core/text.h"
#include "directory/cache.h"
#include "directory/escape.h"
#include "directory/factory.h"

namespace ldap {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kFailback = std::chrono::seconds(60);

using core::domain_of;
using core::iequals;

timeval to_timeval(std::chrono::duration<double> d) {
  double s = std::max(d.count(), 0.001);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(s);
  tv.tv_usec = static_cast<suseconds_t>((s - static_cast<double>(tv.tv_sec)) * 1e6);
  return tv;
}

// One pool thread's search connection.
struct Conn {
  LDAP* ld = nullptr;
  size_t uri = 0;
  Clock::time_point since{};
};

void close_handle(LDAP*& ld) {
  if (ld) ldap_unbind_ext_s(ld, nullptr, nullptr);
  ld = nullptr;
}

// One search result entry, with the attributes we asked for.
struct Entry {
  std::string dn;
  std::vector<std::string> mail;        // lower-case
  std::vector<std::string> alternates;  // lower-case
  std::string status;
};

struct Search {
  bool ok = false;
  std::vector<Entry> entries;
  bool truncated = false;      // size limit hit: more entries exist
  size_t uri = 0;              // the URI that answered
  std::string errors;          // "uri: what failed" for every failed attempt, "; "-separated
  std::vector<size_t> failed;  // the URIs of those attempts
};

// Server or connection failures: try the next URI, and in the end answer Unavailable.
bool server_failure(int rc) {
  return rc < 0 || rc == LDAP_BUSY || rc == LDAP_UNAVAILABLE || rc == LDAP_OTHER ||
         rc == LDAP_TIMELIMIT_EXCEEDED || rc == LDAP_ADMINLIMIT_EXCEEDED;
}

std::string ldap_error(LDAP* ld, int rc) {
  std::string s = fmt::format("{} ({})", ldap_err2string(rc), rc);
  char* diag = nullptr;
  if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag) {
    if (*diag) s += fmt::format(": {}", diag);
    ldap_memfree(diag);
  }
  return s;
}

int simple_bind(LDAP* ld, const std::string& dn, const std::string& password) {
  berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
  return ldap_sasl_bind_s(ld, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
}

std::vector<std::string> values(LDAP* ld, LDAPMessage* e, const std::string& attr) {
  std::vector<std::string> out;
  if (attr.empty()) return out;
  berval** v = ldap_get_values_len(ld, e, attr.c_str());
  if (!v) return out;
  for (berval** p = v; *p; ++p) out.emplace_back((*p)->bv_val, (*p)->bv_len);
  ldap_value_free_len(v);
  return out;
}

}  // namespace

// Everything the pool jobs need. Jobs hold a shared_ptr to it, so it outlives every running job;
// the pool is not owned here (a job must never drop the last reference to its own pool).
struct LdapDirectory::Core {
  config::Directory opts;
  std::string bind_password;
  std::vector<std::string> catchall;  // lower-case
  std::vector<std::string> attr_names;
  std::vector<char*> attrs;           // attr_names as a NULL-terminated array for libldap
  timeval tv{};
  const net::BlockingPool* pool = nullptr;  // identity, to find this thread's slot
  std::vector<Conn> slots;                  // slots[i] is used only by pool thread i
  RecipientCache cache;
  std::atomic<uint64_t> found{0}, not_found{0}, disabled{0}, unavailable{0}, catchall_hits{0};
  std::atomic<uint64_t> auth_ok{0}, auth_bad{0}, auth_disabled{0}, auth_unavailable{0};
  std::atomic<uint64_t> uri_failures{0}, connects{0}, shed{0};

  Core(const config::Directory& o, std::string password, const net::BlockingPool& p)
      : opts(o),
        bind_password(std::move(password)),
        tv(to_timeval(o.timeout)),
        pool(&p),
        slots(p.threads()),
        cache(o.cache_size, o.positive_ttl, o.negative_ttl) {
    for (const auto& d : o.catchall_domains) catchall.push_back(core::lowercase(d));
    attr_names.push_back(o.mail_attribute);
    attr_names.insert(attr_names.end(), o.alternate_attributes.begin(), o.alternate_attributes.end());
    if (!o.status_attribute.empty()) attr_names.push_back(o.status_attribute);
    for (auto& a : attr_names) attrs.push_back(a.data());
    attrs.push_back(nullptr);
  }
  ~Core() {
    for (auto& s : slots) close_handle(s.ld);
  }

  Conn& slot() {
    auto i = pool->thread_index();
    if (!i || *i >= slots.size()) {
      core::log().critical("ldap directory job outside its pool");
      std::abort();
    }
    return slots[*i];
  }

  const std::string& uri(size_t i) const { return opts.uris[i]; }

  bool is_disabled(const Entry& e) const {
    if (e.status.empty()) return false;
    return std::any_of(opts.disabled_values.begin(), opts.disabled_values.end(),
                       [&](const std::string& v) { return iequals(v, e.status); });
  }

  // A handle connected to uris[i] (no bind yet), or nullptr with `err` set.
  LDAP* open_handle(size_t i, std::string& err) {
    LDAP* ld = nullptr;
    int rc = ldap_initialize(&ld, uri(i).c_str());
    if (rc != LDAP_SUCCESS) {
      err = fmt::format("{}: initialize: {}", uri(i), ldap_err2string(rc));
      return nullptr;
    }
    int v3 = LDAP_VERSION3;
    int limit = static_cast<int>(std::ceil(opts.timeout.count()));
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMELIMIT, &limit);
    rc = ldap_connect(ld);
    if (rc != LDAP_SUCCESS) {
      err = fmt::format("{}: connect: {}", uri(i), ldap_error(ld, rc));
      close_handle(ld);
    }
    return ld;
  }

  // A search connection to uris[i]: connected and bound as bind_dn (or anonymous).
  LDAP* open_search_handle(size_t i, std::string& err) {
    LDAP* ld = open_handle(i, err);
    if (!ld) return nullptr;
    connects.fetch_add(1, std::memory_order_relaxed);
    if (opts.bind_dn.empty()) return ld;
    int rc = simple_bind(ld, opts.bind_dn, bind_password);
    if (rc == LDAP_SUCCESS) return ld;
    err = fmt::format("{}: bind as {}: {}", uri(i), opts.bind_dn, ldap_error(ld, rc));
    close_handle(ld);
    return nullptr;
  }

  // The health of uris[i] as a lookup would find it: connect, bind as bind_dn, read base_dn
  // (scope base). "" when all three work, else what failed. Blocking, bounded by opts.timeout.
  std::string health(size_t i) {
    std::string err;
    LDAP* ld = open_search_handle(i, err);
    if (!ld) return err;
    LDAPMessage* res = nullptr;
    timeval tv_copy = tv;
    char* no_attrs[] = {const_cast<char*>(LDAP_NO_ATTRS), nullptr};
    int rc = ldap_search_ext_s(ld, opts.base_dn.c_str(), LDAP_SCOPE_BASE, "(objectClass=*)", no_attrs, 0, nullptr,
                               nullptr, &tv_copy, 1, &res);
    if (res) ldap_msgfree(res);
    if (rc != LDAP_SUCCESS) err = fmt::format("{}: read base {}: {}", uri(i), opts.base_dn, ldap_error(ld, rc));
    close_handle(ld);
    return err;
  }

  // One search on `ld`: 0 and the entries, or the libldap error code.
  int search_once(LDAP* ld, const std::string& filter, Search& s) {
    LDAPMessage* res = nullptr;
    timeval tv_copy = tv;
    int rc = ldap_search_ext_s(ld, opts.base_dn.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), attrs.data(), 0,
                               nullptr, nullptr, &tv_copy, 2, &res);
    if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED) {
      s.truncated = rc == LDAP_SIZELIMIT_EXCEEDED;
      s.entries = parse_entries(ld, res);
      rc = LDAP_SUCCESS;
    }
    if (res) ldap_msgfree(res);
    return rc;
  }

  std::vector<Entry> parse_entries(LDAP* ld, LDAPMessage* res) {
    std::vector<Entry> out;
    for (LDAPMessage* m = ldap_first_entry(ld, res); m; m = ldap_next_entry(ld, m)) {
      Entry e;
      if (char* dn = ldap_get_dn(ld, m)) {
        e.dn = dn;
        ldap_memfree(dn);
      }
      for (auto& v : values(ld, m, opts.mail_attribute)) e.mail.push_back(core::lowercase(v));
      for (const auto& a : opts.alternate_attributes)
        for (auto& v : values(ld, m, a)) e.alternates.push_back(core::lowercase(v));
      auto st = values(ld, m, opts.status_attribute);
      if (!st.empty()) e.status = st.front();
      out.push_back(std::move(e));
    }
    return out;
  }

  void note_failure(Search& s, size_t i, std::string_view what) {
    uri_failures.fetch_add(1, std::memory_order_relaxed);
    if (!s.errors.empty()) s.errors += "; ";
    s.errors += what;
    s.failed.push_back(i);
  }

  // Searches with failover (header: "Failover"). Uses and refreshes this thread's connection.
  Search search(const std::string& filter) {
    Search s;
    Conn& c = slot();
    std::vector<bool> tried(opts.uris.size(), false);
    if (c.ld && c.uri != 0 && Clock::now() - c.since > kFailback) close_handle(c.ld);
    if (c.ld) {
      int rc = search_once(c.ld, filter, s);
      if (rc == LDAP_SUCCESS) {
        s.ok = true;
        s.uri = c.uri;
        return s;
      }
      note_failure(s, c.uri, fmt::format("{}: search: {}", uri(c.uri), ldap_error(c.ld, rc)));
      if (rc != LDAP_SERVER_DOWN) tried[c.uri] = true;  // server down: maybe a stale connection
      close_handle(c.ld);
    }
    for (size_t i = 0; i < opts.uris.size(); ++i) {
      if (tried[i]) continue;
      std::string err;
      LDAP* ld = open_search_handle(i, err);
      if (!ld) {
        note_failure(s, i, err);
        continue;
      }
      int rc = search_once(ld, filter, s);
      if (rc != LDAP_SUCCESS) {
        note_failure(s, i, fmt::format("{}: search: {}", uri(i), ldap_error(ld, rc)));
        close_handle(ld);
        continue;
      }
      c = Conn{ld, i, Clock::now()};
      s.ok = true;
      s.uri = i;
      return s;
    }
    return s;
  }

  // Unavailable and failover are warnings; reopening a kept connection to the same URI (the
  // server restarted or closed an idle connection) is only news.
  void log_search(const Search& s, std::string_view what) {
    if (s.errors.empty()) return;
    bool same_uri = std::all_of(s.failed.begin(), s.failed.end(), [&](size_t i) { return i == s.uri; });
    if (!s.ok) core::log().warn("directory unavailable for {}: {}", what, s.errors);
    else if (same_uri) core::log().info("directory: {}: reconnected to {} after: {}", what, uri(s.uri), s.errors);
    else core::log().warn("directory: {} answered by {} after: {}", what, uri(s.uri), s.errors);
  }

  RecipientResult classify(const Search& s, const std::string& key) {
    if (s.entries.size() > 1 || s.truncated)
      core::log().warn("directory: {} matches several entries ({}{})", core::quoted_for_log(key), s.entries[0].dn,
                       s.truncated ? ", ..." : fmt::format(", {}", s.entries[1].dn));
    const Entry* active = nullptr;
    for (const auto& e : s.entries)
      if (!active && !is_disabled(e)) active = &e;
    if (active) {
      std::string mailbox = active->mail.empty() ? key : active->mail.front();
      return {Lookup::Found, mailbox, uri(s.uri)};
    }
    const Entry& e = s.entries.front();
    return {Lookup::Disabled, e.mail.empty() ? key : e.mail.front(),
            fmt::format("{} {}={}", e.dn, opts.status_attribute, e.status)};
  }

  RecipientResult recipient_job(const std::string& key) {
    Search s = search(build_filter(opts.recipient_filter, key));
    log_search(s, "rcpt " + core::quoted_for_log(key));
    if (!s.ok) return {Lookup::Unavailable, {}, s.errors};
    RecipientResult r;
    if (!s.entries.empty()) {
      r = classify(s, key);
    } else {
      std::string domain(domain_of(key));
      bool catchall_domain = !domain.empty() && std::find(catchall.begin(), catchall.end(), domain) != catchall.end();
      r = catchall_domain ? RecipientResult{Lookup::Found, key, "catch-all domain " + domain}
                          : RecipientResult{Lookup::NotFound, {}, uri(s.uri)};
      if (catchall_domain) catchall_hits.fetch_add(1, std::memory_order_relaxed);
    }
    cache.put(key, r);
    return r;
  }

  enum class Bind { Ok, Bad, Failed };
  struct BindOutcome {
    Bind result = Bind::Failed;
    std::string detail;
  };

  // The user's own simple bind, each attempt on a fresh connection closed right after. Tries the
  // URI that answered the search first, then the others in order, while the servers fail.
  BindOutcome user_bind(size_t first, const std::string& dn, const std::string& password) {
    std::vector<size_t> order{first};
    for (size_t i = 0; i < opts.uris.size(); ++i)
      if (i != first) order.push_back(i);
    BindOutcome out;
    for (size_t i : order) {
      std::string err;
      LDAP* ld = open_handle(i, err);
      if (!ld) {
        uri_failures.fetch_add(1, std::memory_order_relaxed);
        out.detail += (out.detail.empty() ? "" : "; ") + err;
        continue;
      }
      int rc = simple_bind(ld, dn, password);
      std::string what = fmt::format("{}: bind as {}: {}", uri(i), dn, ldap_error(ld, rc));
      close_handle(ld);
      if (rc == LDAP_SUCCESS) return {Bind::Ok, {}};
      if (!server_failure(rc)) return {Bind::Bad, what};
      uri_failures.fetch_add(1, std::memory_order_relaxed);
      out.detail += (out.detail.empty() ? "" : "; ") + what;
    }
    return out;
  }

  AuthResult auth_job(const std::string& login, const std::string& password) {
    Search s = search(build_filter(opts.login_filter, login));
    log_search(s, "auth " + core::quoted_for_log(login));
    if (!s.ok) return {AuthStatus::Unavailable, {}, s.errors};
    if (s.entries.empty()) return {AuthStatus::BadCredentials, {}, "unknown user"};
    if (s.entries.size() > 1 || s.truncated) {
      core::log().warn("directory: login {} matches several entries; refused", core::quoted_for_log(login));
      return {AuthStatus::BadCredentials, {}, "ambiguous login"};
    }
    const Entry& e = s.entries.front();
    BindOutcome b = user_bind(s.uri, e.dn, password);
    if (b.result == Bind::Failed) {
      core::log().warn("directory unavailable for auth {}: {}", core::quoted_for_log(login), core::safe_text(b.detail));
      return {AuthStatus::Unavailable, {}, b.detail};
    }
    if (b.result == Bind::Bad) return {AuthStatus::BadCredentials, {}, b.detail};
    if (is_disabled(e)) return {AuthStatus::Disabled, {}, fmt::format("{} {}={}", e.dn, opts.status_attribute, e.status)};
    AuthResult r{AuthStatus::Ok, {}, e.dn};
    for (const auto* list : {&e.mail, &e.alternates})
      for (const auto& a : *list)
        if (std::find(r.addresses.begin(), r.addresses.end(), a) == r.addresses.end()) r.addresses.push_back(a);
    return r;
  }

  void count(Lookup l) {
    switch (l) {
      case Lookup::Found: found.fetch_add(1, std::memory_order_relaxed); break;
      case Lookup::NotFound: not_found.fetch_add(1, std::memory_order_relaxed); break;
      case Lookup::Disabled: disabled.fetch_add(1, std::memory_order_relaxed); break;
      case Lookup::Unavailable: unavailable.fetch_add(1, std::memory_order_relaxed); break;
    }
  }

  void count(AuthStatus a) {
    switch (a) {
      case AuthStatus::Ok: auth_ok.fetch_add(1, std::memory_order_relaxed); break;
      case AuthStatus::BadCredentials: auth_bad.fetch_add(1, std::memory_order_relaxed); break;
      case AuthStatus::Disabled: auth_disabled.fetch_add(1, std::memory_order_relaxed); break;
      case AuthStatus::Unavailable: auth_unavailable.fetch_add(1, std::memory_order_relaxed); break;
    }
  }
};

LdapDirectory::LdapDirectory(std::shared_ptr<Core> core, std::shared_ptr<net::BlockingPool> pool)
    : core_(std::move(core)), pool_(std::move(pool)) {}

LdapDirectory::~LdapDirectory() = default;

boost::asio::awaitable<RecipientResult> LdapDirectory::find_recipient(std::string address) {
  std::string key = core::lowercase(address);
  std::optional<RecipientResult> r = core_->cache.get(key);
  if (r) r->detail = "cached: " + r->detail;
  if (!r) {
    auto job = [c = core_, key] { return c->recipient_job(key); };  // named: see blocking_pool.h
    r = co_await pool_->run(std::move(job));
  }
  if (!r) {
    core_->shed.fetch_add(1, std::memory_order_relaxed);
    core::log().warn("directory unavailable for rcpt {}: pool {} full ({} pending)", core::quoted_for_log(key), pool_->name(),
                     pool_->pending());
    r = RecipientResult{Lookup::Unavailable, {}, "directory queue full"};
  }
  core_->count(r->status);
  co_return std::move(*r);
}

boost::asio::awaitable<AuthResult> LdapDirectory::authenticate(std::string user, std::string password) {
  std::optional<AuthResult> r;
  if (password.empty() || password.find('\0') != std::string::npos) {
    r = AuthResult{AuthStatus::BadCredentials, {}, "empty password"};
  } else {
    auto job = [c = core_, user, password = std::move(password)] { return c->auth_job(user, password); };
    r = co_await pool_->run(std::move(job));  // named: see blocking_pool.h
  }
  if (!r) {
    core_->shed.fetch_add(1, std::memory_order_relaxed);
    core::log().warn("directory unavailable for auth {}: pool {} full ({} pending)", core::quoted_for_log(user), pool_->name(),
                     pool_->pending());
    r = AuthResult{AuthStatus::Unavailable, {}, "directory queue full"};
  }
  core_->count(r->status);
  co_return std::move(*r);
}

std::vector<core::Dependency> LdapDirectory::dependencies() const {
  std::vector<core::Dependency> deps;
  for (size_t i = 0; i < core_->opts.uris.size(); ++i)
    deps.push_back({"ldap", core_->opts.uris[i], [c = core_, i] { return c->health(i); }});
  return deps;
}

std::string LdapDirectory::describe() const { return "ldap " + fmt::format("{}", fmt::join(core_->opts.uris, ", ")); }

LdapDirectory::Stats LdapDirectory::stats() const {
  const Core& c = *core_;
  auto cs = c.cache.stats();
  return Stats{c.found.load(),    c.not_found.load(), c.disabled.load(),      c.unavailable.load(),
               c.catchall_hits.load(), cs.hits,       cs.misses,             c.auth_ok.load(),
               c.auth_bad.load(), c.auth_disabled.load(), c.auth_unavailable.load(), c.uri_failures.load(),
               c.connects.load(), c.shed.load()};
}

// ---- construction ---------------------------------------------------------------------------

namespace {

std::string check_options(const config::Directory& o) {
  if (o.uris.empty()) return "directory: type \"ldap\" needs at least one URI";
  for (const auto& u : o.uris) {
    LDAPURLDesc* lud = nullptr;
    int rc = ldap_url_parse(u.c_str(), &lud);
    if (lud) ldap_free_urldesc(lud);
    if (rc != LDAP_URL_SUCCESS) return fmt::format("directory: '{}' is not a valid LDAP URI", u);
  }
  if (o.base_dn.empty()) return "directory: type \"ldap\" needs base_dn";
  if (o.recipient_filter.find("%s") == std::string::npos)
    return "directory: recipient_filter has no %s (it would match every address)";
  if (o.login_filter.find("%s") == std::string::npos)
    return "directory: login_filter has no %s (it would match every login)";
  if (o.mail_attribute.empty()) return "directory: mail_attribute is empty";
  if (!o.bind_dn.empty() && o.bind_password_file.empty())
    return "directory: bind_dn needs bind_password_file (an empty password would be an anonymous bind)";
  if (o.bind_dn.empty() && !o.bind_password_file.empty())
    return "directory: bind_password_file is set but bind_dn is empty";
  return {};
}

// The first line of the password file, or an error.
std::string read_password(const std::string& path, std::string& error) {
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line)) {
    error = fmt::format("directory: cannot read bind_password_file {}: {}", path,
                        errno ? std::strerror(errno) : "empty file");
    return {};
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) error = fmt::format("directory: bind_password_file {}: the first line is empty", path);
  return line;
}

}  // namespace

LdapDirectoryOrError make_ldap_directory(const config::Directory& opts, std::shared_ptr<net::BlockingPool> pool) {
  if (!pool) return {nullptr, "directory: ldap needs a worker pool"};
  if (std::string err = check_options(opts); !err.empty()) return {nullptr, err};
  std::string password;
  if (!opts.bind_dn.empty()) {
    std::string err;
    errno = 0;
    password = read_password(opts.bind_password_file, err);
    if (!err.empty()) return {nullptr, err};
  }
  auto core = std::make_shared<LdapDirectory::Core>(opts, std::move(password), *pool);
  auto dir = std::make_shared<LdapDirectory>(std::move(core), pool);
  core::log().info("directory: {}, {} threads (pool {})", dir->describe(), pool->threads(), pool->name());
  return {dir, {}};
}

}  // namespace ldap

namespace ldap {
bool uri_endpoint(const std::string& uri, std::string& host, uint16_t& port) {
  LDAPURLDesc* lud = nullptr;
  if (ldap_url_parse(uri.c_str(), &lud) != LDAP_URL_SUCCESS || !lud) return false;
  std::string scheme = lud->lud_scheme ? lud->lud_scheme : "ldap";
  bool ok = scheme != "ldapi";
  if (ok) {
    host = lud->lud_host && *lud->lud_host ? lud->lud_host : "127.0.0.1";
    port = static_cast<uint16_t>(lud->lud_port ? lud->lud_port : scheme == "ldaps" ? 636 : 389);
  }
  ldap_free_urldesc(lud);
  return ok;
}
}  // namespace ldap
