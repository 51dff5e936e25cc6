// core::valid_domain — the one domain-name check of mxfront: RFC 1035 §2.3.1 host names as RFC 5321
// §4.1.2 uses them, with an explicit option for the DNS names that also carry '_'.
// Contract (both rule sets):
//   * one or more labels separated by single dots: no empty label, no leading or trailing dot
//     (an absolute name "example.org." is refused: no caller has a use for one);
//   * each label 1-63 characters of ASCII letters, digits and '-', '-' neither first nor last;
//   * at most kMaxDomainLength (253) characters in all — 255 octets in DNS wire form;
//   * a single label ("localhost") and all-digit labels are valid; address literals
//     ("[192.0.2.1]") are not domains (smtp/address.cc checks those itself); ASCII only
//     (internationalised names pass in their A-label form "xn--...").
// DomainRules::Hostname: exactly the above (SMTP addresses and HELO-style names, our own hostname,
//   relay.local_domains).
// DomainRules::Dns: '_' is also a label character, anywhere in a label (DNS list zones, the
//   RHSBL lookup names built from sender domains, "_service"-style names). '-' rules unchanged.
#pragma once
#include <cstddef>
#include <string_view>

namespace core {

inline constexpr size_t kMaxDomainLength = 253;

enum class DomainRules { Hostname, Dns };

bool valid_domain(std::string_view d, DomainRules rules);

}  // namespace core
