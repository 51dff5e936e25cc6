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
// One rspamd.profile_score entry, "profile=add" or "profile=alone": "" when `c` has that profile,
// else what is wrong (the loader reports it at the key's file:line).
std::string profile_score_error(std::string_view entry, const config::Config& c);
// The score mode for `profile`: its (valid) rspamd.profile_score entry, the last one if several,
// else rspamd.score.
ScoreMode score_mode_for(const Settings& s, std::string_view profile);
}  // namespace filters::rspamd
