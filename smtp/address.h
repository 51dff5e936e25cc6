// RFC 5321 path parsing for MAIL FROM / RCPT TO — pure functions, no I/O.
// Accepts <local@domain>, the null path <> (senders only), <postmaster> (recipients only),
// strips source routes (<@a,@b:u@d>, RFC 5321 §3.3: accept and ignore), and returns the
// ESMTP parameters that follow the path. No SMTPUTF8: 8-bit bytes are a syntax error.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/text.h"

namespace smtp {

struct Address {
  std::string local;    // as written, quotes included when quoted
  std::string domain;   // as written (compare case-insensitively); empty for <> and <postmaster>
  bool quoted = false;  // local part was a quoted-string
  bool had_route = false;

  bool null() const { return local.empty() && domain.empty(); }
  std::string str() const { return null() ? std::string() : domain.empty() ? local : local + "@" + domain; }
};

struct Param {
  std::string key;    // upper-cased
  std::string value;  // as written; empty if no '='
};

struct PathArg {
  Address address;
  std::vector<Param> params;
};

enum class PathKind { Sender, Recipient };

struct PathResult {
  std::optional<PathArg> ok;
  std::string error;  // set when !ok
};

// `arg` is what follows "FROM:" / "TO:" (leading spaces allowed).
PathResult parse_path(std::string_view arg, PathKind kind);

// True when the local part carries routing syntax that some downstream MTA could act on:
// '%' (percent hack), '!' (bang path), '@' (quoted local part). Such recipients are never relayed.
bool has_routing_syntax(const Address& a);

// True for <postmaster> and for postmaster@D with D one of `local_domains` (lower-case): the
// recipient RFC 5321 §4.5.1 requires every local domain to accept ("postmaster" in any case).
bool is_postmaster(const Address& a, const std::vector<std::string>& local_domains);

using core::lowercase;

}  // namespace smtp
