// The rspamd filter as the program sees it: the [rspamd] rows, the requirement of at least one
// server, the filter built with the generation's hostname and rspamd timeout, one /health
// dependency per server (GET /ping) and the counter families it counts into.
#include "filters/rspamd/descriptor.h"

#include "config/setters.h"
#include "filters/rspamd/rspamd.h"

namespace filters::rspamd {
namespace {
using namespace config::setters;
using config::Config;
constexpr const char* kName = "rspamd";
constexpr std::chrono::milliseconds kPingTimeout{2000};

std::vector<config::Parameter> rows() {
  return {
      {"rspamd", "servers", "list", "(required for rspamd)", "rspamd normal workers, \"host:port\" (e.g. \"127.0.0.1:11333\"); tried in order while a connect fails.",
       host_port_list(field(kName, &Settings::servers), false)},
      {"rspamd", "max_size", "integer", "20971520", "Larger messages are not sent to rspamd (relayed unchecked by it, counted as skipped_size).",
       size_param(field(kName, &Settings::max_size), 1024, int64_t{1} << 34)},
      {"rspamd", "password", "string", "", "Sent as rspamd's Password header when set.",
       string_param(field(kName, &Settings::password))},
      {"rspamd", "settings_id", "string", "", "Sent as rspamd's Settings-ID header when set (one for the whole generation in this version).",
       string_param(field(kName, &Settings::settings_id))},
      {"rspamd", "score", "string", "add", "\"add\": rspamd's score is added to the chain's score; \"alone\": only rspamd's action decides (its score is logged).",
       enum_param(field(kName, &Settings::score), std::vector<std::pair<std::string, ScoreMode>>{{"add", ScoreMode::Add}, {"alone", ScoreMode::Alone}})},
  };
}

std::chrono::milliseconds exchange_timeout(const Config& c) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(c.filters.of(kName).timeout);
}

std::vector<core::Dependency> dependencies(const BuildContext& b) {
  std::vector<core::Dependency> deps;
  for (const auto& server : b.config->sections.get<Settings>(kName).servers)
    deps.push_back({"rspamd", server, [server] { return ping(server, kPingTimeout); }});
  return deps;
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(30), config::OnError::TempFail};
  d.schema.rows = rows();
  d.schema.required = [](const Config& c) -> std::string {
    return c.sections.get<Settings>(kName).servers.empty() ? "rspamd.servers is required" : "";
  };
  d.build = [](const BuildContext& b) -> Built {
    return {std::make_shared<Rspamd>(b.config->sections.get<Settings>(kName), b.config->hostname, exchange_timeout(*b.config)), {}};
  };
  d.dependencies = dependencies;
  d.metrics = {{"rspamd_messages_total", "Messages the rspamd filter judged, by result: rspamd's action, skipped_size or error."},
               {"rspamd_server_failures_total", "Failed exchanges with an rspamd server (connect, timeout, HTTP status), by server."}};
  return d;
}

}  // namespace filters::rspamd
