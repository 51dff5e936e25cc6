// The [rspamd] section: plain values, filled by the rows in descriptor.cc.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace filters::rspamd {

// "add": rspamd's score is added to the chain's score (the profile's tag/reject scores judge the
// sum); "alone": only rspamd's action decides, its score is logged but not added. In both, rspamd's
// "add header" and "rewrite subject" have the message relayed with the [spam] headers.
enum class ScoreMode { Add, Alone };

struct Settings {
  std::vector<std::string> servers;    // "host:port" of rspamd's normal worker; tried in order on connect failure
  size_t max_size = 20971520;          // larger messages are not sent (skipped, counted)
  std::string password;                // rspamd's Password header; empty: none
  std::string settings_id;             // rspamd's Settings-ID header; empty: none
  // "profile=id" entries: that profile's Settings-ID instead of settings_id ("" after '=': none)
  std::vector<std::string> profile_settings_ids;
  size_t max_connections = 64;         // exchanges in flight per server per process; past it: the next server, then a wait
  std::chrono::milliseconds connect_timeout{1000};  // a server not connected within it: the next one
  std::chrono::milliseconds idle_timeout{5000};     // keep-alive connections idle longer are closed; 0: no reuse
  ScoreMode score = ScoreMode::Add;
  // "profile=add|alone" entries: that profile's score mode instead of `score` (checked at load)
  std::vector<std::string> profile_score;
};

}  // namespace filters::rspamd
