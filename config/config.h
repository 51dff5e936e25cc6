// The configuration as plain, immutable structs. Built only by config::load() (load.h), which
// validates the whole file first; every key, its default and its doc live in parameters.cc.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <string_view>
#include <string>
#include <vector>

#include "config/filters.h"
#include "config/sections.h"
#include "config/directory.h"
#include "core/cidr.h"

namespace config {

using Seconds = std::chrono::duration<double>;

struct Listener {
  std::string host;      // numeric IPv4 or IPv6 address
  uint16_t port = 2525;
  std::string profile = "mx";
  bool proxy_protocol = false;          // a PROXY v1/v2 header must come first (from a balancer)
  std::vector<core::Cidr> proxy_trusted; // peers allowed to send it; others are closed at once
  std::string name() const;
};

// What a listener serves. The kind is fixed by the name; the keys below tune it.
//   mx:          port 25 style; STARTTLS offered when [tls] is set; no AUTH; local recipients only.
//   submission:  587 style; STARTTLS, AUTH (over TLS) required before MAIL.
//   submissions: 465 style; implicit TLS (RFC 8314), AUTH required before MAIL.
struct Profile {
  std::string name;
  std::vector<std::string> filters{"relay_control"};  // filter chain, in order
  bool implicit_tls = false;
  bool auth = false;                 // offer AUTH (only ever over TLS)
  bool auth_required = false;        // MAIL needs AUTH
  bool sender_login_match = true;    // authenticated users may only send as their own addresses
  size_t message_size = 0;           // 0 = limits.message_size
  size_t recipients = 0;             // 0 = limits.recipients
  double reject_score = 0;           // a message scoring at least this is refused (0 = never)
  double tag_score = 0;              // ... at least this is relayed with spam headers (0 = never)
};

struct Tls {
  std::string cert_file;             // PEM chain; empty = no TLS (no STARTTLS, no submission profiles)
  std::string key_file;
  std::string min_version = "1.2";   // "1.2" or "1.3"
  std::string ciphers;               // OpenSSL cipher list for TLS 1.2; empty = OpenSSL default
};

struct Auth {
  Seconds failure_delay{1};          // every answer waits (1 + failures so far) * failure_delay
  size_t failure_limit = 3;          // failures before 421 4.7.0 and close
  Seconds max_delay{10};             // bound of that wait
  size_t address_failure_limit = 10; // failures from one client address (all connections) before 454; 0 = off
  size_t login_failure_limit = 20;   // failures for one login (all connections) before 454; 0 = off
  size_t network_failure_limit = 0;  // failures from one /24 (IPv4) or /64 (IPv6) before 454; 0 = off
  Seconds failure_window{900};       // a failure counts until this long after the last one
  size_t failure_table_size = 100000;  // addresses, logins and pairs tracked (least recently used go)
};

struct Limits {
  size_t line_length = 512;             // command line incl. CRLF
  size_t data_line_length = 65536;      // DATA text line incl. CRLF (>= 1000)
  size_t message_size = 10485760;       // bytes of message data
  size_t recipients = 100;              // per message
  size_t errors = 20;                   // protocol errors before 421 + close
  size_t connections = 1000;            // concurrent, all listeners
  size_t connections_per_ip = 20;       // concurrent, per client: IPv4 address or IPv6 /64
  Seconds greeting_timeout{60};         // from the 220 to the first command
  Seconds command_timeout{300};         // waiting for each next command
  Seconds data_timeout{180};            // waiting for each next block of DATA
  Seconds session_timeout{1800};        // whole connection
  size_t inflight_bytes = 268435456;    // all message data held in memory at once
  double inflight_share = 0.25;         // of inflight_bytes, what one client network (/24, /64) may hold
  Seconds tls_handshake_timeout{10};    // implicit TLS and STARTTLS handshakes
  size_t rejected_recipients = 50;      // refused recipients per session before 421 + close
  size_t rejected_recipients_soft = 10; // past this many, each refusal waits longer
  Seconds rejected_recipient_delay{0.25};  // (n - soft) * this before the n-th refusal
  size_t address_rejected_recipients = 100;      // refused recipients per client address (window) before 421 + close; 0 = off
  size_t address_rejected_recipients_soft = 20;  // past this many per address, each refusal waits longer
  Seconds rejected_recipients_window{600};       // an address's refusals count until this long after its last one
  size_t mime_depth = 20;               // MIME nesting of a message judged by data-phase filters (<= 32)
  size_t mime_parts = 1000;             // MIME parts of such a message
};

// The HTTP listener for health checks and metrics (ops/admin_server.h).
struct Admin {
  std::string host;                     // empty = no admin listener
  uint16_t port = 0;
  double stall_after = 5;               // an I/O thread silent this long fails /livez
  double fd_ratio = 0.9;                // open fds above this share of the limit fail /readyz
  double worker_wedged_after = 30;      // waiting filter jobs and no progress this long fail /readyz
  double check_interval = 10;           // background dependency checks (for /health and /metrics)
  size_t check_rise = 2, check_fall = 3;  // consecutive results that turn a dependency up / down
};

// The mailbox servers, tried in order (the QMQP client's own settings are built from this).
struct Qmqp {
  struct Server {
    std::string host;                   // numeric IPv4/IPv6 address or a name resolved asynchronously
    uint16_t port = 628;
  };
  std::vector<Server> servers;
  std::chrono::milliseconds connect_timeout{10'000};  // per server; on expiry the next one is tried
  std::chrono::milliseconds answer_timeout{60'000};   // from the end of the request to the answer
  unsigned failure_threshold = 3;                     // consecutive failures that open a server's circuit breaker; 0 = never
  std::chrono::milliseconds open_time{30'000};        // an open breaker skips its server this long, then one trial message
  std::chrono::milliseconds probe_interval{300'000};  // active TCP check of each server at most this often; 0 = none
};

// [redis]: the farm's shared state (issue 16). No address: every feature keeps per-instance state.
struct Redis {
  std::string host;                              // "" = no Redis
  uint16_t port = 6379;
  std::string password_file;                     // one line: the password ("" = no AUTH); read at start
  std::string username;                          // ACL user ("" = the default user)
  unsigned db = 0;                               // SELECT db when not 0
  std::chrono::milliseconds timeout{200};        // per command; slower = local counts only
  size_t max_inflight = 1000;                    // commands awaiting an answer; more are refused at once
  std::string key_prefix = "mxfront:";           // every key and channel starts with it
  std::vector<std::string> sentinels;            // "host:port" of redis-sentinel instances; the master is asked of them
  std::string master_name;                       // the master's name in the sentinels (needed with sentinels)
  std::string sentinel_password_file;            // one line: the sentinels' password ("" = no AUTH)
  bool tls = false;                              // TLS to Redis (and to the sentinels)
  std::string tls_ca_file;                       // PEM CA bundle that verifies the server ("" = the system's)
  std::string tls_cert_file, tls_key_file;       // client certificate and its key (both or neither)
  std::string tls_server_name;                   // name verified in the server's certificate ("" = the address's host)
  bool enabled() const { return !host.empty() || !sentinels.empty(); }
};

struct Config {
  std::string source;                   // file path it was loaded from
  std::string hash;                     // SHA-256 of the file contents (hex), for rollouts
  std::string hostname;                 // greeting, Received header
  std::string authserv_id;              // Authentication-Results id of spf/dkim/dmarc; "" = hostname
  unsigned io_threads = 0;              // 0 = one per core
  Seconds shutdown_timeout{30};         // drain deadline on SIGTERM/SIGINT
  std::string user;                     // started as root: run as this user ("" = stay, with a warning)
  std::string log_level = "info";
  bool log_syslog = false;
  std::vector<Listener> listeners;
  std::vector<Profile> profiles;     // always mx, submission, submissions (defaults + [profile.*])
  Tls tls;
  Auth auth;
  Limits limits;
  std::vector<std::string> local_domains;  // lower-case
  std::string postmaster;                  // where <postmaster> and postmaster@<local domain> go
  Qmqp qmqp;
  Redis redis;
  config::Directory directory;
  FilterConfig filters;                    // chain settings shared by the filters
  Sections sections;                       // each filter's own section, typed by the filter (filters/NAME/settings.h)
  Admin admin;

  const Profile& profile(const std::string& name) const;  // aborts for a name the loader did not make
  // Where each top-level table starts in the file, so that a problem found later (a certificate
  // that does not load, a signature directory) is still reported as "file:line: what".
  std::map<std::string, int, std::less<>> section_lines;
  std::string at(std::string_view section, const std::string& what) const;  // "file:line: what"
};

}  // namespace config
