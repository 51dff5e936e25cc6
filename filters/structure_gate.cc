// The MIME structure limit: the shared parse on the worker pool, then its depth and part count.
#include "filters/structure_gate.h"

#include <algorithm>

#include <fmt/format.h>

#include "filters/parsed_message.h"

namespace filters {
namespace R = core::replies;

StructureGate::StructureGate(std::shared_ptr<net::BlockingPool> workers, size_t max_depth, size_t max_nodes)
    : workers_(std::move(workers)) {
  needs_.max_depth = std::clamp<size_t>(max_depth, 1, mime::kMaxDepth);
  needs_.max_nodes = std::max<size_t>(max_nodes, 1);
}

Verdict StructureGate::verdict(const mime::Structure& s, const mime::Limits& l) {
  if (!s.exceeds(l)) return Verdict::cont();
  bool deep = l.max_depth && s.depth > l.max_depth;
  std::string what = deep || s.unread ? fmt::format("nested more than {} levels deep", deep ? l.max_depth : mime::kMaxDepth)
                                      : fmt::format("more than {} parts", l.max_nodes);
  return {Action::Reject, R::mime_structure_rejected(what), "MIME structure " + what};
}

boost::asio::awaitable<Verdict> StructureGate::check(Phase, std::shared_ptr<const Context> ctx) {
  if (!ctx->message) co_return Verdict::cont();
  // The job owns what it reads: it may outlive this check (abandoned on timeout).
  auto job = [ctx, needs = needs_]() -> std::optional<mime::Structure> {
    if (ctx->cancel->cancelled()) return std::nullopt;
    return parsed_message(*ctx, needs)->structure();
  };
  std::optional<std::optional<mime::Structure>> r = co_await workers_->run(std::move(job));
  if (!r) co_return Verdict{Action::TempFail, R::filter_busy(), "mime: worker queue full"};
  if (!*r) co_return Verdict::failure("mime: cancelled");
  co_return verdict(**r, needs_);
}

}  // namespace filters
