// The farm's OCR cache (shared_cache.h): the limits, the counters and the Redis store.
#include "filters/ocr/shared_cache.h"

#include "core/log.h"
#include "core/metrics.h"

namespace filters::ocr {
namespace {

constexpr size_t kMaxKey = 256;  // a key is a hash; a longer one (from a misbehaving worker) is not sent

// mxfront_ocr_shared_cache_total{result=...}
enum class Result { Hit, Miss, Stored, TooLarge, Error, Fallback };
void count(Result r) {
  static core::LabeledCounter* const counters[] = {
      core::labeled_counter("ocr_shared_cache_total", core::labels({{"result", "hit"}})),
      core::labeled_counter("ocr_shared_cache_total", core::labels({{"result", "miss"}})),
      core::labeled_counter("ocr_shared_cache_total", core::labels({{"result", "stored"}})),
      core::labeled_counter("ocr_shared_cache_total", core::labels({{"result", "too_large"}})),
      core::labeled_counter("ocr_shared_cache_total", core::labels({{"result", "error"}})),
      core::labeled_counter("ocr_shared_cache_total", core::labels({{"result", "fallback"}})),
  };
  core::count(counters[static_cast<int>(r)]);
}

class RedisStore final : public SharedStore {
 public:
  RedisStore(redis::ClientConfig cfg, const std::string& prefix)
      : prefix_(prefix + "ocr:"), name_("redis " + redis::display_name(cfg)), client_(std::move(cfg), "ocr") {}

  StoreReply get(const std::vector<std::string>& keys) override {
    std::vector<std::string> args{keys.size() == 1 ? "GET" : "MGET"};
    for (const auto& k : keys) args.push_back(prefix_ + k);
    redis::Reply r = client_.call(std::move(args));
    if (r.error()) {
      bool unreachable = std::string_view(redis::fallback_reason(r.str)) != "error";
      return {unreachable ? StoreReply::Status::Unreachable : StoreReply::Status::Error, {}, r.str};
    }
    if (keys.size() == 1) return value(r);
    if (r.type != redis::Reply::Type::Array || r.elements.size() != keys.size())
      return {StoreReply::Status::Error, {}, "unexpected reply to MGET"};
    for (const auto& e : r.elements)
      if (StoreReply v = value(e); v.status != StoreReply::Status::Miss) return v;
    return {};
  }

  void set(const std::string& key, const std::string& text, std::chrono::milliseconds ttl) override {
    client_.send({"SET", prefix_ + key, text, "PX", std::to_string(std::max<int64_t>(ttl.count(), 1))},
                 [](redis::Reply r) {
                   if (r.error()) count(Result::Fallback);
                 });
  }

  std::string down_reason() const override {
    return client_.up() ? "" : "not connected: OCR results not shared (this instance's cache only)";
  }
  std::string name() const override { return name_; }

 private:
  static StoreReply value(const redis::Reply& r) {
    if (r.type == redis::Reply::Type::Nil) return {};
    if (r.type != redis::Reply::Type::String) return {StoreReply::Status::Error, {}, "unexpected reply to GET"};
    return {StoreReply::Status::Hit, r.str, {}};
  }

  std::string prefix_, name_;
  redis::OwnedClient client_;
};

}  // namespace

std::unique_ptr<SharedStore> redis_store(redis::ClientConfig cfg, const std::string& prefix) {
  return std::make_unique<RedisStore>(std::move(cfg), prefix);
}

SharedCache::SharedCache(std::unique_ptr<SharedStore> store) : store_(std::move(store)) {}

std::optional<std::string> SharedCache::get(const std::string& key, const std::string& pkey, const SharedLimits& l) {
  std::vector<std::string> keys;
  for (const auto* k : {&key, &pkey})
    if (!k->empty() && k->size() <= kMaxKey) keys.push_back(*k);
  if (keys.empty()) return std::nullopt;
  StoreReply r = store_->get(keys);
  switch (r.status) {
    case StoreReply::Status::Unreachable:
      count(Result::Fallback);
      set_farm(false, r.why);
      return std::nullopt;
    case StoreReply::Status::Error:
      count(Result::Error);
      core::log().debug("ocr: {}: {}", store_->name(), r.why);  // counted; not logged per message at info
      return std::nullopt;
    case StoreReply::Status::Miss:
      count(Result::Miss);
      set_farm(true, "");
      return std::nullopt;
    case StoreReply::Status::Hit:
      set_farm(true, "");
      if (r.text.size() > l.max_text) {  // not what this farm stores: ignored
        count(Result::Error);
        core::log().debug("ocr: {}: a shared OCR text of {} octets (ocr.shared_cache_max_text {}) ignored",
                         store_->name(), r.text.size(), l.max_text);
        return std::nullopt;
      }
      count(Result::Hit);
      return std::move(r.text);
  }
  return std::nullopt;
}

void SharedCache::put(const std::string& key, const std::string& pkey, const std::string& text, const SharedLimits& l) {
  if (key.empty() && pkey.empty()) return;
  if (text.size() > l.max_text) {
    count(Result::TooLarge);
    return;
  }
  if (l.ttl <= std::chrono::milliseconds::zero()) return;
  for (const auto* k : {&key, &pkey})
    if (!k->empty() && k->size() <= kMaxKey) {
      store_->set(*k, text, l.ttl);
      count(Result::Stored);
    }
}

void SharedCache::set_farm(bool farm, const std::string& why) {
  if (!farm_.set(farm)) return;
  if (farm) core::log().info("ocr: sharing OCR results in {}", store_->name());
  else core::log().warn("ocr: {} failed ({}): OCR results not shared, this instance's cache only (fail open)",
                        store_->name(), why);
}

}  // namespace filters::ocr
