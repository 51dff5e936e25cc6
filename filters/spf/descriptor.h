// The spf filter's descriptor (filters/descriptor.h): SPF (RFC 7208) for the MAIL FROM identity.
#pragma once
#include "filters/descriptor.h"

namespace filters::spf {
Descriptor descriptor();
}
