// Script commands and the script's SHA1 (script.h).
#include "redis/script.h"

#include <openssl/sha.h>

#include <fmt/format.h>

namespace redis {

Script::Script(std::string t) : text(std::move(t)) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d);
  for (unsigned char c : d) sha += fmt::format("{:02x}", c);
}

std::vector<std::string> Script::args(bool by_sha, const std::vector<std::string>& keys,
                                      const std::vector<std::string>& argv) const {
  std::vector<std::string> out{by_sha ? "EVALSHA" : "EVAL", by_sha ? sha : text, std::to_string(keys.size())};
  out.insert(out.end(), keys.begin(), keys.end());
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

}  // namespace redis
