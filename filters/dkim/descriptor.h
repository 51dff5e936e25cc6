// The dkim filter's descriptor (filters/descriptor.h): DKIM verification (RFC 6376, RFC 8463).
#pragma once
#include "filters/descriptor.h"

namespace filters::dkim {
Descriptor descriptor();
}
