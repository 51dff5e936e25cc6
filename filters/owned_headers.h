// filters::OwnedHeader — header fields mxfront writes itself into relayed mail (the spam score
// headers of [spam]; later e.g. an Authentication-Results carrying our authserv-id). A client
// could send its own copies ("X-Spam-Status: No, score=-50") to mislead the mailbox's rules and
// users, so copies found in the message's top-level header block are removed before the relay.
// Header blocks of attached messages (message/rfc822 parts) and the body are never touched.
//
// The list is made per config generation (app/generation.cc): the [spam] header names plus what
// each filter used by a profile declares in its Descriptor::owned_headers.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace filters {

struct OwnedHeader {
  std::string name;  // the field name, compared case-insensitively
  // Null: every field of that name. Otherwise only the fields whose value (unfolded, leading
  // white space removed) it accepts, e.g. an Authentication-Results whose authserv-id is ours.
  std::function<bool(std::string_view value)> matches;
  // 0: every such field. N > 0: only the N-th field of that name in the header block (counted
  // from 1); N < 0: the |N|-th from the end (rspamd's milter remove_headers; `matches` still applies).
  int occurrence = 0;
};

// Removes from `message` (LF line ends, as received) every top-level header field listed in
// `owned`, with its continuation lines. The header block ends at the first empty line. Returns how
// many fields were removed; `out` is set to the cleaned message only when that is not 0 (the
// caller relays the original otherwise, without a copy).
size_t strip_owned_headers(std::string_view message, const std::vector<OwnedHeader>& owned, std::string& out);

}  // namespace filters
