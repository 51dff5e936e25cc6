// The parameter table: every config key with its type, default, doc and setter — one row each.
// The loader, --config-doc and the README table are all generated from this table.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"

namespace config {

struct Parameter {
  std::string_view section;       // "server", "limits", ... or "listener" for each [[listener]]
  std::string_view key;
  std::string_view type;          // for docs: "string", "integer", "seconds", "bool", "list", ...
  std::string_view default_text;  // for docs; the real default is in config.h
  std::string_view doc;
  // Validates `node` and stores it; returns an error text (without file:line) or "".
  std::function<std::string(Config&, Listener&, const toml::node& node)> apply;
  // Rows of section "profile" apply to one [profile.NAME] table through this instead.
  std::function<std::string(Profile&, const toml::node& node)> apply_profile;
};

// Sections written as arrays of tables ([[rbl.zone]]): `push` appends a default element that the
// section's rows then fill; `required` keys must appear in every element.
struct ArraySection {
  std::string_view section;  // "rbl.zone"
  std::function<void(Config&)> push;
  std::vector<std::string_view> required;
  std::function<std::string(const Config&)> check;  // validates the element just filled; "" = fine
};

const std::vector<Parameter>& parameters();
const std::vector<ArraySection>& array_sections();
// The rows of the filter sections (filter_parameters.cc), appended to parameters().
std::vector<Parameter> filter_parameters();
std::vector<Profile> default_profiles();
std::string markdown_table();

// "host:port", "[v6]:port" -> host, port: core::parse_host_port (HostSyntax::Numeric when `numeric`
// is set, else Name) for the callers that keep host and port apart; `err` gets its error text.
bool parse_host_port(std::string_view s, std::string& host, uint16_t& port, bool numeric, std::string& err);

}  // namespace config
