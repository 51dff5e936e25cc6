// Rows of the parameter table and the typed setters they use.
#include "config/parameters.h"
#include "config/setters.h"

#include "core/domain.h"
#include "core/host_port.h"
#include "core/text.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

namespace config {
namespace {
using namespace setters;

std::string set_directory_type(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || (*s != "none" && *s != "file" && *s != "ldap")) return "expected \"none\", \"file\" or \"ldap\"";
  c.directory.type = *s;
  return {};
}

std::string set_ldap_uris(Config& c, Listener&, const toml::node& n) {
  std::string err;
  auto v = string_list(n, err);
  if (!err.empty()) return err;
  for (const auto& u : v)
    if (u.rfind("ldap://", 0) != 0 && u.rfind("ldaps://", 0) != 0 && u.rfind("ldapi://", 0) != 0)
      return fmt::format("'{}' is not an ldap://, ldaps:// or ldapi:// URI", u);
  c.directory.uris = std::move(v);
  return {};
}

std::string set_log_level(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  static const char* levels[] = {"trace", "debug", "info", "warn", "error"};
  if (s)
    for (const char* l : levels)
      if (*s == l) {
        c.log_level = *s;
        return {};
      }
  return "expected one of trace, debug, info, warn, error";
}

std::string set_hostname(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || !core::valid_domain(*s, core::DomainRules::Hostname)) return "expected a host name (letters, digits, '-', '.')";
  c.hostname = *s;
  return {};
}

std::string set_local_domains(Config& c, Listener&, const toml::node& n) {
  std::string err;
  auto list = string_list(n, err);
  if (!err.empty()) return err;
  c.local_domains.clear();
  for (auto& d : list) {
    if (!core::valid_domain(d, core::DomainRules::Hostname)) return fmt::format("'{}' is not a domain name", d);
    c.local_domains.push_back(core::lowercase(d));
  }
  return {};
}

// An address (local@domain, no spaces or control bytes, a valid domain); lower-cased domain.
std::string set_postmaster(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  const char* want = "expected an address, local@domain (e.g. \"postmaster@example.org\")";
  if (!s) return want;
  auto at = s->rfind('@');
  if (at == std::string::npos || at == 0 || s->size() > 254) return want;
  for (char ch : *s)
    if (static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7f || ch == '<' || ch == '>' || ch == '"')
      return want;
  std::string domain = s->substr(at + 1);
  if (!core::valid_domain(domain, core::DomainRules::Hostname)) return fmt::format("'{}' is not a domain name", domain);
  c.postmaster = s->substr(0, at + 1) + core::lowercase(domain);
  return {};
}

std::string set_qmqp_servers(Config& c, Listener&, const toml::node& n) {
  std::string err;
  auto list = string_list(n, err);
  if (!err.empty()) return err;
  if (list.empty()) return "needs at least one server";
  c.qmqp.servers.clear();
  for (auto& s : list) {
    Qmqp::Server srv;
    if (!parse_host_port(s, srv.host, srv.port, false, err)) return fmt::format("'{}': {}", s, err);
    c.qmqp.servers.push_back(srv);
  }
  return {};
}

std::string set_listener_address(Config&, Listener& l, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s) return "expected \"ip:port\" or \"[ipv6]:port\"";
  std::string err;
  if (!parse_host_port(*s, l.host, l.port, true, err)) return err;
  return {};
}

std::string set_listener_profile(Config&, Listener& l, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || (*s != "mx" && *s != "submission" && *s != "submissions"))
    return "expected \"mx\", \"submission\" or \"submissions\"";
  l.profile = *s;
  return {};
}

std::string set_listener_proxy(Config&, Listener& l, const toml::node& n) {
  auto v = n.value_exact<bool>();
  if (!v) return "expected true or false";
  l.proxy_protocol = *v;
  return {};
}

std::string set_listener_trusted(Config&, Listener& l, const toml::node& n) {
  std::string err;
  auto list = string_list(n, err);
  if (!err.empty()) return err;
  l.proxy_trusted.clear();
  for (const auto& s : list) {
    auto c = config_cidr(s, err);
    if (!c) return err;
    l.proxy_trusted.push_back(*c);
  }
  return {};
}

std::string set_admin_address(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s) return "expected \"ip:port\" or \"\"";
  if (s->empty()) {
    c.admin.host.clear();
    return {};
  }
  std::string err;
  if (!parse_host_port(*s, c.admin.host, c.admin.port, true, err)) return err;
  return {};
}

std::string set_redis_address(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s) return "expected \"host:port\" or \"\"";
  if (s->empty()) {
    c.redis.host.clear();
    return {};
  }
  std::string err;
  if (!parse_host_port(*s, c.redis.host, c.redis.port, false, err)) return err;
  return {};
}

std::string set_tls_version(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || (*s != "1.2" && *s != "1.3")) return "expected \"1.2\" or \"1.3\"";
  c.tls.min_version = *s;
  return {};
}

using ProfileSetter = std::function<std::string(Profile&, const toml::node&)>;
Setter none() { return {}; }

// The names are checked against the schema's filters by the loader, which knows them.
ProfileSetter profile_filters() {
  return [](Profile& p, const toml::node& n) -> std::string {
    std::string err;
    auto v = string_list(n, err);
    if (!err.empty()) return err;
    for (const auto& f : v)
      if (std::count(v.begin(), v.end(), f) > 1) return fmt::format("filter '{}' is listed twice", f);
    p.filters = std::move(v);
    return {};
  };
}

ProfileSetter profile_bool(bool Profile::*field) {
  return [field](Profile& p, const toml::node& n) -> std::string {
    auto v = n.value_exact<bool>();
    if (!v) return "expected true or false";
    p.*field = *v;
    return {};
  };
}

ProfileSetter profile_score(double Profile::*field) {
  return [field](Profile& p, const toml::node& n) -> std::string {
    std::optional<double> v;
    if (auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
    else if (auto d = n.value_exact<double>()) v = *d;
    if (!v || *v < 0 || *v > 1000) return "expected a score between 0 and 1000 (0 = off)";
    p.*field = *v;
    return {};
  };
}

ProfileSetter profile_size(size_t Profile::*field, int64_t max) {
  return [field, max](Profile& p, const toml::node& n) -> std::string {
    auto v = n.value_exact<int64_t>();
    if (!v || *v < 0 || *v > max) return fmt::format("expected an integer between 0 and {}", max);
    p.*field = static_cast<size_t>(*v);
    return {};
  };
}

constexpr int64_t kBig = int64_t{1} << 40;

}  // namespace

bool parse_host_port(std::string_view s, std::string& host, uint16_t& port, bool numeric, std::string& err) {
  core::HostPort hp;
  err = core::parse_host_port(s, hp, numeric ? core::HostSyntax::Numeric : core::HostSyntax::Name);
  if (!err.empty()) return false;
  host = std::move(hp.host);
  port = hp.port;
  return true;
}

namespace {
std::vector<Parameter> core_rows() {
    std::vector<Parameter> rows = {
      {"server", "hostname", "string", "gethostname()", "Name in the 220 greeting, EHLO reply and Received header.", set_hostname},
      {"server", "authserv_id", "string", "", "The authserv-id (RFC 8601) of the one Authentication-Results field spf, dkim and dmarc write; \"\" = server.hostname. Client-sent fields carrying it are removed, fields with any other id are kept. spf/dkim/dmarc.authserv_id are aliases: a different value there is a config error.",
       authserv_id_param()},
      {"server", "io_threads", "integer", "0", "I/O threads, each with its own event loop; 0 = one per CPU core.",
       size_param([](Config& c) -> unsigned& { return c.io_threads; }, 0, 256)},
      {"server", "shutdown_timeout", "seconds", "30", "On SIGTERM/SIGINT: how long in-flight sessions may take to finish before exit.",
       seconds_param([](Config& c) -> Seconds& { return c.shutdown_timeout; }, 0, 3600)},
      {"server", "user", "string", "\"\"", "Started as root: become this user (with its groups) before reading certificates, secrets and signatures, keeping only CAP_NET_BIND_SERVICE for the listeners. \"\" = no change (a warning when root). Ignored when not root (systemd: User=). Read at start only.",
       string_param([](Config& c) -> std::string& { return c.user; })},
      {"log", "level", "string", "info", "trace, debug, info, warn or error.", set_log_level},
      {"log", "syslog", "bool", "false", "Also log to syslog (facility mail). stderr is always on.",
       bool_param([](Config& c) -> bool& { return c.log_syslog; })},
      {"listener", "address", "string", "(required)", "Listening address: \"ip:port\" or \"[ipv6]:port\". One [[listener]] table each.",
       set_listener_address},
      {"listener", "proxy_protocol", "bool", "false", "The balancer speaks PROXY protocol v1/v2: a valid header must come first; nothing is sent before it.",
       set_listener_proxy},
      {"listener", "proxy_trusted", "list", "[]", "Addresses/CIDRs allowed to send a PROXY header; connections from others are closed at once.",
       set_listener_trusted},
      {"listener", "profile", "string", "mx", "Profile served on this listener: \"mx\" (relay to local domains only).",
       set_listener_profile},
      {"profile", "filters", "list", "[\"relay_control\"]", "[profile.mx|submission|submissions]: the filter chain, in order.",
       none(), profile_filters()},
      {"profile", "sender_login_match", "bool", "true", "[profile.*]: an authenticated user may only use its own addresses as envelope sender (553 5.7.1).",
       none(), profile_bool(&Profile::sender_login_match)},
      {"profile", "message_size", "integer", "0", "[profile.*]: overrides limits.message_size on this profile (0 = no override).",
       none(), profile_size(&Profile::message_size, kBig)},
      {"profile", "recipients", "integer", "0", "[profile.*]: overrides limits.recipients on this profile (0 = no override).",
       none(), profile_size(&Profile::recipients, 100000)},
      {"profile", "reject_score", "number", "0", "[profile.*]: a message whose filter scores add up to at least this is refused with 554 5.7.1 and the reasons (0 = never).",
       none(), profile_score(&Profile::reject_score)},
      {"profile", "tag_score", "number", "0", "[profile.*]: a message scoring at least this (and below reject_score) is relayed with the spam headers (0 = never).",
       none(), profile_score(&Profile::tag_score)},
      {"tls", "cert_file", "string", "\"\"", "PEM certificate chain. Without it no STARTTLS is offered and submission profiles cannot be used.",
       string_param([](Config& c) -> std::string& { return c.tls.cert_file; })},
      {"tls", "key_file", "string", "\"\"", "PEM private key for tls.cert_file.",
       string_param([](Config& c) -> std::string& { return c.tls.key_file; })},
      {"tls", "min_version", "string", "1.2", "Lowest TLS version accepted: \"1.2\" or \"1.3\".", set_tls_version},
      {"tls", "ciphers", "string", "\"\"", "OpenSSL cipher list for TLS 1.2; empty = OpenSSL's default.",
       string_param([](Config& c) -> std::string& { return c.tls.ciphers; })},
      {"auth", "failure_delay", "seconds", "1", "Every AUTH answer, success or failure alike, is sent n times this after the command, n = the failures counted for the connection, the client address or the login (the most; 0 = at once); capped by auth.max_delay.",
       seconds_param([](Config& c) -> Seconds& { return c.auth.failure_delay; }, 0, 60)},
      {"auth", "failure_limit", "integer", "3", "Failed AUTH attempts per connection before 421 4.7.0 and close.",
       size_param([](Config& c) -> size_t& { return c.auth.failure_limit; }, 1, 100)},
      {"auth", "max_delay", "seconds", "10", "Longest wait before an AUTH answer (see auth.failure_delay).",
       seconds_param([](Config& c) -> Seconds& { return c.auth.max_delay; }, 0, 120)},
      {"auth", "address_failure_limit", "integer", "10", "Failed AUTH from one client address, all its connections to this instance, within auth.failure_window; past it every AUTH from that address gets 454 4.7.0 before any password is checked (0 = off).",
       size_param([](Config& c) -> size_t& { return c.auth.address_failure_limit; }, 0, 1000000)},
      {"auth", "login_failure_limit", "integer", "20", "Failed AUTH for one login, from any address, within auth.failure_window; past it that login gets 454 4.7.0 before any password is checked (0 = off).",
       size_param([](Config& c) -> size_t& { return c.auth.login_failure_limit; }, 0, 1000000)},
      {"auth", "network_failure_limit", "integer", "0", "Failed AUTH from one client network (the /24 of an IPv4 address, the /64 of an IPv6 one), all its addresses and connections, within auth.failure_window; past it every AUTH from that network gets 454 4.7.0 before any password is checked. Farm-wide with [redis] like the other counts (0 = off).",
       size_param([](Config& c) -> size_t& { return c.auth.network_failure_limit; }, 0, 1000000)},
      {"auth", "failure_window", "seconds", "900", "A failed AUTH counts towards the address and login limits until this long after the last failure; a success forgives only the failures of its own login from its own address.",
       seconds_param([](Config& c) -> Seconds& { return c.auth.failure_window; }, 1, 86400)},
      {"auth", "failure_table_size", "integer", "100000", "Addresses, logins and address+login pairs whose failures are remembered (least recently used forgotten first), and as many client addresses with refused recipients (limits.address_rejected_recipients); read at start.",
       size_param([](Config& c) -> size_t& { return c.auth.failure_table_size; }, 100, 10000000)},
      {"limits", "line_length", "integer", "512", "Longest command line in octets, CRLF included; longer lines get 500 5.5.2.",
       size_param([](Config& c) -> size_t& { return c.limits.line_length; }, 512, 65536)},
      {"limits", "data_line_length", "integer", "65536", "Longest DATA line in octets, CRLF included; longer ones get 552 5.3.4 and the message is not relayed.",
       size_param([](Config& c) -> size_t& { return c.limits.data_line_length; }, 1000, 16777216)},
      {"limits", "message_size", "integer", "10485760", "Largest message in octets (advertised as SIZE); larger gets 552 5.3.4.",
       size_param([](Config& c) -> size_t& { return c.limits.message_size; }, 1024, kBig)},
      {"limits", "recipients", "integer", "100", "Recipients per message; more get 452 4.5.3.",
       size_param([](Config& c) -> size_t& { return c.limits.recipients; }, 1, 100000)},
      {"limits", "errors", "integer", "20", "Protocol errors per session before 421 4.7.0 and close.",
       size_param([](Config& c) -> size_t& { return c.limits.errors; }, 1, 10000)},
      {"limits", "connections", "integer", "1000", "Concurrent SMTP connections, all listeners; more get 421 4.3.2 and are closed.",
       size_param([](Config& c) -> size_t& { return c.limits.connections; }, 1, 1000000)},
      {"limits", "connections_per_ip", "integer", "20", "Concurrent connections from one client: an IPv4 address (IPv4-mapped IPv6 counts as that address) or an IPv6 /64; more get 421 4.3.2.",
       size_param([](Config& c) -> size_t& { return c.limits.connections_per_ip; }, 1, 1000000)},
      {"limits", "greeting_timeout", "seconds", "60", "From the 220 greeting to the client's first command; then 421 4.4.2 and close.",
       seconds_param([](Config& c) -> Seconds& { return c.limits.greeting_timeout; }, 0.1, 3600)},
      {"limits", "command_timeout", "seconds", "300", "Waiting for the next command; then 421 4.4.2 and close.",
       seconds_param([](Config& c) -> Seconds& { return c.limits.command_timeout; }, 0.1, 3600)},
      {"limits", "data_timeout", "seconds", "180", "Waiting for the next block of message data; then 421 4.4.2 and close.",
       seconds_param([](Config& c) -> Seconds& { return c.limits.data_timeout; }, 0.1, 3600)},
      {"limits", "session_timeout", "seconds", "1800", "Whole connection, however busy; then 421 4.4.2 and close.",
       seconds_param([](Config& c) -> Seconds& { return c.limits.session_timeout; }, 0.1, 86400)},
      {"limits", "inflight_bytes", "integer", "268435456", "Message data held in memory by all sessions together; past it DATA gets 452 4.3.1.",
       size_param([](Config& c) -> size_t& { return c.limits.inflight_bytes; }, 65536, kBig)},
      {"limits", "inflight_share", "number", "0.25", "Share of limits.inflight_bytes one client network (IPv4 /24, IPv6 /64) may hold; past it its DATA gets 452 4.3.1 (never less than one largest message).",
       number_param([](Config& c) -> double& { return c.limits.inflight_share; }, 0.01, 1)},
      {"limits", "tls_handshake_timeout", "seconds", "10", "TLS handshake (implicit TLS and STARTTLS); then the connection is closed.",
       seconds_param([](Config& c) -> Seconds& { return c.limits.tls_handshake_timeout; }, 0.1, 3600)},
      {"limits", "rejected_recipients", "integer", "50", "Refused recipients (unknown, disabled, relay denied) per session before 421 4.7.0 and close (recipient harvesting).",
       size_param([](Config& c) -> size_t& { return c.limits.rejected_recipients; }, 1, 100000)},
      {"limits", "rejected_recipients_soft", "integer", "10", "Refused recipients per session answered at once; the n-th after them waits n times limits.rejected_recipient_delay (at most 60 s).",
       size_param([](Config& c) -> size_t& { return c.limits.rejected_recipients_soft; }, 0, 100000)},
      {"limits", "rejected_recipient_delay", "seconds", "0.25", "Step of the growing wait before refusing a recipient past limits.rejected_recipients_soft.",
       seconds_param([](Config& c) -> Seconds& { return c.limits.rejected_recipient_delay; }, 0, 60)},
      {"limits", "address_rejected_recipients", "integer", "100", "Refused recipients per client address (the real one after PROXY) across its connections within limits.rejected_recipients_window before 421 4.7.0 and close at its next refusal; farm-wide with [redis], else this instance's. 0 = no address brake.",
       size_param([](Config& c) -> size_t& { return c.limits.address_rejected_recipients; }, 0, 10000000)},
      {"limits", "address_rejected_recipients_soft", "integer", "20", "Refused recipients per client address answered at once; the n-th after them waits n times limits.rejected_recipient_delay (at most 60 s; the longer of the session's and the address's wait).",
       size_param([](Config& c) -> size_t& { return c.limits.address_rejected_recipients_soft; }, 0, 10000000)},
      {"limits", "rejected_recipients_window", "seconds", "600", "A client address's refused recipients count until this long after its last one.",
       seconds_param([](Config& c) -> Seconds& { return c.limits.rejected_recipients_window; }, 1, 86400)},
      {"limits", "mime_depth", "integer", "20", "Deepest MIME nesting (multiparts, attached messages) of a message judged by data-phase filters (rules, ocr, clamav); deeper gets 554 5.6.0 and is not relayed. At most 32.",
       size_param([](Config& c) -> size_t& { return c.limits.mime_depth; }, 1, 32)},
      {"limits", "mime_parts", "integer", "1000", "Most MIME parts (multiparts, attached messages and leaves) of a message judged by data-phase filters; more get 554 5.6.0 and it is not relayed.",
       size_param([](Config& c) -> size_t& { return c.limits.mime_parts; }, 1, 1000000)},
      {"relay", "local_domains", "list", "(required)", "Domains whose recipients are accepted; every other recipient gets 554 5.7.1 (no open relay).",
       set_local_domains},
      {"relay", "postmaster", "string", "postmaster@<first local domain>", "Where <postmaster> and postmaster@<any local domain> are relayed (RFC 5321 4.5.1); with a directory it must be a known recipient.",
       set_postmaster},
      {"qmqp", "servers", "list", "(required)", "Mailbox servers as \"host:port\" / \"[ipv6]:port\", tried in this order.",
       set_qmqp_servers},
      {"qmqp", "connect_timeout", "seconds", "10", "Per server connect timeout; on expiry the next server is tried.",
       millis_param([](Config& c) -> std::chrono::milliseconds& { return c.qmqp.connect_timeout; }, 0.05, 600)},
      {"qmqp", "answer_timeout", "seconds", "60", "From the end of the request to the server's answer; on expiry 451 4.4.2 (the answer is acted on at its final ','; the server's close is awaited in the background within the same time).",
       millis_param([](Config& c) -> std::chrono::milliseconds& { return c.qmqp.answer_timeout; }, 0.05, 3600)},
      {"qmqp", "failure_threshold", "integer", "3", "Circuit breaker: consecutive failures of a server (connect failure or timeout, answer timeout, broken answer, send cut off; a Z or D answer is not one) that open its breaker: the server is skipped and the next one tried (if every server is open, the one that failed longest ago is tried anyway). 0 = never open.",
       size_param([](Config& c) -> unsigned& { return c.qmqp.failure_threshold; }, 0, 1000)},
      {"qmqp", "open_time", "seconds", "30", "Circuit breaker: how long an open breaker skips its server; then it turns half-open and the next message is the one trial (a K, Z or D answer closes it, a failure opens it again). /health reports a server down while its breaker is not closed.",
       millis_param([](Config& c) -> std::chrono::milliseconds& { return c.qmqp.open_time; }, 0.1, 86400)},
      {"qmqp", "probe_interval", "seconds", "300", "How often /health's background check connects to each mailbox server (a connect and close; the server logs it as a lost connection). The relays' circuit breaker judges the servers from the traffic; this check also covers a standby server no message reached. 0: no active check, the breaker alone. Never more often than admin.check_interval.",
       millis_param([](Config& c) -> std::chrono::milliseconds& { return c.qmqp.probe_interval; }, 0, 86400)},
      {"redis", "address", "string", "\"\"", "Redis server shared by the farm, \"host:port\" / \"[ipv6]:port\" (a name is resolved at each connect); empty: no Redis, every count stays per instance. With it, failed AUTH counts (auth.address_failure_limit, auth.network_failure_limit, auth.login_failure_limit), the refused recipients per client address (limits.address_rejected_recipients), the ratelimit filter's counts, the greylist filter's triplets and the OCR texts (ocr.shared_cache) are farm-wide; when Redis is slow or down the local counts and tables answer alone (fail open). Connections per instance: two for the AUTH counts and two for the recipient counts (commands, subscription), one for the OCR cache, and for each of the ratelimit and greylist filters one per I/O thread (a session's check goes out and comes back on its own thread) plus one shared. The whole [redis] section is read at start (a reload keeps it).",
       set_redis_address},
      {"redis", "password_file", "string", "\"\"", "File whose first line is the Redis password (AUTH); empty: no AUTH. Read at start.",
       string_param([](Config& c) -> std::string& { return c.redis.password_file; })},
      {"redis", "username", "string", "\"\"", "Redis ACL user for AUTH (with redis.password_file); empty: the default user.",
       string_param([](Config& c) -> std::string& { return c.redis.username; })},
      {"redis", "db", "integer", "0", "Redis database number (SELECT) when not 0.",
       size_param([](Config& c) -> unsigned& { return c.redis.db; }, 0, 1000)},
      {"redis", "timeout", "seconds", "0.2", "Longest wait for a Redis answer (the connect and handshake: 5 times this); a late answer counts as Redis down: local counts only, the connection is made afresh.",
       millis_param([](Config& c) -> std::chrono::milliseconds& { return c.redis.timeout; }, 0.001, 60)},
      {"redis", "max_inflight", "integer", "1000", "Redis commands awaiting an answer at once; past it a command fails at once (never queued).",
       size_param([](Config& c) -> size_t& { return c.redis.max_inflight; }, 1, 1000000)},
      {"redis", "key_prefix", "string", "\"mxfront:\"", "Start of every Redis key and channel mxfront uses (farms sharing one Redis use different prefixes).",
       string_param([](Config& c) -> std::string& { return c.redis.key_prefix; })},
      {"redis", "sentinels", "list", "[]", "redis-sentinel instances, \"host:port\" (e.g. three, one per host): before each connect the master's address is asked of them in order (SENTINEL get-master-addr-by-name redis.master_name), and a server counts only once ROLE says master, so a failover is followed. With sentinels, redis.address may stay empty.",
       host_port_list([](Config& c) -> std::vector<std::string>& { return c.redis.sentinels; }, false)},
      {"redis", "master_name", "string", "\"\"", "The master's name in the sentinels' configuration (sentinel monitor <name> ...); required with redis.sentinels.",
       string_param([](Config& c) -> std::string& { return c.redis.master_name; })},
      {"redis", "sentinel_password_file", "string", "\"\"", "File whose first line is the sentinels' password (their requirepass); empty: no AUTH to the sentinels. Read at start.",
       string_param([](Config& c) -> std::string& { return c.redis.sentinel_password_file; })},
      {"redis", "tls", "boolean", "false", "TLS to Redis (a server with tls-port), and to the sentinels too when redis.sentinels are set. The server's certificate is verified (redis.tls_ca_file, redis.tls_server_name); a failed verification is Redis down, with its reason in the log and /health (fail open).",
       bool_param([](Config& c) -> bool& { return c.redis.tls; })},
      {"redis", "tls_ca_file", "string", "\"\"", "PEM CA bundle that verifies the Redis server's (and sentinels') certificate, with redis.tls; empty: the system's default CA paths. Read at start.",
       string_param([](Config& c) -> std::string& { return c.redis.tls_ca_file; })},
      {"redis", "tls_cert_file", "string", "\"\"", "PEM client certificate (chain) presented to Redis, for a server with tls-auth-clients yes; needs redis.tls_key_file. Read at start.",
       string_param([](Config& c) -> std::string& { return c.redis.tls_cert_file; })},
      {"redis", "tls_key_file", "string", "\"\"", "PEM private key of redis.tls_cert_file (both or neither). Read at start.",
       string_param([](Config& c) -> std::string& { return c.redis.tls_key_file; })},
      {"redis", "tls_server_name", "string", "\"\"", "Name verified in the Redis server's certificate (and sent as SNI when it is not an IP address); empty: the host of redis.address (with sentinels: each server's address). An IP address is verified as an IP address (subjectAltName IP).",
       string_param([](Config& c) -> std::string& { return c.redis.tls_server_name; })},
      {"directory", "type", "string", "none", "Where recipients and users live: \"none\" (only relay.local_domains), \"file\" (directory.users_file) or \"ldap\".",
       set_directory_type},
      {"directory", "users_file", "string", "\"\"", "Users file for type \"file\": one line per user: address, password hash ({SSHA} or crypt $6$), status, alternate addresses.",
       string_param([](Config& c) -> std::string& { return c.directory.users_file; })},
      {"directory", "uris", "list", "[]", "LDAP servers for type \"ldap\", tried in order (failover).", set_ldap_uris},
      {"directory", "base_dn", "string", "\"\"", "Search base for recipient and login searches.",
       string_param([](Config& c) -> std::string& { return c.directory.base_dn; })},
      {"directory", "bind_dn", "string", "\"\"", "DN to bind as for searches; empty = anonymous.",
       string_param([](Config& c) -> std::string& { return c.directory.bind_dn; })},
      {"directory", "bind_password_file", "string", "\"\"", "File whose first line is the bind password (kept out of the config).",
       string_param([](Config& c) -> std::string& { return c.directory.bind_password_file; })},
      {"directory", "timeout", "seconds", "5", "Connect and per-operation timeout; on expiry the next URI is tried, then 451 4.3.0.",
       seconds_param([](Config& c) -> Seconds& { return c.directory.timeout; }, 0.05, 600)},
      {"directory", "recipient_filter", "string", "(\\|(mail=%s)(mailAlternateAddress=%s))", "LDAP filter for a recipient; %s is the RFC 4515-escaped address.",
       string_param([](Config& c) -> std::string& { return c.directory.recipient_filter; })},
      {"directory", "login_filter", "string", "(\\|(uid=%s)(mail=%s))", "LDAP filter finding the entry to bind as for AUTH; %s is the escaped login.",
       string_param([](Config& c) -> std::string& { return c.directory.login_filter; })},
      {"directory", "mail_attribute", "string", "mail", "Attribute holding the primary address.",
       string_param([](Config& c) -> std::string& { return c.directory.mail_attribute; })},
      {"directory", "alternate_attributes", "list", "[\"mailAlternateAddress\"]", "Attributes holding alternate addresses.",
       list_param([](Config& c) -> std::vector<std::string>& { return c.directory.alternate_attributes; })},
      {"directory", "status_attribute", "string", "accountStatus", "Account status attribute; empty = no status check.",
       string_param([](Config& c) -> std::string& { return c.directory.status_attribute; })},
      {"directory", "disabled_values", "list", "[\"disabled\", \"deleted\", \"noaccess\"]", "Status values (case-insensitive) that make an account undeliverable and unable to log in.",
       list_param([](Config& c) -> std::vector<std::string>& { return c.directory.disabled_values; })},
      {"directory", "catchall_domains", "list", "[]", "Domains where unknown local parts are still deliverable (catch-all).",
       list_param([](Config& c) -> std::vector<std::string>& { return c.directory.catchall_domains; })},
      {"directory", "positive_ttl", "seconds", "300", "How long a found recipient is cached.",
       seconds_param([](Config& c) -> Seconds& { return c.directory.positive_ttl; }, 0, 86400)},
      {"directory", "negative_ttl", "seconds", "60", "How long an unknown recipient is cached.",
       seconds_param([](Config& c) -> Seconds& { return c.directory.negative_ttl; }, 0, 86400)},
      {"directory", "cache_size", "integer", "10000", "Most cached lookups (positive and negative together); 0 disables the cache.",
       size_param([](Config& c) -> size_t& { return c.directory.cache_size; }, 0, 10000000)},
      {"directory", "threads", "integer", "2", "Directory worker threads (each owns its LDAP connections).",
       size_param([](Config& c) -> size_t& { return c.directory.threads; }, 1, 64)},
      {"directory", "queue", "integer", "256", "Pending directory requests; past it the lookup is answered as unavailable (451).",
       size_param([](Config& c) -> size_t& { return c.directory.queue; }, 1, 100000)},
      {"admin", "address", "string", "\"\" (off)", "HTTP listener for /livez, /readyz, /health and /metrics, \"ip:port\"; keep it on a private address.",
       set_admin_address},
      {"admin", "stall_after", "seconds", "5", "An I/O thread whose event loop has not answered for this long fails /livez.",
       number_param([](Config& c) -> double& { return c.admin.stall_after; }, 0.5, 600)},
      {"admin", "fd_ratio", "number", "0.9", "Open file descriptors above this share of RLIMIT_NOFILE fail /readyz.",
       number_param([](Config& c) -> double& { return c.admin.fd_ratio; }, 0.1, 1)},
      {"admin", "worker_wedged_after", "seconds", "30", "Filter jobs waiting while none finished for this long fail /readyz.",
       number_param([](Config& c) -> double& { return c.admin.worker_wedged_after; }, 1, 3600)},
      {"admin", "check_interval", "seconds", "10", "Interval of the background checks of shared dependencies (mailbox and directory servers, DNS lists, virus engine) shown in /health and /metrics; they never fail /readyz.",
       number_param([](Config& c) -> double& { return c.admin.check_interval; }, 0.1, 3600)},
      {"admin", "check_rise", "integer", "2", "Consecutive successful checks that mark a dependency up.",
       size_param([](Config& c) -> size_t& { return c.admin.check_rise; }, 1, 100)},
      {"admin", "check_fall", "integer", "3", "Consecutive failed checks that mark a dependency down.",
       size_param([](Config& c) -> size_t& { return c.admin.check_fall; }, 1, 100)},
      {"workers", "threads", "integer", "0", "Threads for CPU-heavy checks (virus scans, body rules); 0 = one per CPU core.",
       size_param([](Config& c) -> unsigned& { return c.filters.workers.threads; }, 0, 256)},
      {"workers", "queue", "integer", "256", "Checks waiting for a worker thread; past it the command gets 451 4.3.0 (load shedding).",
       size_param([](Config& c) -> size_t& { return c.filters.workers.queue; }, 0, 1000000)},
      {"spam", "score_header", "string", "X-Spam-Score", "Header carrying the message's score when it reached the profile's tag_score.",
       string_param([](Config& c) -> std::string& { return c.filters.headers.score; })},
      {"spam", "status_header", "string", "X-Spam-Status", "Header carrying \"Yes, score=S tag=T reject=R\".",
       string_param([](Config& c) -> std::string& { return c.filters.headers.status; })},
      {"spam", "report_header", "string", "X-Spam-Report", "Header listing the tags that scored (\"RBL_ZEN=3 RULE_CASINO=2\").",
       string_param([](Config& c) -> std::string& { return c.filters.headers.report; })},
    };
    return rows;
}

// NAME.timeout and NAME.on_error of one filter, documented with its defaults.
Setter filter_timeout(std::string name) {
  return [name](Config& c, Listener&, const toml::node& n) -> std::string {
    std::optional<double> v;
    if (auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
    else if (auto d = n.value_exact<double>()) v = *d;
    if (!v || *v < 0.001 || *v > 3600) return "expected a number of seconds between 0.001 and 3600";
    c.filters.settings[name].timeout = Seconds(*v);
    return {};
  };
}

Setter filter_on_error(std::string name) {
  return [name](Config& c, Listener&, const toml::node& n) -> std::string {
    auto s = n.value_exact<std::string>();
    if (!s || (*s != "tempfail" && *s != "continue")) return "expected \"tempfail\" or \"continue\"";
    c.filters.settings[name].on_error = *s == "tempfail" ? OnError::TempFail : OnError::Continue;
    return {};
  };
}

std::vector<Parameter> failure_rows(const FilterSchema& f) {
  return {
      {f.name, "timeout", "seconds", fmt::format("{:g}", f.defaults.timeout.count()),
       fmt::format("Filter {}: a check still running after this is abandoned and on_error applies.", f.name),
       filter_timeout(std::string(f.name))},
      {f.name, "on_error", "string", f.defaults.on_error == OnError::TempFail ? "tempfail" : "continue",
       fmt::format("Filter {}: on error or timeout, \"tempfail\" (451 4.3.0) or \"continue\" (as if the filter had not run).", f.name),
       filter_on_error(std::string(f.name))},
  };
}

}  // namespace

Schema make_schema(std::vector<FilterSchema> filters) {
  Schema s;
  s.rows = core_rows();
  for (const auto& f : filters) {
    for (const auto& r : f.rows) s.rows.push_back(r);
    for (const auto& a : f.arrays) s.arrays.push_back(a);
  }
  for (const auto& f : filters)
    for (auto& r : failure_rows(f)) s.rows.push_back(std::move(r));
  s.filters = std::move(filters);
  return s;
}

const Schema& core_schema() {
  static const Schema s = make_schema({});
  return s;
}

const Parameter* Schema::find(std::string_view section, std::string_view key) const {
  for (const auto& p : rows)
    if (p.section == section && p.key == key) return &p;
  return nullptr;
}

const ArraySection* Schema::find_array(std::string_view section) const {
  for (const auto& a : arrays)
    if (a.section == section) return &a;
  return nullptr;
}

bool Schema::known_section(std::string_view section) const {
  for (const auto& p : rows)
    if (p.section == section) return true;
  return false;
}

const FilterSchema* Schema::filter(std::string_view name) const {
  for (const auto& f : filters)
    if (f.name == name) return &f;
  return nullptr;
}

std::string Schema::filter_names() const {
  std::string names;
  for (const auto& f : filters) names += names.empty() ? std::string(f.name) : ", " + std::string(f.name);
  return names;
}

std::vector<Profile> default_profiles() {
  Profile mx;
  mx.name = "mx";
  Profile sub;
  sub.name = "submission";
  sub.auth = sub.auth_required = true;
  Profile subs = sub;
  subs.name = "submissions";
  subs.implicit_tls = true;
  return {mx, sub, subs};
}

std::string markdown_table(const Schema& schema) {
  std::string out = "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& p : schema.rows) {
    bool array = schema.find_array(p.section) != nullptr;
    std::string key = p.section == "listener" || array ? fmt::format("[[{}]] {}", p.section, p.key)
                      : p.section == "profile" ? fmt::format("profile.NAME.{}", p.key)
                                               : fmt::format("{}.{}", p.section, p.key);
    out += fmt::format("| `{}` | {} | {} | {} |\n", key, p.type, default_of(schema, p), p.doc);
  }
  return out;
}

std::string default_of(const Schema& schema, const Parameter& p) {
  if (!p.default_text.empty() || !p.apply.show) return p.default_text;
  Config c;  // every initialiser, nothing loaded
  if (const ArraySection* a = schema.find_array(p.section)) a->push(c);
  return p.apply.show(c);
}

}  // namespace config

namespace config {
const FilterSettings& FilterConfig::of(const std::string& filter) const {
  static const FilterSettings fallback;
  auto it = settings.find(filter);
  return it == settings.end() ? fallback : it->second;
}

const Profile& Config::profile(const std::string& name) const {
  for (const auto& p : profiles)
    if (p.name == name) return p;
  // The loader accepts only the profiles it made: any other name is a programming error.
  std::fprintf(stderr, "config: no profile '%s'\n", name.c_str());
  std::abort();
}

std::string Config::at(std::string_view section, const std::string& what) const {
  auto it = section_lines.find(section);
  return fmt::format("{}:{}: {}", source, it == section_lines.end() ? 1 : it->second, what);
}

std::string Listener::name() const { return core::HostPort{host, port}.str(); }
}  // namespace config
