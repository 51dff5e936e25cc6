// libFuzzer target for the DMARC record parser, the From-domain extraction (filters/dmarc/record.h)
// and the Authentication-Results authserv-id match (filters/auth_results.h): arbitrary bytes as a
// _dmarc TXT string, as a message header block and as an Authentication-Results value. Beyond
// "no crash, no UB":
//  - a parsed record came from a string is_dmarc_record() accepts, has pct <= 100, each rua/ruf URI
//    is non-empty and occurs in the input, and parsing is deterministic;
//  - a rejected string always says why;
//  - from_domain() gives a domain only with status Ok, and that domain is lower-case, non-empty and
//    no longer than the input.
//  - carries_authserv_id() (filters/auth_results.h) on the bytes as an Authentication-Results value:
//    the same answer for the value upper-cased (ids compare case-insensitively, CFWS has no
//    letters), and always "ours" for our id written first, quoted or after a comment.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "filters/auth_results.h"
#include "filters/dmarc/record.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void record(std::string_view in) {
  using namespace filters::dmarc;
  std::string err;
  auto r = parse_record(in, err);
  if (!r) {
    check(!err.empty());
    return;
  }
  check(is_dmarc_record(in));
  check(r->pct <= 100);
  for (const auto* list : {&r->rua, &r->ruf})
    for (const auto& u : *list) check(!u.empty() && in.find(u) != std::string_view::npos);
  std::string err2;
  auto again = parse_record(in, err2);
  check(again && again->p == r->p && again->sp == r->sp && again->pct == r->pct && again->rua == r->rua);
}

void from(std::string_view in) {
  using filters::dmarc::FromDomain;
  FromDomain f = filters::dmarc::from_domain(in);
  if (f.status != FromDomain::Status::Ok) {
    check(f.domain.empty());
    return;
  }
  check(!f.domain.empty() && f.domain.size() <= in.size());
  for (char c : f.domain) check(!(c >= 'A' && c <= 'Z'));
}

void authserv_id(std::string_view in) {
  using filters::carries_authserv_id;
  constexpr std::string_view id = "mx.test";
  std::string upper(in);
  for (char& c : upper)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  check(carries_authserv_id(in, id) == carries_authserv_id(upper, id));
  std::string rest(in);
  check(carries_authserv_id("mx.test; " + rest, id));
  check(carries_authserv_id("\"MX.test\" " + rest, id));
  std::string comment;  // `in` without the bytes that would end or escape a comment
  for (char c : in)
    if (c != '(' && c != ')' && c != '\\') comment += c;
  check(carries_authserv_id("(" + comment + ") mx.test;" + rest, id));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  record(in);
  from(in);
  authserv_id(in);
  return 0;
}
