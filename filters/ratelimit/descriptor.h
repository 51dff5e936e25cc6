// The ratelimit filter's descriptor (filters/descriptor.h): farm-wide rate limits on Redis.
#pragma once
#include "filters/descriptor.h"

namespace filters::ratelimit {
Descriptor descriptor();
}
