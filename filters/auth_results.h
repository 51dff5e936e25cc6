// Authentication-Results (RFC 8601) pieces shared by the spf, dkim and dmarc filters: whether a
// field carries our authserv-id (such client-sent fields are removed before the relay, never read),
// and how untrusted text (DNS records, signature tags, addresses) gets into a field safely: a
// comment keeps only safe printable bytes; a property value is written only when it needs no quoting.
#pragma once
#include <string>
#include <string_view>

namespace filters {

// Whether an Authentication-Results value carries `authserv_id` (case-insensitive, with or without
// a version after it): the `matches` of the Authentication-Results fields spf, dkim and dmarc own.
bool carries_authserv_id(std::string_view value, std::string_view authserv_id);

// Text for a "(comment)": printable ASCII, '(' ')' '\' ';' and control bytes turned into '_' (a
// naive reader splitting on ';' sees no extra result either), at most 200 characters.
std::string auth_comment(std::string_view text);

// Whether `value` can stand as a property value unquoted (RFC 8601 §2.2: a token or local@domain):
// 1..255 printable characters without white space, ';', '"', '\', '(' or ')'. The callers leave a
// property out (or use a safer form) when it cannot.
bool auth_property_ok(std::string_view value);

}  // namespace filters
