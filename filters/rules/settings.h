// The [rules] section and its [[rules.rule]] tables: plain values, filled by the rows in descriptor.cc.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/cidr.h"

namespace filters::rules {

// What a rule's pattern is matched against: the HELO/EHLO name, the envelope sender address, the
// value of each header named by Rule::header (case-insensitive, unfolded), or the message text
// after the header block (up to Settings::body_limit octets).
enum class Kind { Helo, Sender, Header, Body };
enum class Action { Score, Reject };  // add score / 554 5.7.1 naming the rule

struct Rule {
  std::string name;                    // tag in logs and X-Spam-Report
  Kind kind = Kind::Body;
  std::string header;                  // kind Header: the header name ("Subject")
  std::string pattern;                 // RE2 syntax (linear time); "(?i)" for case-insensitive
  double score = 0;                    // added when it matches and action = Score
  Action action = Action::Score;
};

struct Settings {
  std::vector<core::Cidr> client_block; // 554 5.7.1 at connect
  std::vector<core::Cidr> client_allow; // skip rbl and rules (still scanned for viruses)
  std::vector<Rule> rules;
  size_t body_limit = 1048576;         // body octets searched by body rules
};

}  // namespace filters::rules
