// SMTP command line recognition — a pure function from one line (without CRLF) to a verb and
// its argument. Validation of the argument belongs to the protocol engine.
#pragma once
#include <string_view>

namespace smtp {

enum class Verb { Helo, Ehlo, Mail, Rcpt, Data, Rset, Noop, Quit, Vrfy, Help, StartTls, Auth, NotImplemented, Unknown };

struct Command {
  Verb verb = Verb::Unknown;
  std::string_view arg;  // after "VERB " or after "MAIL FROM:" / "RCPT TO:"; may be empty
};

Command parse_command(std::string_view line);

}  // namespace smtp
