// The rules filter as the program sees it: the [rules] and [[rules.rule]] rows (patterns are
// compiled by RE2 while the file loads, so a bad one is a file:line error) and the filter built on
// the shared worker pool.
#include "filters/rules/descriptor.h"

#include <re2/re2.h>

#include "config/setters.h"
#include "filters/rules/rules.h"

namespace filters::rules {
namespace {
using namespace config::setters;
using config::Config;
using config::Listener;
constexpr const char* kName = "rules";

Rule& rule(Config& c) { return c.sections.edit<Settings>(kName).rules.back(); }

std::string set_rule_pattern(Config& c, Listener&, const toml::node& n) {
  auto s = n.value_exact<std::string>();
  if (!s || s->empty()) return "expected a regular expression (RE2 syntax)";
  RE2::Options o;
  o.set_log_errors(false);
  RE2 re(*s, o);
  if (!re.ok()) return fmt::format("bad regular expression: {}", re.error());
  rule(c).pattern = *s;
  return {};
}

std::string check_rule(const Config& c) {
  const Rule& r = c.sections.get<Settings>(kName).rules.back();
  if (r.kind == Kind::Header && r.header.empty()) return fmt::format("rule '{}': kind \"header\" needs header = \"Name\"", r.name);
  if (r.kind != Kind::Header && !r.header.empty()) return fmt::format("rule '{}': header is only for kind \"header\"", r.name);
  return {};
}

std::vector<config::Parameter> rows() {
  auto rf = [](auto member) { return last_field(kName, &Settings::rules, member); };
  return {
      {"rules", "client_block", "list", "[]", "Client addresses/CIDRs refused at connect (554 5.7.1).",
       cidr_list(field(kName, &Settings::client_block))},
      {"rules", "client_allow", "list", "[]", "Client addresses/CIDRs that skip rbl and rules (still virus-scanned).",
       cidr_list(field(kName, &Settings::client_allow))},
      {"rules", "body_limit", "integer", "1048576", "Body octets searched by body rules.",
       size_param(field(kName, &Settings::body_limit), 1024, int64_t{1} << 40)},
      {"rules.rule", "name", "string", "(required)", "[[rules.rule]]: the rule's name, used in logs, replies and X-Spam-Report. One [[rules.rule]] table per rule.",
       string_param(rf(&Rule::name))},
      {"rules.rule", "kind", "string", "(required)", "[[rules.rule]]: what the pattern is matched against: \"helo\", \"sender\", \"header\" or \"body\".",
       enum_param(rf(&Rule::kind), std::vector<std::pair<std::string, Kind>>{
                                       {"helo", Kind::Helo}, {"sender", Kind::Sender}, {"header", Kind::Header}, {"body", Kind::Body}})},
      {"rules.rule", "header", "string", "\"\"", "[[rules.rule]]: for kind \"header\": the header name (case-insensitive).",
       string_param(rf(&Rule::header))},
      {"rules.rule", "pattern", "string", "(required)", "[[rules.rule]]: RE2 regular expression (linear time; \"(?i)\" for case-insensitive).", set_rule_pattern},
      {"rules.rule", "score", "number", "0", "[[rules.rule]]: score added when it matches (action \"score\").",
       number_param(rf(&Rule::score), -1000, 1000)},
      {"rules.rule", "action", "string", "score", "[[rules.rule]]: \"reject\" (554 5.7.1 naming the rule) or \"score\".",
       enum_param(rf(&Rule::action), std::vector<std::pair<std::string, Action>>{{"score", Action::Score}, {"reject", Action::Reject}})},
  };
}

}  // namespace

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = kName;
  d.schema.defaults = {config::Seconds(10), config::OnError::TempFail};
  d.schema.rows = rows();
  d.schema.arrays = {{"rules.rule", [](Config& c) { c.sections.edit<Settings>(kName).rules.emplace_back(); },
                      {"name", "kind", "pattern"}, check_rule}};
  d.build = [](const BuildContext& b) -> Built {
    std::string err;
    auto f = Rules::build(b.config->sections.get<Settings>(kName), b.resources.workers, err);
    return {f, f ? std::string() : "rules: " + err};
  };
  return d;
}

}  // namespace filters::rules
