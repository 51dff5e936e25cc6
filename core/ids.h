// Unique, sortable identifiers for sessions (logs, Received header): time + pid + counter,
// unique across restarts and across the instances of a farm (hostname goes alongside in logs).
#pragma once
#include <string>

namespace core {
std::string new_session_id();
}  // namespace core
