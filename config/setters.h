// Typed setters shared by the parameter tables (parameters.cc and each filter's descriptor.cc): each turns
// a TOML node into a field of Config and returns an error text (without file:line) or "".
#pragma once
#include <algorithm>
#include <charconv>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "config/config.h"
#include "config/parameters.h"

namespace config::setters {


using Setter = config::Setter;

// The TOML text of a value, for Setter::show.
inline std::string toml_text(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}
inline std::string toml_text(const std::vector<std::string>& list) {
  std::string out = "[";
  for (const auto& s : list) out += (out.size() > 1 ? ", " : "") + toml_text(s);
  return out + "]";
}
inline std::string toml_text(double v) { return fmt::format("{}", v); }

template <typename Get>
Setter size_param(Get get, int64_t min, int64_t max) {
  return {[get, min, max](Config& c, Listener&, const toml::node& n) -> std::string {
    auto v = n.value_exact<int64_t>();
    if (!v) return "expected an integer";
    if (*v < min || *v > max) return fmt::format("must be between {} and {}", min, max);
    get(c) = static_cast<std::remove_reference_t<decltype(get(c))>>(*v);
    return {};
  }, [get](Config& c) { return fmt::format("{}", get(c)); }};
}

template <typename Get>
Setter seconds_param(Get get, double min, double max) {
  return {[get, min, max](Config& c, Listener&, const toml::node& n) -> std::string {
    std::optional<double> v;
    if (auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
    else if (auto d = n.value_exact<double>()) v = *d;
    if (!v) return "expected a number of seconds";
    if (*v < min || *v > max) return fmt::format("must be between {} and {} seconds", min, max);
    get(c) = Seconds(*v);
    return {};
  }, [get](Config& c) { return toml_text(get(c).count()); }};
}

template <typename Get>
Setter bool_param(Get get) {
  return {[get](Config& c, Listener&, const toml::node& n) -> std::string {
    auto v = n.value_exact<bool>();
    if (!v) return "expected true or false";
    get(c) = *v;
    return {};
  }, [get](Config& c) -> std::string { return get(c) ? "true" : "false"; }};
}

inline std::vector<std::string> string_list(const toml::node& n, std::string& err) {
  std::vector<std::string> out;
  const toml::array* a = n.as_array();
  if (!a) {
    err = "expected a list of strings";
    return out;
  }
  for (const auto& e : *a) {
    auto s = e.value_exact<std::string>();
    if (!s) {
      err = "expected a list of strings";
      return {};
    }
    out.push_back(*s);
  }
  return out;
}

template <typename Get>
Setter string_param(Get get) {
  return {[get](Config& c, Listener&, const toml::node& n) -> std::string {
    auto v = n.value_exact<std::string>();
    if (!v) return "expected a string";
    get(c) = *v;
    return {};
  }, [get](Config& c) { return toml_text(get(c)); }};
}

template <typename Get>
Setter list_param(Get get) {
  return {[get](Config& c, Listener&, const toml::node& n) -> std::string {
    std::string err;
    auto v = string_list(n, err);
    if (!err.empty()) return err;
    get(c) = std::move(v);
    return {};
  }, [get](Config& c) { return toml_text(get(c)); }};
}

template <typename Get>
Setter millis_param(Get get, double min, double max) {
  return {[get, min, max](Config& c, Listener& l, const toml::node& n) -> std::string {
    Seconds s{};
    auto tmp = seconds_param([&s](Config&) -> Seconds& { return s; }, min, max);
    if (auto e = tmp(c, l, n); !e.empty()) return e;
    get(c) = std::chrono::milliseconds(static_cast<int64_t>(s.count() * 1000));
    return {};
  }, [get](Config& c) { return toml_text(get(c).count() / 1000.0); }};
}


// A number (integer or decimal) within [min, max], stored as a double.
inline Setter number_param(std::function<double&(Config&)> get, double min, double max) {
  return {[get, min, max](Config& c, Listener&, const toml::node& n) -> std::string {
    std::optional<double> v;
    if (auto i = n.value_exact<int64_t>()) v = static_cast<double>(*i);
    else if (auto d = n.value_exact<double>()) v = *d;
    if (!v) return "expected a number";
    if (*v < min || *v > max) return fmt::format("must be between {} and {}", min, max);
    get(c) = *v;
    return {};
  }, [get](Config& c) { return toml_text(get(c)); }};
}

// A getter for `member` of the section `name` that a filter owns (Config::sections, type S).
template <class S, class T>
auto field(std::string_view name, T S::*member) {
  return [name, member](Config& c) -> T& { return c.sections.edit<S>(name).*member; };
}

// A getter for `member` of the last element of an array section ([[rbl.zone]]) kept in `list`.
template <class S, class E, class T>
auto last_field(std::string_view name, std::vector<E> S::*list, T E::*member) {
  return [name, list, member](Config& c) -> T& { return (c.sections.edit<S>(name).*list).back().*member; };
}

// One of a closed set of names, stored as its enum value.
template <class Get, class E>
Setter enum_param(Get get, std::vector<std::pair<std::string, E>> names) {
  auto show = [get, names](Config& c) -> std::string {
    for (const auto& [name, value] : names)
      if (get(c) == value) return toml_text(name);
    return "?";
  };
  return {[get, names](Config& c, Listener&, const toml::node& n) -> std::string {
    auto s = n.value_exact<std::string>();
    if (s)
      for (const auto& [name, value] : names)
        if (*s == name) {
          get(c) = value;
          return {};
        }
    std::string list;
    for (const auto& [name, value] : names) list += (list.empty() ? "\"" : ", \"") + name + "\"";
    return "expected one of " + list;
  }, show};
}

// An address or CIDR range as written in a config file: a range with host bits set
// ("10.0.0.1/8") is refused, since its writer meant either the host or another range.
inline std::optional<core::Cidr> config_cidr(const std::string& s, std::string& err) {
  auto r = core::Cidr::parse(s);
  if (!r) {
    err = fmt::format("'{}' is not an address or CIDR range", s);
    return std::nullopt;
  }
  core::Cidr net{r->addr.prefix(r->prefix), r->prefix};
  if (net.addr != r->addr) {
    err = fmt::format("'{}' has host bits set: write {} (the range) or the address alone", s, net.str());
    return std::nullopt;
  }
  return r;
}

// A list of "host:port" / "[ipv6]:port" strings, each checked; `numeric`: IP addresses only
// (DNS servers), otherwise a host name is allowed too (resolved later, where it is used).
template <class Get>
Setter host_port_list(Get get, bool numeric) {
  return {[get, numeric](Config& c, Listener&, const toml::node& n) -> std::string {
    std::string err;
    auto list = string_list(n, err);
    if (!err.empty()) return err;
    for (const auto& s : list) {
      std::string host;
      uint16_t port = 0;
      if (!parse_host_port(s, host, port, numeric, err)) return fmt::format("'{}': {}", s, err);
    }
    get(c) = std::move(list);
    return {};
  }, [get](Config& c) { return toml_text(get(c)); }};
}

// A list of addresses / CIDR ranges.
template <class Get>
Setter cidr_list(Get get) {
  auto show = [get](Config& c) {
    std::vector<std::string> out;
    for (const auto& r : get(c)) out.push_back(r.str());
    return toml_text(out);
  };
  return {[get](Config& c, Listener&, const toml::node& n) -> std::string {
    std::string err;
    auto list = string_list(n, err);
    if (!err.empty()) return err;
    std::vector<core::Cidr> out;
    for (const auto& s : list) {
      auto r = config_cidr(s, err);
      if (!r) return err;
      out.push_back(*r);
    }
    get(c) = std::move(out);
    return {};
  }, show};
}

// The authserv-id of the Authentication-Results fields (Config::authserv_id): server.authserv_id and
// its aliases spf/dkim/dmarc.authserv_id all set the one value, since spf, dkim and dmarc write one
// merged field and remove forged ones by it; two keys giving different values are a config error.
// A value is an RFC 2045 token (RFC 8601 §2.2), written into the header as it is: 1..255 printable
// ASCII characters, no white space and none of ()<>@,;:\"/[]?=.
inline Setter authserv_id_param() {
  return {[](Config& c, Listener&, const toml::node& n) -> std::string {
    auto v = n.value_exact<std::string>();
    auto token_char = [](char ch) {
      return ch > 0x20 && ch < 0x7f && std::string_view("()<>@,;:\\\"/[]?=").find(ch) == std::string_view::npos;
    };
    if (!v || v->empty() || v->size() > 255 || !std::all_of(v->begin(), v->end(), token_char))
      return "expected an authserv-id: a host name or other token (no white space, none of ()<>@,;:\\\"/[]?=)";
    if (!c.authserv_id.empty() && c.authserv_id != *v)
      return fmt::format("\"{}\" differs from \"{}\" given by another authserv_id key: spf, dkim and dmarc write one "
                         "Authentication-Results field, so there is one authserv-id (set server.authserv_id only)",
                         *v, c.authserv_id);
    c.authserv_id = *v;
    return {};
  }, [](Config& c) { return toml_text(c.authserv_id); }};
}

}  // namespace config::setters
