// The lazily made, shared MIME parse of one message.
#include "filters/parsed_message.h"

#include "filters/filter.h"

namespace filters {

std::shared_ptr<const mime::Message> ParsedMessage::get() const {
  if (done_.load(std::memory_order_acquire)) return parsed_;
  std::lock_guard lk(mu_);
  if (!parsed_) {
    static const std::string empty;
    parsed_ = std::make_shared<const mime::Message>(mime::Message::parse(raw_ ? *raw_ : empty, limits_));
    done_.store(true, std::memory_order_release);
  }
  return parsed_;
}

std::shared_ptr<const mime::Message> ParsedMessage::ready() const {
  return done_.load(std::memory_order_acquire) ? parsed_ : nullptr;
}

std::shared_ptr<const mime::Message> parsed_message(const Context& ctx, const mime::Limits& needs) {
  if (ctx.parsed && ctx.parsed->limits().covers(needs)) return ctx.parsed->get();
  static const std::string empty;
  return std::make_shared<const mime::Message>(mime::Message::parse(ctx.message ? *ctx.message : empty, needs));
}

}  // namespace filters
