// Builds a config generation: TLS, directory, one filter chain per profile from the registry, and
// the list of shared dependencies shown in /health.
#include "app/generation.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "core/host_port.h"
#include "redis/from_config.h"
#include "filters/registry/registry.h"
#include "filters/structure_gate.h"
#include "directory/factory.h"
#include "ops/dependencies.h"
#include "qmqp/breaker.h"
#include "smtpd/tls.h"

namespace app {
namespace {

// The registered filters that at least one profile lists, in registry order.
std::vector<const filters::Descriptor*> used_filters(const config::Config& c) {
  std::vector<const filters::Descriptor*> used;
  for (const auto& d : filters::registry())
    for (const auto& p : c.profiles)
      if (std::find(p.filters.begin(), p.filters.end(), d.name()) != p.filters.end()) {
        used.push_back(&d);
        break;
      }
  return used;
}

}  // namespace

std::shared_ptr<smtpd::FarmCounts> make_farm_counts(const config::Config& c, std::string& err) {
  auto rc = redis::client_config(c.redis, err);
  if (!err.empty()) err = c.at("redis", err);
  if (!rc) return nullptr;
  auto f = std::make_shared<smtpd::FarmCounts>();
  const std::string& prefix = c.redis.key_prefix;
  f->auth = std::make_shared<smtpd::RedisWindowCounts>(*rc, prefix, "auth", "auth-failures", c.auth.failure_table_size);
  f->rcpt = std::make_shared<smtpd::RedisWindowCounts>(*rc, prefix, "rcpt", "rcpt-refusals", c.auth.failure_table_size);
  return f;
}

smtpd::SnapshotOrError build_generation(std::shared_ptr<const config::Config> c,
                                        std::shared_ptr<filters::Resources> resources,
                                        std::shared_ptr<smtpd::FarmCounts> farm_counts) {
  auto s = std::make_shared<smtpd::Snapshot>();
  s->config = c;
  s->farm_counts = std::move(farm_counts);
  s->resources = resources ? std::move(resources) : std::make_shared<filters::Resources>(*c);
  for (const auto& srv : c->qmqp.servers) s->relay.servers.push_back({srv.host, srv.port});
  s->relay.connect_timeout = c->qmqp.connect_timeout;
  s->relay.answer_timeout = c->qmqp.answer_timeout;
  s->relay.breaker = {c->qmqp.failure_threshold, c->qmqp.open_time};
  s->relay.breakers = qmqp::process_breakers();  // keyed by "host:port": a reload keeps each kept server's state
  smtpd::TlsContextOrError tls = smtpd::make_tls_context(c->tls);
  if (!tls.error.empty()) return {nullptr, c->at("tls", tls.error)};
  s->tls = tls.ctx;
  ldap::DirectoryOrError dir = ldap::make_directory(c->directory, nullptr);
  if (!dir.error.empty()) return {nullptr, c->at("directory", "directory: " + dir.error)};
  s->directory = dir.dir;
  filters::BuildContext ctx{c, *s->resources, s->directory};
  for (const auto& p : c->profiles) {
    auto chain = std::make_shared<filters::Chain>(p.reject_score, p.tag_score);
    std::vector<std::pair<std::shared_ptr<filters::Filter>, config::FilterSettings>> built;
    for (const auto& name : p.filters) {
      const filters::Descriptor* d = filters::find(name);
      if (!d) return {nullptr, c->at("profile", fmt::format("filter '{}' is not built into this mxfront", name))};
      filters::BuildContext per_profile = ctx;
      per_profile.profile = &p;
      filters::Built f = d->build(per_profile);
      if (!f.filter) return {nullptr, c->at(c->section_lines.count(name) ? name : "profile", f.error)};
      built.emplace_back(f.filter, c->filters.of(name));
    }
    // A chain that judges message content gets the MIME structure limit first in its data phase:
    // what is nested beyond it could not be seen into, so it is refused, never relayed as clean.
    // It waits for the shared parse as long as the slowest data-phase filter may run; when it
    // cannot judge (timeout, error) it tempfails unless every data-phase filter is "continue"
    // (the admin chose to relay what could not be checked).
    config::FilterSettings gate{config::Seconds(0), config::OnError::Continue};
    for (const auto& [f, settings] : built)
      if (f->wants(filters::Phase::Data)) {
        gate.timeout = std::max(gate.timeout, settings.timeout);
        if (settings.on_error == config::OnError::TempFail) gate.on_error = config::OnError::TempFail;
      }
    if (gate.timeout > config::Seconds(0))
      chain->add(std::make_shared<filters::StructureGate>(s->resources->workers, c->limits.mime_depth, c->limits.mime_parts),
                 gate);
    for (auto& [f, settings] : built) chain->add(std::move(f), settings);
    s->chains[p.name] = chain;
  }
  // The headers mxfront writes: client-supplied copies never reach the mailbox.
  for (const std::string* h : {&c->filters.headers.score, &c->filters.headers.status, &c->filters.headers.report})
    s->owned_headers.push_back({*h, nullptr});
  for (const auto* d : used_filters(*c))
    if (d->owned_headers)
      for (auto& h : d->owned_headers(ctx)) s->owned_headers.push_back(std::move(h));
  // Only now: a refused generation must not touch what the running one shares.
  for (const auto* d : used_filters(*c))
    if (d->commit) d->commit(ctx);
  return {s, {}};
}

std::vector<core::Dependency> dependencies_of(const smtpd::Snapshot& s) {
  using std::chrono::milliseconds;
  std::vector<core::Dependency> deps;
  const config::Config& c = *s.config;
  for (const auto& srv : c.qmqp.servers) {
    auto timeout = std::min(milliseconds(2000), c.qmqp.connect_timeout);
    std::string name = core::HostPort{srv.host, srv.port}.str();
    // The TCP connect cannot see a server that accepts but never answers; the relays' circuit
    // breaker can: while it is not closed, the server is reported down with its reason.
    std::function<std::string()> passive;
    if (s.relay.breakers)
      passive = [b = s.relay.breakers, name, policy = s.relay.breaker] { return b->down_reason(name, policy); };
    // The active connect is rare (qmqp.probe_interval) or off: the mailbox server logs each one.
    std::function<std::string()> active;
    if (c.qmqp.probe_interval.count() > 0)
      active = [host = srv.host, port = srv.port, timeout] { return ops::tcp_connect_check(host, port, timeout); };
    deps.push_back({"qmqp", name, std::move(active), std::move(passive), c.qmqp.probe_interval});
  }
  if (s.directory)
    for (auto& dep : s.directory->dependencies()) deps.push_back(std::move(dep));
  if (s.farm_counts) deps.push_back(s.farm_counts->dependency());  // passive: the connections' state
  filters::BuildContext ctx{s.config, *s.resources, s.directory};
  auto known = [&deps](const core::Dependency& d) {
    return std::any_of(deps.begin(), deps.end(), [&d](const auto& e) { return e.kind == d.kind && e.name == d.name; });
  };
  for (const auto* d : used_filters(c))
    if (d->dependencies)
      for (auto& dep : d->dependencies(ctx))
        if (!known(dep)) deps.push_back(std::move(dep));  // e.g. a DNS server shared by spf, dkim and dmarc
  return deps;
}

}  // namespace app
