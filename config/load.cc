// TOML -> Config: parse, walk every table checking keys against the parameter table (unknown keys
// are errors), apply each value through its row's setter, then check cross-key requirements.
// Every error found is reported, one "file:line: what" line each, in file order: a key error does
// not hide the next one. Cross-key requirements are checked only once every key was valid (a bad
// value would otherwise also show up as a missing one).
#include "config/load.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <utility>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "config/parameters.h"

namespace config {
namespace {

struct Loader {
  std::string source;
  const Schema& schema;
  std::vector<std::pair<uint32_t, std::string>> errors;  // line, what

  bool fail(const toml::source_region& where, const std::string& what) {
    errors.emplace_back(where.begin.line ? where.begin.line : 1, what);
    return false;
  }
  // Every error, one per line in the order of the file (a table's keys are walked sorted by
  // name); at most kShown of them.
  std::string error() {
    constexpr size_t kShown = 50;
    std::stable_sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string out;
    for (size_t i = 0; i < errors.size() && i < kShown; ++i)
      out += fmt::format("{}{}:{}: {}", i ? "\n" : "", source, errors[i].first, errors[i].second);
    if (errors.size() > kShown) out += fmt::format("\n{}: and {} more errors", source, errors.size() - kShown);
    return out;
  }

  const Parameter* find(std::string_view section, std::string_view key) { return schema.find(section, key); }
  const ArraySection* find_array(std::string_view section) { return schema.find_array(section); }

  // [[rbl.zone]] and the like: each element starts from defaults, is filled by its rows, then
  // must carry the required keys and pass the section's own check.
  bool apply_array(const ArraySection& a, const toml::array& arr, Config& c, Listener& l) {
    bool ok = true;
    for (const auto& e : arr) {
      const toml::table* t = e.as_table();
      a.push(c);
      if (!apply_table(a.section, *t, c, l)) {
        ok = false;
        continue;  // the element's own check would only repeat the key's error
      }
      for (auto key : a.required)
        if (!t->contains(key)) ok = fail(e.source(), fmt::format("[[{}]] needs {}", a.section, key));
      if (a.check) {
        std::string err = a.check(c);
        if (!err.empty()) ok = fail(e.source(), fmt::format("[[{}]]: {}", a.section, err));
      }
    }
    return ok;
  }

  // Each filter named in a profile needs its own section's essentials (its schema says which).
  bool check_filters(const toml::table& root, const Config& c) {
    bool ok = true;
    for (const auto& p : c.profiles)
      for (const auto& f : p.filters) {
        const FilterSchema* fs = schema.filter(f);
        if (!fs || !fs->required) continue;  // names were checked when the profile was read
        if (std::string missing = fs->required(c); !missing.empty())
          ok = fail(where(root, fs->name), fmt::format("profile {} uses {}: {}", p.name, f, missing));
      }
    for (const auto& p : c.profiles)
      if (p.reject_score > 0 && p.tag_score >= p.reject_score)
        ok = fail(where(root, "profile"), fmt::format("profile.{}: tag_score must be below reject_score", p.name));
    return ok;
  }

  bool known_section(std::string_view section) { return schema.known_section(section); }

  // profile.NAME.filters: every name must be a filter of the schema, and one of them must accept
  // recipients (relay_control): without it every recipient, local ones too, would get 554 5.7.1.
  bool check_filter_names(const Profile& p, const toml::node& where) {
    bool ok = true;
    for (const auto& f : p.filters)
      if (!schema.filter(f))
        ok = fail(where.source(), fmt::format("profile.{}.filters: unknown filter '{}' (known: {})", p.name, f,
                                              schema.filter_names()));
    if (!ok) return false;
    std::string acceptors;  // the schema's filters that can accept recipients (none in core_schema())
    for (const auto& fs : schema.filters)
      if (fs.accepts_recipients) acceptors += (acceptors.empty() ? "" : ", ") + std::string(fs.name);
    if (acceptors.empty()) return true;
    for (auto f = p.filters.begin(); f != p.filters.end(); ++f) {
      if (!schema.filter(*f)->accepts_recipients) continue;
      for (auto later = f + 1; later != p.filters.end(); ++later)
        if (schema.filter(*later)->judges_recipients)
          ok = fail(where.source(), fmt::format("profile.{}.filters: {} must come before {} (an accepted recipient "
                                                "ends the rcpt phase, so {} would never judge one)",
                                                p.name, *later, *f, *later));
      return ok;
    }
    return fail(where.source(), fmt::format("profile.{}.filters: no filter accepts recipients ({}), so every "
                                            "recipient would be refused with 554 5.7.1",
                                            p.name, acceptors));
  }

  bool apply_table(std::string_view section, const toml::table& t, Config& c, Listener& l) {
    bool ok = true;
    for (const auto& [k, v] : t) {
      const Parameter* p = find(section, k.str());
      if (!p && v.is_array_of_tables()) {
        if (const ArraySection* a = find_array(fmt::format("{}.{}", section, k.str()))) {
          if (!apply_array(*a, *v.as_array(), c, l)) ok = false;
          continue;
        }
      }
      if (!p) {
        ok = fail(k.source(), fmt::format("unknown key '{}' in [{}]", k.str(), section));
        continue;
      }
      std::string e = p->apply(c, l, v);
      if (!e.empty()) ok = fail(v.source(), fmt::format("{}.{}: {}", section, k.str(), e));
    }
    return ok;
  }

  bool apply_profile(const toml::node& v, Config& c) {
    const toml::table* t = v.as_table();
    if (!t) return fail(v.source(), "profiles are written as [profile.NAME] tables");
    bool ok = true;
    for (const auto& [name, body] : *t) {
      Profile* prof = nullptr;
      for (auto& p : c.profiles)
        if (p.name == name.str()) prof = &p;
      if (!prof) {
        ok = fail(name.source(), fmt::format("unknown profile '{}' (mx, submission, submissions)", name.str()));
        continue;
      }
      const toml::table* pt = body.as_table();
      if (!pt) {
        ok = fail(body.source(), "expected a [profile.NAME] table");
        continue;
      }
      for (const auto& [k, val] : *pt) {
        const Parameter* row = find("profile", k.str());
        if (!row) {
          ok = fail(k.source(), fmt::format("unknown key '{}' in [profile.{}]", k.str(), name.str()));
          continue;
        }
        std::string e = row->apply_profile(*prof, val);
        if (!e.empty()) ok = fail(val.source(), fmt::format("profile.{}.{}: {}", name.str(), k.str(), e));
        else if (k.str() == "filters" && !check_filter_names(*prof, val)) ok = false;
      }
    }
    return ok;
  }

  // Both files or none; whether they load and match is checked by the TLS code that uses them
  // (smtpd/tls.cc), when the generation is built (--check-config builds it too).
  bool check_tls(const toml::table& root, const Config& c) {
    if (c.tls.cert_file.empty() && c.tls.key_file.empty()) return true;
    if (c.tls.cert_file.empty() || c.tls.key_file.empty()) return fail(where(root, "tls"), "tls needs both cert_file and key_file");
    return true;
  }

  bool check_listeners(const toml::table& root, const Config& c) {
    bool ok = true;
    for (const auto& l : c.listeners) {
      if (l.profile == "mx") continue;
      if (c.tls.cert_file.empty())
        ok = fail(where(root, "listener"), fmt::format("listener {} (profile {}) needs [tls] cert_file and key_file", l.name(), l.profile));
      if (c.directory.type == "none")
        ok = fail(where(root, "listener"), fmt::format("listener {} (profile {}) needs a [directory] for AUTH", l.name(), l.profile));
    }
    return ok;
  }

  // Each [[listener]]: its keys, its essentials, and an address no earlier listener took.
  void apply_listeners(const toml::node& v, Config& c) {
    const toml::array* arr = v.as_array();
    if (!arr) {
      fail(v.source(), "listeners are written as [[listener]] tables");
      return;
    }
    for (const auto& e : *arr) {
      const toml::table* t = e.as_table();
      if (!t) {
        fail(e.source(), "listeners are written as [[listener]] tables");
        continue;
      }
      Listener l;
      if (!apply_table("listener", *t, c, l)) continue;
      if (!t->contains("address")) {
        fail(e.source(), "[[listener]] needs an address");
        continue;
      }
      if (l.proxy_protocol && l.proxy_trusted.empty())
        fail(e.source(), "[[listener]] with proxy_protocol = true needs proxy_trusted (the balancers' addresses)");
      for (const auto& earlier : c.listeners)
        if (earlier.host == l.host && earlier.port == l.port)
          fail(e.source(), fmt::format("listener {}: the address is already used by another [[listener]]", l.name()));
      c.listeners.push_back(l);
    }
  }

  bool run(const toml::table& root, Config& c) {
    Listener unused;
    c.profiles = default_profiles();
    for (const auto& f : schema.filters) c.filters.settings[std::string(f.name)] = f.defaults;
    for (const auto& [k, v] : root) {
      std::string_view section = k.str();
      c.section_lines[std::string(section)] = v.source().begin.line ? static_cast<int>(v.source().begin.line) : 1;
      if (section == "profile") {
        apply_profile(v, c);
        continue;
      }
      if (section == "listener") {
        apply_listeners(v, c);
        continue;
      }
      if (!known_section(section)) {
        fail(k.source(), fmt::format("unknown section [{}]", section));
        continue;
      }
      const toml::table* t = v.as_table();
      if (!t) {
        fail(v.source(), fmt::format("[{}] must be a table", section));
        continue;
      }
      apply_table(section, *t, c, unused);
    }
    if (!errors.empty()) return false;
    toml::source_region top;
    top.begin.line = 1;
    if (c.listeners.empty()) fail(top, "at least one [[listener]] is required");
    if (c.local_domains.empty()) fail(where(root, "relay"), "relay.local_domains is required (no open relay)");
    else if (c.postmaster.empty()) c.postmaster = "postmaster@" + c.local_domains.front();
    if (c.qmqp.servers.empty()) fail(where(root, "qmqp"), "qmqp.servers is required");
    if (c.directory.type == "file" && c.directory.users_file.empty())
      fail(where(root, "directory"), "directory.type = \"file\" needs directory.users_file");
    if (c.directory.type == "ldap" && (c.directory.uris.empty() || c.directory.base_dn.empty()))
      fail(where(root, "directory"), "directory.type = \"ldap\" needs directory.uris and directory.base_dn");
    if (!c.redis.sentinels.empty() && c.redis.master_name.empty())
      fail(where(root, "redis"), "redis.sentinels needs redis.master_name");
    if (c.redis.tls_cert_file.empty() != c.redis.tls_key_file.empty())
      fail(where(root, "redis"), "redis.tls_cert_file and redis.tls_key_file go together (both or neither)");
    check_tls(root, c);
    check_listeners(root, c);
    check_filters(root, c);
    if (c.limits.data_line_length < c.limits.line_length)
      fail(where(root, "limits"), "limits.data_line_length must be at least limits.line_length");
    return errors.empty();
  }

  static toml::source_region where(const toml::table& root, std::string_view section) {
    if (const toml::node* n = root.get(section)) return n->source();
    toml::source_region r;
    r.begin.line = 1;
    return r;
  }
};

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

std::string default_hostname() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0 || !buf[0]) return "localhost";
  return buf;
}

}  // namespace

LoadResult load_string(const std::string& text, const std::string& source_name, const Schema& schema) {
  auto c = std::make_shared<Config>();
  c->source = source_name;
  c->hash = sha256_hex(text);
  c->hostname = default_hostname();
  Loader loader{source_name, schema, {}};
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& err) {
    return {nullptr, fmt::format("{}:{}: {}", source_name, err.source().begin.line, err.description())};
  }
  if (!loader.run(root, *c)) return {nullptr, loader.error()};
  return {c, {}};
}

LoadResult load(const std::string& path, const Schema& schema) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {nullptr, fmt::format("{}:0: cannot read file", path)};
  std::stringstream ss;
  ss << in.rdbuf();
  return load_string(ss.str(), path, schema);
}

}  // namespace config
