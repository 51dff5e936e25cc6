// The parameter table: every config key with its type, default, doc and setter — one row each.
// The loader, --config-doc and the README table are all generated from it. The core's rows are
// here (parameters.cc); each filter brings its own rows in a FilterSchema (filters/NAME/descriptor.cc),
// and whoever assembles the program joins them into one Schema (filters::config_schema()).
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"

namespace config {

// How a row stores its value. `apply` validates a TOML node and stores it, returning an error text
// (without file:line) or "". `show` — set by the typed setters of setters.h — prints the value the
// row's field holds now, as TOML; shown on a default Config it is the struct's initialiser, so the
// documented default is generated from (or checked against) the one place the default is written.
struct Setter {
  using Apply = std::function<std::string(Config&, Listener&, const toml::node&)>;
  using Show = std::function<std::string(Config&)>;
  Apply apply;
  Show show;

  Setter() = default;
  template <class F, std::enable_if_t<std::is_invocable_r_v<std::string, F&, Config&, Listener&, const toml::node&>, int> = 0>
  Setter(F f) : apply(std::move(f)) {}  // a hand-written setter: no show
  Setter(Apply a, Show s) : apply(std::move(a)), show(std::move(s)) {}
  std::string operator()(Config& c, Listener& l, const toml::node& n) const { return apply(c, l, n); }
  explicit operator bool() const { return static_cast<bool>(apply); }
};

struct Parameter {
  std::string_view section;       // "server", "limits", ... or "listener" for each [[listener]]
  std::string_view key;
  std::string_view type;          // for docs: "string", "integer", "seconds", "bool", "list", ...
  // For docs. The real default is the struct's initialiser: rows with a typed setter (apply.show)
  // may leave this empty and get it generated; when both exist, unit_config_test checks they agree.
  std::string default_text;
  std::string doc;
  Setter apply;
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
  // The filter judges recipients at RcptTo (spf, greylist, ratelimit): it must come before every
  // filter that accepts recipients, whose Accept ends that phase (a config error otherwise).
  bool judges_recipients = false;
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
// The default a row documents: default_text, or else apply.show on a default Config (with one
// default element pushed for a row of an array section).
std::string default_of(const Schema& schema, const Parameter& p);

// "host:port", "[v6]:port" -> host, port: core::parse_host_port (HostSyntax::Numeric when `numeric`
// is set, else Name) for the callers that keep host and port apart; `err` gets its error text.
bool parse_host_port(std::string_view s, std::string& host, uint16_t& port, bool numeric, std::string& err);

}  // namespace config
