// The text side of SPF (RFC 7208), without DNS or Asio: result names, macro expansion (§7), record
// selection and parsing (§4.5, §4.6, §5, §6). check_host() (spf.h) evaluates what this parses; the
// fuzz target (tests/fuzz/spf_fuzz.cc) drives it directly. A syntax error is thrown as Stop
// (permerror) by the parser, as everywhere in the evaluation.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.h"

namespace filters::spf {

enum class Result { None, Neutral, Pass, Fail, SoftFail, TempError, PermError };
std::string_view result_name(Result r);  // "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"

struct MacroInput {
  std::string sender;         // %{s}
  std::string local;          // %{l}
  std::string sender_domain;  // %{o}
  std::string domain;         // %{d}: the current domain
  core::IpAddress ip;         // %{i} %{v}
  std::string helo;           // %{h}
  std::string validated;      // %{p}: the validated domain name of ip (§7.3); "" expands to "unknown"
};
// Expands a macro-string (§7). nullopt on a syntax error (`error` says what). `exp`: an explain
// string (§6.2): c/r/t are allowed, and spaces between macro-strings.
std::optional<std::string> expand(std::string_view macro_string, const MacroInput& in, std::string& error, bool exp = false);
// Whether `macro_string` has a macro of `letter` (lower-case; "%{p}", "%{P2r}"), not counting
// "%%{p}" (an escaped percent sign): check_host() looks the %{p} name up only when it is used.
bool uses_macro(std::string_view macro_string, char letter);
// The name form of an address for %{i}: "192.0.2.3", or 32 dot-separated nibbles for IPv6.
std::string ip_macro(const core::IpAddress& ip);
// Whether `domain` can be a check_host <domain>: multi-label, labels 1..63 octets, total <= 253.
bool valid_domain(std::string_view domain);
// The SPF record among TXT strings: those starting "v=spf1" (case-insensitive) then a space or the
// end. nullopt + count 0: none; count > 1: several.
std::optional<std::string> select_record(const std::vector<std::string>& txt, size_t& count);

namespace detail {  // shared by the parser and check_host(); not an API

constexpr unsigned kMaxDnsTerms = 10;     // §4.6.4
constexpr unsigned kMaxVoidLookups = 2;
constexpr unsigned kMaxMxNames = 10;

char lower(char c);
std::string lowercase(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
bool is_digit(char c);
bool is_alpha(char c);
std::vector<std::string_view> split_any(std::string_view s, std::string_view delims);

enum class Mech { All, Include, A, Mx, Ptr, Ip4, Ip6, Exists };

struct Term {
  Result qualifier = Result::Pass;
  Mech mech = Mech::All;
  std::string domain_spec;  // "" = the current domain (a, mx, ptr)
  int cidr4 = 32, cidr6 = 128;
  core::IpAddress net;      // ip4, ip6
  std::string text;         // as written, for the log
};

struct Record {
  std::vector<Term> terms;
  std::optional<std::string> redirect, exp;
};

// What ends an evaluation early: a permerror (syntax, limits) or a temperror (DNS).
struct Stop {
  Result result;
  std::string detail;
};
[[noreturn]] inline void perm(std::string detail) { throw Stop{Result::PermError, std::move(detail)}; }

// Parses a selected record ("v=spf1 ..."); throws Stop (permerror) on any syntax error.
Record parse_record(std::string_view text);

}  // namespace detail
}  // namespace filters::spf
