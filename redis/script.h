// redis::Script — a Lua script run with EVALSHA (its SHA1 computed once, here) and sent whole with
// EVAL when the server answers NOSCRIPT (a restart, SCRIPT FLUSH): the one place that builds
// those commands for every user of a script (the ratelimit and greylist filters). Pure.
#pragma once
#include <string>
#include <vector>

namespace redis {

struct Script {
  explicit Script(std::string text);
  std::string text;
  std::string sha;  // 40 lower-case hex digits

  // EVALSHA <sha> <#keys> keys... argv... (by_sha), else EVAL <text> <#keys> keys... argv...
  std::vector<std::string> args(bool by_sha, const std::vector<std::string>& keys,
                                const std::vector<std::string>& argv) const;
};

}  // namespace redis
