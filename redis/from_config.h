// The redis::ClientConfig of a [redis] section: address or sentinels, limits, and the secrets read
// from their files. One reader for every user of [redis] (the farm AUTH counts, the ratelimit filter).
#pragma once
#include <optional>
#include <string>

#include "config/config.h"
#include "redis/client.h"

namespace redis {
// nullopt without Redis (no address and no sentinels) or on error: `err` says why ("redis.password_file:
// cannot read ..."); `err` stays empty when Redis is simply not configured.
std::optional<ClientConfig> client_config(const config::Redis& r, std::string& err);
}  // namespace redis
