// The rspamd filter's descriptor (filters/descriptor.h).
#pragma once
#include "filters/descriptor.h"

namespace filters::rspamd {
Descriptor descriptor();
}
