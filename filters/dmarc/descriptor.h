// The dmarc filter's descriptor (filters/descriptor.h): DMARC (RFC 7489) for the From domain.
#pragma once
#include "filters/descriptor.h"

namespace filters::dmarc {
Descriptor descriptor();
}
