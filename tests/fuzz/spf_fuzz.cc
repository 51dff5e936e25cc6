// libFuzzer target for the text side of SPF (filters/spf/record.h): arbitrary bytes as an SPF
// record ("v=spf1 <input>" and the input itself among TXT strings) and as a macro-string / explain
// string. Beyond "no crash, no UB":
//  - a record either parses or throws Stop with permerror and a reason; every parsed term's text
//    occurs in the record, there are no more terms than space-separated words, and parsing is
//    deterministic;
//  - select_record() finds a record only when exactly one TXT string is a "v=spf1" one;
//  - an expansion is deterministic (outside %{t}, the clock) and fails only with a reason; a string
//    without '%' expands to itself; the validated name (%{p}) changes only strings that use it (uses_macro).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "filters/spf/record.h"

namespace {

using namespace filters::spf;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void record(const std::string& text) {
  size_t words = 1;
  for (char c : text) words += c == ' ';
  try {
    detail::Record r = detail::parse_record(text);
    check(r.terms.size() <= words);
    for (const auto& t : r.terms) check(text.find(t.text) != std::string::npos);
    detail::Record again = detail::parse_record(text);
    check(again.terms.size() == r.terms.size() && again.redirect == r.redirect && again.exp == r.exp);
  } catch (const detail::Stop& s) {
    check(s.result == Result::PermError && !s.detail.empty());
  }
}

void selection(const std::string& in) {
  size_t count = 0;
  auto found = select_record({in, "unrelated text"}, count);
  check(count <= 1);
  check(found.has_value() == (count == 1));
  if (found) check(*found == in);
}

void macro(std::string_view s) {
  MacroInput in;
  in.sender = "strong-bad@email.example.com";
  in.local = "strong-bad";
  in.sender_domain = "email.example.com";
  in.domain = "email.example.com";
  in.ip = *core::IpAddress::parse("2001:db8::cb01");
  in.helo = "mx.example.org";
  for (bool exp : {false, true}) {
    std::string e1, e2;
    auto a = expand(s, in, e1, exp);
    auto b = expand(s, in, e2, exp);
    check(a.has_value() == b.has_value());
    if (!a) {
      check(!e1.empty());
      continue;
    }
    if (!exp) check(*a == *b);
    if (s.find('%') == std::string_view::npos) check(*a == s);
    // %{p}: only a string that uses the macro depends on the validated name (check_host looks it
    // up only then)
    MacroInput named = in;
    named.validated = "mail.example.org";
    std::string e3;
    auto c = expand(s, named, e3, exp);
    check(c.has_value());
    if (!uses_macro(s, 'p') && !exp) check(*c == *a);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string in(reinterpret_cast<const char*>(data), size);
  record("v=spf1 " + in);
  selection(in);
  macro(in);
  return 0;
}
