// The pure parts of DMARC (record.h): record parser, public suffix list, alignment, From domain.
#include "filters/dmarc/record.h"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <gmime/gmime.h>
#include <libpsl.h>

#include "core/domain.h"
#include "core/text.h"
#include "filters/mime_text.h"

namespace filters::dmarc {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  return out;
}

std::optional<Policy> parse_policy(std::string_view v) {
  if (core::iequals(v, "none")) return Policy::None;
  if (core::iequals(v, "quarantine")) return Policy::Quarantine;
  if (core::iequals(v, "reject")) return Policy::Reject;
  return std::nullopt;
}

std::optional<Alignment> parse_alignment(std::string_view v) {
  if (core::iequals(v, "r")) return Alignment::Relaxed;
  if (core::iequals(v, "s")) return Alignment::Strict;
  return std::nullopt;
}

std::optional<uint32_t> parse_uint(std::string_view v) {
  uint32_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) return std::nullopt;
  return n;
}

// rua/ruf: comma-separated URIs, kept leniently (a "!size" suffix stays); valid = has a scheme.
std::vector<std::string> parse_uris(std::string_view v) {
  std::vector<std::string> out;
  for (auto u : split(v, ','))
    if (!u.empty()) out.emplace_back(u);
  return out;
}

bool any_valid_uri(const std::vector<std::string>& uris) {
  return std::any_of(uris.begin(), uris.end(), [](const std::string& u) {
    size_t colon = u.find(':');
    return colon != std::string::npos && colon > 0 && colon + 1 < u.size();
  });
}

struct Tag {
  std::string name;  // lower-case
  std::string_view value;
};

// The tag list (RFC 7489 §6.3, DKIM tag-list syntax); false on a part without '=' or a repeated tag.
bool tag_list(std::string_view txt, std::vector<Tag>& tags, std::string& error) {
  for (auto part : split(txt, ';')) {
    if (part.empty()) continue;  // a trailing or doubled ';'
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      error = fmt::format("tag without '=': {}", part.substr(0, 40));
      return false;
    }
    Tag t{core::lowercase(trim(part.substr(0, eq))), trim(part.substr(eq + 1))};
    if (t.name.empty()) {
      error = "tag without a name";
      return false;
    }
    if (std::any_of(tags.begin(), tags.end(), [&](const Tag& o) { return o.name == t.name; })) {
      error = fmt::format("tag {} repeated", t.name);
      return false;
    }
    tags.push_back(std::move(t));
  }
  return true;
}

}  // namespace

std::string_view policy_name(Policy p) {
  switch (p) {
    case Policy::None: return "none";
    case Policy::Quarantine: return "quarantine";
    case Policy::Reject: return "reject";
  }
  return "none";
}

Policy weaker(Policy p) { return p == Policy::Reject ? Policy::Quarantine : Policy::None; }

bool is_dmarc_record(std::string_view txt) {
  txt = trim(txt);
  if (txt.size() < 2 || !core::iequals(txt.substr(0, 1), "v")) return false;
  txt = trim(txt.substr(1));
  if (txt.empty() || txt.front() != '=') return false;
  txt = trim(txt.substr(1));
  if (txt.substr(0, 6) != "DMARC1") return false;
  txt = trim(txt.substr(6));
  return txt.empty() || txt.front() == ';';
}

std::optional<Record> parse_record(std::string_view txt, std::string& error) {
  if (!is_dmarc_record(txt)) {
    error = "not a DMARC record (v=DMARC1 must come first)";
    return std::nullopt;
  }
  std::vector<Tag> tags;
  if (!tag_list(txt, tags, error)) return std::nullopt;
  Record r;
  bool p_ok = false, sp_bad = false;
  for (const auto& t : tags) {
    if (t.name == "p") {
      if (auto p = parse_policy(t.value)) r.p = *p, p_ok = true;
    } else if (t.name == "sp") {
      if (auto p = parse_policy(t.value)) r.sp = *p;
      else sp_bad = true;
    } else if (t.name == "pct") {
      auto n = parse_uint(t.value);
      if (!n || *n > 100) {
        error = fmt::format("pct={} is not 0..100", t.value.substr(0, 20));
        return std::nullopt;
      }
      r.pct = *n;
    } else if (t.name == "adkim" || t.name == "aspf") {
      auto a = parse_alignment(t.value);
      if (!a) {
        error = fmt::format("{}={} is not r or s", t.name, t.value.substr(0, 20));
        return std::nullopt;
      }
      (t.name == "adkim" ? r.adkim : r.aspf) = *a;
    } else if (t.name == "rua") {
      r.rua = parse_uris(t.value);
    } else if (t.name == "ruf") {
      r.ruf = parse_uris(t.value);
    } else if (t.name == "fo") {
      r.fo = std::string(t.value);
    } else if (t.name == "rf") {
      r.rf = std::string(t.value);
    } else if (t.name == "ri") {
      if (auto n = parse_uint(t.value)) r.ri = *n;  // lenient: a bad interval keeps the default
    }  // v, and unknown tags: ignored
  }
  if (!p_ok || sp_bad) {
    if (!any_valid_uri(r.rua)) {
      error = p_ok ? "sp= is not none, quarantine or reject" : "no valid p= (none, quarantine or reject)";
      return std::nullopt;
    }
    r.p = Policy::None;  // §6.6.3: act as if p=none was retrieved
    r.sp.reset();
    r.p_defaulted = true;
  }
  return r;
}

// ---- public suffix list ----

std::shared_ptr<const PublicSuffixList> PublicSuffixList::load(const std::string& path, std::string& error) {
  psl_ctx_t* ctx = psl_load_file(path.c_str());
  if (!ctx) {
    error = fmt::format("cannot load the public suffix list {}", path);
    return nullptr;
  }
  if (psl_suffix_count(ctx) <= 0) {
    psl_free(ctx);
    error = fmt::format("the public suffix list {} holds no rule", path);
    return nullptr;
  }
  return std::shared_ptr<const PublicSuffixList>(new PublicSuffixList(ctx));
}

PublicSuffixList::~PublicSuffixList() { psl_free(ctx_); }

std::string PublicSuffixList::organizational_domain(std::string_view domain) const {
  std::string d(domain);
  while (!d.empty() && d.back() == '.') d.pop_back();
  if (d.find('.') == std::string::npos) return d;
  // libpsl applies the default rule "*" (an unlisted TLD is a public suffix) with PSL_TYPE_ANY.
  const char* reg = psl_registrable_domain(ctx_, d.c_str());
  if (!reg) return d;  // the domain is itself a public suffix
  return std::string(reg);
}

bool aligned(std::string_view identifier, std::string_view from_domain, Alignment mode, const PublicSuffixList& psl) {
  if (identifier.empty() || from_domain.empty()) return false;
  std::string id = core::lowercase(identifier), from = core::lowercase(from_domain);
  if (id == from) return true;
  if (mode == Alignment::Strict) return false;
  return psl.organizational_domain(id) == psl.organizational_domain(from);
}

// ---- the From field ----

namespace {

// The unfolded values of the top-level header fields named `name` (case-insensitive).
std::vector<std::string> header_values(std::string_view message, std::string_view name) {
  std::vector<std::string> out;
  bool in_field = false;
  size_t pos = 0;
  while (pos < message.size()) {
    size_t eol = message.find('\n', pos);
    std::string_view line = message.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? message.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header block
    if (line.front() == ' ' || line.front() == '\t') {
      if (in_field) out.back() += std::string(line);
      continue;
    }
    size_t colon = line.find(':');
    in_field = colon != std::string_view::npos && core::iequals(trim(line.substr(0, colon)), name);
    if (in_field) out.emplace_back(line.substr(colon + 1));
  }
  return out;
}

// The addresses of mailboxes in `list` (groups opened).
void mailboxes(InternetAddressList* list, std::vector<std::string>& out) {
  int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(a)) {
      mailboxes(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), out);
    } else if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
      const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
      out.emplace_back(addr ? addr : "");
    }
  }
}

}  // namespace

FromDomain from_domain(std::string_view message) {
  FromDomain f;
  auto values = header_values(message, "From");
  if (values.empty()) {
    f.detail = "no From field";
    return f;
  }
  if (values.size() > 1) {
    f.status = FromDomain::Status::MultipleFields;
    f.detail = fmt::format("{} From fields", values.size());
    return f;
  }
  mime::ensure_init();
  std::vector<std::string> addrs;
  if (InternetAddressList* list = internet_address_list_parse(nullptr, values.front().c_str())) {
    mailboxes(list, addrs);
    g_object_unref(list);
  }
  if (addrs.size() > 1) {
    f.status = FromDomain::Status::MultipleAddresses;
    f.detail = fmt::format("{} addresses in From", addrs.size());
    return f;
  }
  f.status = FromDomain::Status::Invalid;
  if (addrs.empty()) {
    f.detail = "no address in From";
    return f;
  }
  size_t at = addrs.front().rfind('@');
  std::string domain = at == std::string::npos ? "" : core::lowercase(addrs.front().substr(at + 1));
  if (!core::valid_domain(domain, core::DomainRules::Hostname) || domain.find('.') == std::string::npos) {
    f.detail = "no valid domain in From";
    return f;
  }
  f.status = FromDomain::Status::Ok;
  f.domain = std::move(domain);
  return f;
}

}  // namespace filters::dmarc
