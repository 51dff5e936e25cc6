// The redis::ClientConfig of a [redis] section: address or sentinels, limits, the secrets read
// from their files and the TLS context (CA, client certificate) loaded from its. One reader for every user of [redis] (the farm AUTH counts, the ratelimit filter).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/dependency.h"
#include "redis/client.h"

namespace redis {
// nullopt without Redis (no address and no sentinels) or on error: `err` says why ("redis.password_file:
// cannot read ...", "redis.tls_ca_file: cannot load ..."); `err` stays empty when Redis is simply not configured.
std::optional<ClientConfig> client_config(const config::Redis& r, std::string& err);

// The Resources key of a filter's Redis-backed store (`what`: "ratelimit.counters", "greylist.store"):
// one store per Redis connection (address, db, user, timeout, key prefix) and local table size, so a
// reload that changes none of them keeps the store and what its local table learnt.
std::string store_key(std::string_view what, const std::optional<ClientConfig>& rc, const config::Redis& r, size_t local_size);

// The passive /health dependency "redis <host:port> (<filter>)" of a filter's Redis-backed store:
// `down_reason` ("" = fine) is the store's own judgement from its traffic (no active check).
core::Dependency store_dependency(std::string_view filter, const config::Redis& r, std::function<std::string()> down_reason);
}  // namespace redis
