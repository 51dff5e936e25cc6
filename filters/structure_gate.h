// filters::StructureGate — the message-level MIME structure limit, checked in the one MIME parse
// (filters/parsed_message.h). A message nested deeper than limits.mime_depth or holding more than
// limits.mime_parts MIME parts is structure the content filters (rules, ocr, the virus scanner)
// cannot be trusted to have seen into: it is refused with 554 5.6.0 and never relayed.
//
// Not a filter of the registry: app/generation.cc puts it first in the data phase of every chain
// that has a data-phase filter (a chain that judges no content has nothing to protect). Its parse
// is the one the other filters then share, so the check costs a walk over the MIME tree. It is
// never skipped for allowlisted clients. Named "mime" in logs and counters. Its timeout is the
// longest of the chain's data-phase filters; its on_error is tempfail unless all of theirs are continue.
#pragma once
#include <memory>

#include "filters/filter.h"
#include "net/blocking_pool.h"

namespace filters {

class StructureGate final : public Filter {
 public:
  // `max_depth`, `max_nodes`: the largest nesting and part count relayed (limits.mime_depth,
  // limits.mime_parts); max_depth is at most mime::kMaxDepth.
  StructureGate(std::shared_ptr<net::BlockingPool> workers, size_t max_depth, size_t max_nodes);
  std::string_view name() const override { return "mime"; }
  bool wants(Phase p) const override { return p == Phase::Data; }
  mime::Limits mime_needs() const override { return needs_; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

  // A parsed structure as a verdict (pure, for tests): Continue, or Reject with 554 5.6.0.
  static Verdict verdict(const mime::Structure& s, const mime::Limits& limits);

 private:
  std::shared_ptr<net::BlockingPool> workers_;
  mime::Limits needs_;
};

}  // namespace filters
