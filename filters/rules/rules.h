// filters::Rules — the static rules filter ("rules"): client block/allow lists at Connect, and
// RE2 patterns on the HELO name, the envelope sender, header values and the body text.
// Contract: patterns are compiled once per config generation; a matching "reject" rule answers
// 554 5.7.1 naming it (R::rule_rejected), "score" rules add their scores in one verdict tagged
// RULE_<NAME>=<score>. A blocked client gets R::client_blocked at Connect, an allowed one an
// Accept (the chain then skips rbl and rules for it). At Data the header and body rules read the
// message's shared MIME parse (filters/parsed_message.h); making it and the body rules run on the
// shared worker pool (queue full: 451 R::filter_busy). When an earlier filter has parsed the
// message already, the header rules run inline.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "filters/rules/settings.h"
#include "filters/filter.h"
#include "net/blocking_pool.h"

namespace filters {

class Rules final : public Filter {
 public:
  struct Compiled;  // the compiled rules of one config generation (shared with pool jobs)

  // Compiles every pattern; on a bad pattern returns null and sets `error`.
  static std::shared_ptr<Rules> build(const rules::Settings& cfg, std::shared_ptr<net::BlockingPool> workers,
                                      std::string& error);
  Rules(std::shared_ptr<const Compiled> c, std::shared_ptr<net::BlockingPool> workers);

  std::string_view name() const override { return "rules"; }
  bool wants(Phase p) const override;
  bool skipped_when_allowlisted() const override { return true; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;
  mime::Limits mime_needs() const override;  // the header block and body_limit octets of text

  // Only the first kHeaderLimit octets of the header block are matched by header rules.
  static constexpr size_t kHeaderLimit = 256 * 1024;

 private:
  Verdict connect_verdict(const core::IpAddress& ip) const;
  boost::asio::awaitable<Verdict> data_verdict(std::shared_ptr<const Context> ctx);

  std::shared_ptr<const Compiled> c_;
  std::shared_ptr<net::BlockingPool> workers_;
};

}  // namespace filters
