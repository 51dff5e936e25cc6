// The rspamd filter's descriptor (filters/descriptor.h).
#pragma once
#include <string>
#include <string_view>

#include "filters/descriptor.h"
#include "filters/rspamd/settings.h"

namespace filters::rspamd {
Descriptor descriptor();
// The Settings-ID sent for `profile`: its rspamd.profile_settings_ids entry, else settings_id.
// A malformed entry or one naming no profile of `c` sets `error` (pure; the config check and
// the build both use it).
std::string settings_id_for(const Settings& s, const config::Config& c, std::string_view profile, std::string& error);
}  // namespace filters::rspamd
