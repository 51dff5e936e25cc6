// Unique, sortable identifiers for sessions (logs, Received header): time + instance + counter.
// The instance part is random, drawn once per process: the pid alone is 1 in every container of a
// farm, so instances started in the same second would mint the same ids.
#pragma once
#include <string>

namespace core {
std::string new_session_id();
}  // namespace core
