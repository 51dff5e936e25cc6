// The ratelimit filter as the program sees it: the [ratelimit] and [[ratelimit.limit]] rows and
// their checks, the requirement of at least one limit, the counters kept in Resources across
// generations (on Redis when [redis] names a server or sentinels, keyed by that connection), Redis as a passive
// /health dependency, and the counter families.
#include "filters/ratelimit/descriptor.h"

#include <set>

#include "config/setters.h"
#include "filters/ratelimit/ratelimit.h"
#include "redis/from_config.h"

namespace filters::ratelimit {
namespace {
using namespace config::setters;
using config::Config;
using config::Listener;
constexpr const char* kName = "ratelimit";

Limit& last(Config& c) { return c.sections.edit<Settings>(kName).limits.back(); }

std::string set_name(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || s->empty() || s->size() > 64) return "expected a name of 1 to 64 characters";
  for (char ch : *s)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-')
      return fmt::format("'{}': a limit name has only letters, digits, '_' and '-'", *s);
  last(c).name = *s;
  return {};
}

std::string check_limit(const Config& c) {
  const auto& limits = c.sections.get<Settings>(kName).limits;
  const Limit& l = limits.back();
  for (size_t i = 0; i + 1 < limits.size(); ++i)
    if (limits[i].name == l.name) return fmt::format("limit '{}' is defined twice", l.name);
  if (l.what == What::Connections && l.key != Key::Client && l.key != Key::ClientNet)
    return fmt::format("limit '{}': connections are counted at connect, by key \"client\" or \"client_net\" only", l.name);
  if (l.skip_authenticated && l.key != Key::Client && l.key != Key::ClientNet)
    return fmt::format("limit '{}': skip_authenticated applies to client and client_net keys only", l.name);
  return {};
}

std::vector<config::Parameter> rows() {
  auto lf = [](auto member) { return last_field(kName, &Settings::limits, member); };
  return {
      {"ratelimit", "ipv4_prefix", "integer", "", "Prefix length of the IPv4 network a \"client_net\" limit counts by.",
       size_param(field(kName, &Settings::ipv4_prefix), 8, 32)},
      {"ratelimit", "ipv6_prefix", "integer", "", "Prefix length of the IPv6 network a \"client_net\" limit counts by.",
       size_param(field(kName, &Settings::ipv6_prefix), 16, 128)},
      {"ratelimit", "local_table_size", "integer", "", "Keys of the per-instance counters used without Redis or while Redis fails (fail open).",
       size_param(field(kName, &Settings::local_table_size), 1, 100000000)},
      {"ratelimit.limit", "name", "string", "(required)", "[[ratelimit.limit]]: the limit's name in logs, metrics, the tag RATELIMIT_<NAME> and its Redis keys; letters, digits, '_', '-'.",
       set_name},
      {"ratelimit.limit", "key", "string", "(required)", "[[ratelimit.limit]]: what is counted by: \"client\" (address), \"client_net\" (its /ipv4_prefix or /ipv6_prefix network), \"sender\" (MAIL FROM, lower-cased, \"<>\" for the null sender), \"sender_domain\" or \"user\" (authenticated login; others are not counted).",
       enum_param(lf(&Limit::key), std::vector<std::pair<std::string, Key>>{{"client", Key::Client}, {"client_net", Key::ClientNet}, {"sender", Key::Sender}, {"sender_domain", Key::SenderDomain}, {"user", Key::User}})},
      {"ratelimit.limit", "what", "string", "(required)", "[[ratelimit.limit]]: \"connections\" (counted at connect; client keys only), \"messages\" (counted at MAIL) or \"recipients\" (counted at each RCPT).",
       enum_param(lf(&Limit::what), std::vector<std::pair<std::string, What>>{{"connections", What::Connections}, {"messages", What::Messages}, {"recipients", What::Recipients}})},
      {"ratelimit.limit", "limit", "integer", "(required)", "[[ratelimit.limit]]: events allowed per window; the next one is a hit.",
       size_param(lf(&Limit::limit), 1, 1000000000)},
      {"ratelimit.limit", "window", "seconds", "60", "[[ratelimit.limit]]: the sliding window (two fixed windows weighted).",
       seconds_param(lf(&Limit::window), 1, 7 * 86400)},
      {"ratelimit.limit", "action", "string", "tempfail", "[[ratelimit.limit]]: on a hit: \"tempfail\" (451 4.7.1 naming the limit), \"disconnect\" (421 4.7.0 and close) or \"score\" (add score, tag RATELIMIT_<NAME>).",
       enum_param(lf(&Limit::action), std::vector<std::pair<std::string, OnHit>>{{"tempfail", OnHit::TempFail}, {"disconnect", OnHit::Disconnect}, {"score", OnHit::Score}})},
      {"ratelimit.limit", "score", "number", "1", "[[ratelimit.limit]]: score added on a hit when action = \"score\".",
       number_param(lf(&Limit::score), -1000, 1000)},
      {"ratelimit.limit", "skip_authenticated", "boolean", "false", "[[ratelimit.limit]]: a \"client\" or \"client_net\" limit does not count authenticated clients.",
       bool_param(lf(&Limit::skip_authenticated))},
  };
}

// The counters for this config: one per Redis connection (and local table size), kept across
// generations so that a reload keeps what was counted locally.
std::shared_ptr<Counters> counters_for(const BuildContext& b, std::string& err) {
  const Config& c = *b.config;
  auto rc = redis::client_config(c.redis, err);
  if (!err.empty()) return nullptr;
  size_t size = c.sections.get<Settings>(kName).local_table_size;
  return b.resources.keep<Counters>(redis::store_key("ratelimit.counters", rc, c.redis, size), [&] { return std::make_shared<Counters>(rc, c.redis.key_prefix, size); });
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  // Redis answers within redis.timeout or the local counters do: the filter never waits longer.
  d.schema.defaults = {config::Seconds(5), config::OnError::Continue};
  d.schema.judges_recipients = true;  // before relay_control (config/parameters.h)
  d.schema.rows = rows();
  d.schema.arrays = {{"ratelimit.limit", [](Config& c) { c.sections.edit<Settings>(kName).limits.emplace_back(); },
                      {"name", "key", "what", "limit"}, check_limit}};
  d.schema.required = [](const Config& c) -> std::string {
    return c.sections.get<Settings>(kName).limits.empty() ? "at least one [[ratelimit.limit]] is required" : "";
  };
  d.build = [](const BuildContext& b) -> Built {
    std::string err;
    auto counters = counters_for(b, err);
    if (!counters) return {nullptr, err};
    return {std::make_shared<RateLimit>(b.config->sections.get<Settings>(kName), std::move(counters)), {}};
  };
  d.dependencies = [](const BuildContext& b) -> std::vector<core::Dependency> {
    std::string err;
    auto counters = counters_for(b, err);
    if (!counters || !counters->has_redis()) return {};
    return {redis::store_dependency("ratelimit", b.config->redis, [counters] { return counters->down_reason(); })};
  };
  d.metrics = {
      {"ratelimit_checks_total", "Checks of the ratelimit filter that counted at least one limit."},
      {"ratelimit_hits_total", "Rate limits exceeded, by limit and action."},
      {"ratelimit_redis_fallback_total", "Checks Redis did not count (down, timeout, error, too many in flight): counted on this instance only (fail open), by reason."},
  };
  return d;
}

}  // namespace filters::ratelimit
