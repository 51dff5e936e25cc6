// filters::ParsedMessage — the one MIME parse of a message at Data, shared read-only by every
// filter of the chain that reads the message's structure (rules, ocr, ...).
//
// Contract:
//  * ChainRun::run creates one per message at Data (Context::parsed, copied into every check's
//    Context), with the union of what the chain's filters declare they read (Filter::mime_needs).
//    Creating it costs nothing: the parse runs when a filter first asks for it.
//  * get() is blocking and must run on the worker pool (inside the filter's own pool job, so a
//    full queue gives the filter its usual 'busy' answer): the first caller parses, callers that
//    come while it parses wait for that parse (they would otherwise redo it), later callers get
//    the result at once. Thread-safe; the Message is immutable. If the parse throws (bad_alloc),
//    nothing is kept and the next caller tries again.
//  * ready() never blocks: the parse when it is done, else null (lets a cheap check skip the pool).
//  * parsed_message(ctx, needs) is what a filter calls in its pool job: the shared parse when it
//    keeps at least `needs`, else a parse of the check's own (a Context built without a chain, as
//    in unit tests, or a filter that did not declare its needs).
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "filters/mime_text.h"

namespace filters {

struct Context;

class ParsedMessage {
 public:
  ParsedMessage(std::shared_ptr<const std::string> raw, mime::Limits limits)
      : raw_(std::move(raw)), limits_(limits) {}

  std::shared_ptr<const mime::Message> get() const;
  std::shared_ptr<const mime::Message> ready() const;
  const mime::Limits& limits() const { return limits_; }

 private:
  std::shared_ptr<const std::string> raw_;
  mime::Limits limits_;
  mutable std::mutex mu_;                               // held while parsing
  mutable std::shared_ptr<const mime::Message> parsed_;  // set once, under mu_
  mutable std::atomic<bool> done_{false};               // parsed_ is set (release/acquire)
};

std::shared_ptr<const mime::Message> parsed_message(const Context& ctx, const mime::Limits& needs);

}  // namespace filters
