// Authentication-Results (RFC 8601) pieces shared by the spf, dkim and dmarc filters: the one
// authserv-id they write (server.authserv_id, else server.hostname), whether a field carries it
// (such client-sent fields are removed before the relay, never read), and how untrusted text (DNS
// records, signature tags, addresses) gets into a field safely: a comment keeps only safe
// printable bytes; a property value is written only when it needs no quoting.
#pragma once
#include <string>
#include <string_view>

namespace config {
struct Config;
}

namespace filters {

// The authserv-id of every Authentication-Results field mxfront writes: server.authserv_id (or one
// of its aliases spf/dkim/dmarc.authserv_id), else server.hostname.
const std::string& authserv_id(const config::Config& c);

// Whether an Authentication-Results value carries `authserv_id`: the `matches` of the
// Authentication-Results fields spf, dkim and dmarc own. The field's authserv-id is its first
// RFC 8601 `value` after CFWS (white space, folding, comments, nested or with quoted-pairs): a
// token, or a quoted-string (quoted-pairs undone, folding and white space at its ends dropped),
// compared case-insensitively. A token ends at white space, '(', ';' or '"'; what comes after the
// id (a version, garbage) does not matter. A value whose authserv-id cannot be read (unterminated
// comment or quoted-string, nothing but CFWS) also counts as ours: a reader that parses it in some
// other way might find our id in it, and RFC 8601 §5 lets a border MTA remove any such field.
bool carries_authserv_id(std::string_view value, std::string_view authserv_id);

// Text for a "(comment)": printable ASCII, '(' ')' '\' ';' and control bytes turned into '_' (a
// naive reader splitting on ';' sees no extra result either), at most 200 characters.
std::string auth_comment(std::string_view text);

// Whether `value` can stand as a property value unquoted (RFC 8601 §2.2: a token or local@domain):
// 1..255 printable characters without white space, ';', '"', '\', '(' or ')'. The callers leave a
// property out (or use a safer form) when it cannot.
bool auth_property_ok(std::string_view value);

}  // namespace filters
