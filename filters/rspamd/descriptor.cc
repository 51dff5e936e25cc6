// The rspamd filter as the program sees it: the [rspamd] rows, the requirement of at least one
// server, the filter built with the generation's hostname and rspamd timeout, one /health
// dependency per server (GET /ping) and the counter families it counts into.
#include "filters/rspamd/descriptor.h"

#include <algorithm>

#include <fmt/format.h>

#include "config/setters.h"
#include "filters/rspamd/rspamd.h"

namespace filters::rspamd {
namespace {
using namespace config::setters;
using config::Config;
constexpr const char* kName = "rspamd";
constexpr std::chrono::milliseconds kPingTimeout{2000};
const std::vector<std::pair<std::string, ScoreMode>> kScoreModes = {{"add", ScoreMode::Add}, {"alone", ScoreMode::Alone}};

bool has_profile(const Config& c, std::string_view name) {
  return std::any_of(c.profiles.begin(), c.profiles.end(), [&](const config::Profile& p) { return p.name == name; });
}

// rspamd.profile_score: a list whose every entry is checked where it is written.
config::Setter profile_score_param() {
  auto get = field(kName, &Settings::profile_score);
  return {[get](Config& c, config::Listener&, const toml::node& n) -> std::string {
            std::string err;
            auto list = string_list(n, err);
            if (!err.empty()) return err;
            for (const auto& entry : list)
              if (err = profile_score_error(entry, c); !err.empty()) return err;
            get(c) = std::move(list);
            return {};
          },
          [get](Config& c) { return toml_text(get(c)); }};
}

std::vector<config::Parameter> rows() {
  return {
      {"rspamd", "servers", "list", "(required for rspamd)", "rspamd normal workers, \"host:port\" (e.g. \"127.0.0.1:11333\"); tried in order while a connect fails.",
       host_port_list(field(kName, &Settings::servers), false)},
      {"rspamd", "max_size", "integer", "20971520", "Larger messages are not sent to rspamd (relayed unchecked by it, counted as skipped_size).",
       size_param(field(kName, &Settings::max_size), 1024, int64_t{1} << 34)},
      {"rspamd", "password", "string", "", "Sent as rspamd's Password header when set.",
       string_param(field(kName, &Settings::password))},
      {"rspamd", "settings_id", "string", "", "Sent as rspamd's Settings-ID header when set, for every profile without its own entry in profile_settings_ids.",
       string_param(field(kName, &Settings::settings_id))},
      {"rspamd", "profile_settings_ids", "list", "[]", "Per-profile Settings-ID, \"profile=id\" (e.g. [\"submission=outbound\", \"submissions=outbound\"]): rspamd applies the settings with that id (local.d/settings.conf) to that profile's mail; \"profile=\" sends none.",
       list_param(field(kName, &Settings::profile_settings_ids))},
      {"rspamd", "max_connections", "integer", "64", "Exchanges in flight with one server (per mxfront process); past it the next server is tried, and when every server is busy the message waits for the first busy one's next free slot (within rspamd.timeout; then the filter's on_error). Also the most idle keep-alive connections kept per server per I/O thread.",
       size_param(field(kName, &Settings::max_connections), 1, 100000)},
      {"rspamd", "connect_timeout", "seconds", "1", "A server not connected within it is passed over for the next one (within rspamd.timeout, which must be longer); its connect failure puts it after the others for 10 s.",
       millis_param(field(kName, &Settings::connect_timeout), 0.01, 60)},
      {"rspamd", "idle_timeout", "seconds", "5", "A keep-alive connection (the answer allowed it: HTTP/1.1 without \"Connection: close\", e.g. through HAProxy) idle this long is closed; keep it below the peer's own idle timeout. 0: one connection per message.",
       millis_param(field(kName, &Settings::idle_timeout), 0, 3600)},
      {"rspamd", "score", "string", "add", "\"add\": rspamd's score is added to the chain's score (the profile's reject_score may refuse what rspamd only tagged); \"alone\": only rspamd's action decides (its score is logged). rspamd's \"add header\" and \"rewrite subject\" have the message relayed with the [spam] headers in both.",
       enum_param(field(kName, &Settings::score), kScoreModes)},
      {"rspamd", "profile_score", "list", "[]", "Per-profile score mode, \"profile=add\" or \"profile=alone\" (e.g. [\"submission=alone\", \"submissions=alone\"]), instead of rspamd.score for that profile.",
       profile_score_param()},
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

std::string settings_id_for(const Settings& s, const Config& c, std::string_view profile, std::string& error) {
  std::string id = s.settings_id;
  for (const auto& entry : s.profile_settings_ids) {
    auto eq = entry.find('=');
    std::string name = entry.substr(0, eq);
    bool known = has_profile(c, name);
    if (eq == std::string::npos || name.empty()) {
      error = fmt::format("rspamd.profile_settings_ids: \"{}\" is not \"profile=id\"", entry);
      return "";
    }
    if (!known) {
      error = fmt::format("rspamd.profile_settings_ids: no profile named \"{}\"", name);
      return "";
    }
    if (name == profile) id = entry.substr(eq + 1);
  }
  return id;
}

std::string profile_score_error(std::string_view entry, const Config& c) {
  auto eq = entry.find('=');
  if (eq == std::string_view::npos) return fmt::format("\"{}\" is not \"profile=add\" or \"profile=alone\"", entry);
  std::string_view name = entry.substr(0, eq), mode = entry.substr(eq + 1);
  if (!has_profile(c, name)) return fmt::format("\"{}\": no profile named \"{}\"", entry, name);
  if (std::none_of(kScoreModes.begin(), kScoreModes.end(), [&](const auto& m) { return m.first == mode; }))
    return fmt::format("\"{}\": the mode is \"add\" or \"alone\"", entry);
  return "";
}

ScoreMode score_mode_for(const Settings& s, std::string_view profile) {
  ScoreMode mode = s.score;
  for (const auto& entry : s.profile_score) {
    auto eq = entry.find('=');
    if (eq == std::string::npos || std::string_view(entry).substr(0, eq) != profile) continue;
    for (const auto& [name, m] : kScoreModes)
      if (entry.compare(eq + 1, std::string::npos, name) == 0) mode = m;
  }
  return mode;
}

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(30), config::OnError::TempFail};
  d.schema.rows = rows();
  d.schema.required = [](const Config& c) -> std::string {
    const auto& s = c.sections.get<Settings>(kName);
    if (s.servers.empty()) return "rspamd.servers is required";
    if (s.connect_timeout >= exchange_timeout(c))
      return fmt::format("rspamd.connect_timeout ({:g} s) must be shorter than rspamd.timeout ({:g} s)",
                         s.connect_timeout.count() / 1000.0, exchange_timeout(c).count() / 1000.0);
    std::string error;
    settings_id_for(s, c, "", error);
    return error;
  };
  d.build = [](const BuildContext& b) -> Built {
    Settings s = b.config->sections.get<Settings>(kName);
    std::string error;
    std::string_view profile = b.profile ? std::string_view(b.profile->name) : std::string_view();
    s.settings_id = settings_id_for(s, *b.config, profile, error);
    s.score = score_mode_for(s, profile);
    if (!error.empty()) return {nullptr, error};
    return {std::make_shared<Rspamd>(std::move(s), b.config->hostname, exchange_timeout(*b.config)), {}};
  };
  d.dependencies = dependencies;
  d.metrics = {{"rspamd_messages_total", "Messages the rspamd filter judged, by result: rspamd's action, skipped_size or error."},
               {"rspamd_server_failures_total", "Failed exchanges with an rspamd server (connect, timeout, HTTP status, busy), by server."},
               {"rspamd_connections_total", "Connections to rspamd servers by event: opened, reused (kept alive from an earlier message), stale (a reused one the peer had closed: the request went again on a fresh one)."}};
  return d;
}

}  // namespace filters::rspamd
