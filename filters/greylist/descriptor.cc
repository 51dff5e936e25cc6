// The greylist filter as the program sees it: the [greylist] rows and their checks (delay shorter
// than retry_window, allow-list entries that are domains or addresses), the store kept in
// Resources across generations (on Redis when [redis] names a server or sentinels, keyed by that
// connection), Redis as a passive /health dependency, and the counter families.
#include "filters/greylist/descriptor.h"

#include "config/setters.h"
#include "core/domain.h"
#include "filters/greylist/greylist.h"
#include "redis/from_config.h"

namespace filters::greylist {
namespace {
using namespace config::setters;
using config::Config;
using config::Listener;
constexpr const char* kName = "greylist";

// "" or why `e` is neither a domain ("example.org") nor an address ("user@example.org").
std::string check_entry(const std::string& e) {
  size_t at = e.rfind('@');
  std::string_view domain = at == std::string::npos ? std::string_view(e) : std::string_view(e).substr(at + 1);
  if ((at == std::string::npos || at > 0) && core::valid_domain(domain, core::DomainRules::Hostname)) return {};
  return fmt::format("'{}' is neither a domain nor an address (user@domain)", e);
}

// A list of domains and addresses, each checked.
Setter domain_or_address_list(std::vector<std::string> Settings::*member) {
  auto get = field(kName, member);
  return {[get](Config& c, Listener&, const toml::node& n) -> std::string {
    std::string err;
    auto list = string_list(n, err);
    if (!err.empty()) return err;
    for (const auto& e : list)
      if (auto why = check_entry(e); !why.empty()) return why;
    get(c) = std::move(list);
    return {};
  }, [get](Config& c) { return toml_text(get(c)); }};
}

std::vector<config::Parameter> rows() {
  return {
      {"greylist", "delay", "seconds", "", "A triplet (client network, sender, recipient) seen for the first time gets 451 4.7.1 until this long after its first sight; a retry after it is accepted.",
       seconds_param(field(kName, &Settings::delay), 1, 86400)},
      {"greylist", "retry_window", "seconds", "", "A first-seen triplet not retried this long after its first sight is forgotten (greylisted again from scratch); must exceed delay. 2 days, like Postgrey and Haraka: senders back off to hours between retries (RFC 5321 4.5.4.1).",
       seconds_param(field(kName, &Settings::retry_window), 60, 30 * 86400)},
      {"greylist", "pass_ttl", "seconds", "", "A triplet that passed is accepted at once for this long, refreshed by each accepted recipient.",
       seconds_param(field(kName, &Settings::pass_ttl), 60, 400 * 86400)},
      {"greylist", "ipv4_prefix", "integer", "", "Prefix length of the IPv4 client network in the triplet (a sender's retries may come from another host of its pool).",
       size_param(field(kName, &Settings::ipv4_prefix), 8, 32)},
      {"greylist", "ipv6_prefix", "integer", "", "Prefix length of the IPv6 client network in the triplet.",
       size_param(field(kName, &Settings::ipv6_prefix), 16, 128)},
      {"greylist", "client_allow", "list", "", "Client addresses / CIDR ranges never greylisted (authenticated clients never are).",
       cidr_list(field(kName, &Settings::client_allow))},
      {"greylist", "recipient_allow", "list", "", "Recipient domains (\"example.org\") and addresses (\"postmaster@example.org\") never greylisted.",
       domain_or_address_list(&Settings::recipient_allow)},
      {"greylist", "sender_allow", "list", "", "Envelope sender domains and addresses never greylisted.",
       domain_or_address_list(&Settings::sender_allow)},
      {"greylist", "null_sender", "boolean", "", "Greylist the null sender <> (bounces, DSNs) like any other: real MTAs retry them. false: never greylist it.",
       bool_param(field(kName, &Settings::null_sender))},
      {"greylist", "local_table_size", "integer", "", "Triplets of the per-instance table used without Redis or while Redis fails (fail open); least recently used go first.",
       size_param(field(kName, &Settings::local_table_size), 1, 100000000)},
  };
}

// The store for this config: one per Redis connection (and local table size), kept across
// generations so that a reload keeps what the local table learnt.
std::shared_ptr<Store> store_for(const BuildContext& b, std::string& err) {
  const Config& c = *b.config;
  auto rc = redis::client_config(c.redis, err);
  if (!err.empty()) return nullptr;
  size_t size = c.sections.get<Settings>(kName).local_table_size;
  return b.resources.keep<Store>(redis::store_key("greylist.store", rc, c.redis, size), [&] { return std::make_shared<Store>(rc, c.redis.key_prefix, size); });
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  // Redis answers within redis.timeout or the local table does: the filter never waits longer.
  d.schema.defaults = {config::Seconds(5), config::OnError::Continue};
  d.schema.judges_recipients = true;  // before relay_control (config/parameters.h)
  d.schema.rows = rows();
  d.schema.required = [](const Config& c) -> std::string {
    const auto& s = c.sections.get<Settings>(kName);
    if (s.delay >= s.retry_window)
      return fmt::format("greylist.delay ({:g} s) must be shorter than greylist.retry_window ({:g} s)", s.delay.count(),
                         s.retry_window.count());
    return "";
  };
  d.build = [](const BuildContext& b) -> Built {
    std::string err;
    auto store = store_for(b, err);
    if (!store) return {nullptr, err};
    return {std::make_shared<Greylist>(b.config->sections.get<Settings>(kName), std::move(store)), {}};
  };
  d.dependencies = [](const BuildContext& b) -> std::vector<core::Dependency> {
    std::string err;
    auto store = store_for(b, err);
    if (!store || !store->has_redis()) return {};
    return {redis::store_dependency("greylist", b.config->redis, [store] { return store->down_reason(); })};
  };
  d.metrics = {
      {"greylist_results_total", "Recipients judged by the greylist filter, by result: greylisted (first sight or early retry: 451 4.7.1), passed_after_delay, known (passed before), allowlisted."},
      {"greylist_redis_fallback_total", "Greylist checks Redis did not answer (down, timeout, error, too many in flight): decided by this instance's table (fail open), by reason."},
  };
  return d;
}

}  // namespace filters::greylist
