// The ClamAV filter, at Data: scans the raw message from memory on the worker pool with the
// process-wide engine (engine.h). Virus: 554 5.7.1 naming the signature. A size or time limit
// reached: clamav.on_limit ("accept" relays and logs, "tempfail" 451 4.3.0, "reject" 554 5.7.1).
// Any other limit (MaxRecursion, MaxFiles: structure the scanner did not see into) is never
// relayed: clamav.on_structure_limit ("reject" 554 5.6.0, "tempfail" 451 4.3.0).
// Scanner error: Verdict::failure (the chain applies on_error). Worker queue full: 451 4.3.0.
// Not skipped for allowlisted clients.
#pragma once
#include <memory>

#include "filters/clamav/settings.h"
#include "filters/clamav/engine.h"
#include "filters/filter.h"
#include "net/blocking_pool.h"

namespace filters {

class ClamavFilter final : public Filter {
 public:
  ClamavFilter(std::shared_ptr<clamav::EngineHolder> engines, std::shared_ptr<net::BlockingPool> workers,
               clamav::Settings settings);
  std::string_view name() const override { return "clamav"; }
  bool wants(Phase p) const override { return p == Phase::Data; }
  boost::asio::awaitable<Verdict> check(Phase p, std::shared_ptr<const Context> ctx) override;

  // A scan result as a verdict (pure, for tests).
  static Verdict verdict(const clamav::ScanResult& r, clamav::OnLimit on_limit,
                         clamav::OnLimit on_structure_limit = clamav::OnLimit::Reject);

 private:
  std::shared_ptr<clamav::EngineHolder> engines_;
  std::shared_ptr<net::BlockingPool> workers_;
  clamav::Settings settings_;
};

}  // namespace filters
