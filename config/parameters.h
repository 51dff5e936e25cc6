// The parameter table: every config key with its type, default, doc and setter — one row each.
// The loader, --config-doc and the README table are all generated from it. The core's rows are
// here (parameters.cc); each filter brings its own rows in a FilterSchema (filters/NAME/descriptor.cc),
// and whoever assembles the program joins them into one Schema (filters::config_schema()).
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
  std::string default_text;       // for docs; the real default is the struct's initialiser
  std::string doc;
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

// What one filter contributes to the config: its name, default timeout and failure mode, the rows
// and array sections of its own section(s), and what it requires once a profile lists it.
struct FilterSchema {
  std::string_view name;                               // as listed in profile.NAME.filters
  FilterSettings defaults;                             // NAME.timeout / NAME.on_error defaults
  std::vector<Parameter> rows;
  std::vector<ArraySection> arrays;
  std::function<std::string(const Config&)> required;  // "" or what is missing ("clamav.database_dir is required")
  // The filter accepts recipients at RcptTo (relay_control): a recipient is accepted only on such
  // a filter's explicit Accept, so a profile listing none would refuse every recipient (a config error).
  bool accepts_recipients = false;
};

// Every key the loader accepts: the core rows, then each filter's rows and its generated
// timeout/on_error rows.
struct Schema {
  std::vector<Parameter> rows;
  std::vector<ArraySection> arrays;
  std::vector<FilterSchema> filters;  // in registry order

  const Parameter* find(std::string_view section, std::string_view key) const;
  const ArraySection* find_array(std::string_view section) const;
  bool known_section(std::string_view section) const;
  const FilterSchema* filter(std::string_view name) const;
  std::string filter_names() const;  // "relay_control, rules, ..."
};

// The core rows joined with `filters` (each filter's rows plus its timeout/on_error rows).
Schema make_schema(std::vector<FilterSchema> filters);
// The core rows alone (no filter can be listed in a profile): for tools that read no filter section.
const Schema& core_schema();
std::vector<Profile> default_profiles();
std::string markdown_table(const Schema& schema);

// "host:port", "[v6]:port" -> host, port: core::parse_host_port (HostSyntax::Numeric when `numeric`
// is set, else Name) for the callers that keep host and port apart; `err` gets its error text.
bool parse_host_port(std::string_view s, std::string& host, uint16_t& port, bool numeric, std::string& err);

}  // namespace config
