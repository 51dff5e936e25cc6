// filters::Chain — an ordered list of filters for one profile; runs the filters that want a
// phase and returns the first decisive verdict (Continue when none decides).
#pragma once
#include <memory>
#include <vector>

#include "filters/filter.h"

namespace filters {

class Chain {
 public:
  void add(std::shared_ptr<Filter> f) { filters_.push_back(std::move(f)); }
  boost::asio::awaitable<Verdict> run(Phase p, const Context& ctx) const;
  size_t size() const { return filters_.size(); }

 private:
  std::vector<std::shared_ptr<Filter>> filters_;
};

}  // namespace filters
