// ClamAV at Data: one pool job per message, the engine taken when the job starts (so a swap while
// the job waited is honoured), the result mapped to a verdict.
#include "filters/clamav/clamav.h"

#include "core/log.h"

namespace filters {
namespace R = core::replies;
using clamav::ScanResult;

ClamavFilter::ClamavFilter(std::shared_ptr<clamav::EngineHolder> engines, std::shared_ptr<net::BlockingPool> workers,
                           clamav::Settings settings)
    : engines_(std::move(engines)), workers_(std::move(workers)), settings_(std::move(settings)) {}

Verdict ClamavFilter::verdict(const ScanResult& r, clamav::OnLimit on_limit, clamav::OnLimit on_structure_limit) {
  switch (r.kind) {
    case ScanResult::Kind::Clean: return Verdict::cont();
    case ScanResult::Kind::Virus: return {Action::Reject, R::virus_found(r.name), "virus " + r.name};
    case ScanResult::Kind::LimitExceeded:
      if (!clamav::is_size_limit(r.name)) {  // never counted as clean, whatever on_limit says
        if (on_structure_limit == clamav::OnLimit::TempFail)
          return {Action::TempFail, R::filter_unavailable(), "scan structure limit: " + r.name};
        return {Action::Reject, R::scan_structure_rejected(r.name), "scan structure limit: " + r.name};
      }
      if (on_limit == clamav::OnLimit::Reject) return {Action::Reject, R::scan_limit_rejected(), "scan limit: " + r.name};
      if (on_limit == clamav::OnLimit::TempFail) return {Action::TempFail, R::filter_unavailable(), "scan limit: " + r.name};
      return {Action::Continue, std::nullopt, "scan limit (accepted): " + r.name};
    case ScanResult::Kind::Cancelled: return Verdict::failure("clamav: scan cancelled");
    case ScanResult::Kind::Error: break;
  }
  return Verdict::failure("clamav: " + r.name);
}

boost::asio::awaitable<Verdict> ClamavFilter::check(Phase, std::shared_ptr<const Context> ctx) {
  if (!ctx->message) co_return Verdict::failure("clamav: no message");
  auto job = [engines = engines_, ctx]() -> ScanResult {
    if (ctx->cancel->cancelled()) return {ScanResult::Kind::Cancelled, "cancelled"};
    std::shared_ptr<const clamav::Engine> engine = engines->current();  // kept for the whole scan
    return clamav::scan(*engine, *ctx->message, ctx->cancel.get());
  };
  std::optional<ScanResult> r = co_await workers_->run(std::move(job));
  if (!r) co_return Verdict{Action::TempFail, R::filter_busy(), "clamav: worker queue full"};
  Verdict v = verdict(*r, settings_.on_limit, settings_.on_structure_limit);
  if (r->kind == ScanResult::Kind::LimitExceeded && v.action == Action::Continue)
    core::log().warn("clamav id={} scan limit reached, relayed unscanned past it (on_limit accept): {}",
                     ctx->session_id, r->name);
  co_return v;
}

}  // namespace filters
