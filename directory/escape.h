// LDAP search filter building (RFC 4515). A value that came from the network (an SMTP address, an
// AUTH login) is only ever put into a filter through filter_escape(), so it cannot change the
// filter's structure: `*)(uid=*` becomes `\2a\29\28uid=\2a`, a literal value that matches nothing.
#pragma once
#include <string>
#include <string_view>

namespace ldap {

// RFC 4515 assertion-value escaping: `*` `(` `)` `\` NUL, every other control byte (< 0x20, 0x7f)
// and every non-ASCII byte (>= 0x80) become `\xx` (two lower-case hex digits). Other bytes are
// copied.
std::string filter_escape(std::string_view value);

// `tmpl` with every `%s` replaced by filter_escape(value). Any other `%` is copied as it is.
std::string build_filter(std::string_view tmpl, std::string_view value);

}  // namespace ldap
