// The OCR cache shared by the farm: in front of a store every instance reads (Redis, GET/SET
// <redis.key_prefix>ocr:<key>), so a campaign's picture is read once per farm, not once per
// instance. Contract: get() blocks the calling OCR pool thread (never an I/O thread) at most the
// store's timeout; put() never waits; a value read is untrusted (longer than the limit: ignored,
// counted as an error); a store that fails is passed by (fail open: the local cache and the OCR
// worker answer alone), each fallback counted and each change between shared and local logged once.
// Counted in mxfront_ocr_shared_cache_total{result="hit|miss|stored|too_large|error|fallback"}.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "redis/client.h"
#include "redis/owned_client.h"

namespace filters::ocr {

// One lookup's answer from the store.
struct StoreReply {
  enum class Status { Hit, Miss, Error, Unreachable };
  Status status = Status::Miss;
  std::string text;  // Hit
  std::string why;   // Error / Unreachable: for the log
};

// Where the farm's OCR texts live (Redis; a fake in tests).
class SharedStore {
 public:
  virtual ~SharedStore() = default;
  // The first of `keys` present, in one round trip; blocks at most the store's timeout.
  virtual StoreReply get(const std::vector<std::string>& keys) = 0;
  // Fire and forget: not awaited.
  virtual void set(const std::string& key, const std::string& text, std::chrono::milliseconds ttl) = 0;
  virtual std::string down_reason() const = 0;  // "" when fine; never blocks
  virtual std::string name() const = 0;         // for logs: "redis 127.0.0.1:6379"
};

// The [ocr] limits of the shared cache, from the generation that uses it.
struct SharedLimits {
  size_t max_text = 8192;             // longer texts are neither stored nor accepted
  std::chrono::milliseconds ttl{0};   // of a stored text (PX)
};

class SharedCache {
 public:
  explicit SharedCache(std::unique_ptr<SharedStore> store);
  // The text of the first present of `key`, `pkey` (empty ones skipped); nullopt on a miss or a failure.
  std::optional<std::string> get(const std::string& key, const std::string& pkey, const SharedLimits& l);
  // Stores a complete text under each non-empty key (not awaited).
  void put(const std::string& key, const std::string& pkey, const std::string& text, const SharedLimits& l);
  std::string down_reason() const { return store_->down_reason(); }

 private:
  void set_farm(bool farm, const std::string& why);
  std::unique_ptr<SharedStore> store_;
  redis::FarmState farm_;
};

// The Redis store: its own connection (redis::OwnedClient), keys <prefix>ocr:<key>.
std::unique_ptr<SharedStore> redis_store(redis::ClientConfig cfg, const std::string& prefix);

}  // namespace filters::ocr
